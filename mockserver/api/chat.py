"""Chat completion handlers: create (JSON, or server-sent events with ``stream: true``), get, cancel.

Thin: parse, call :class:`~mockserver.core.chat.Chat`, render; the SSE side is in :mod:`mockserver.api.chat_stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from mockserver.api.chat_stream import EventStream, StreamRun, delays, provider_error, sent_key, step
from mockserver.api.errors import _RANGE_ERRORS as RANGE_ERRORS
from mockserver.api.errors import param_path
from mockserver.api.pipeline import Ctx, json_response
from mockserver.api.scenarios import ConnectionDropped
from mockserver.clock import rfc3339, unix_seconds
from mockserver.core import tokens
from mockserver.core._chat_records import ChatRequest, Completion
from mockserver.core.chat import Live
from mockserver.core.errors import (
    ChatProviderUnavailableError,
    DomainError,
    InvalidFormatError,
    MissingFieldError,
    ValueOutOfRangeError,
)
from mockserver.core.ratelimit import Decision

IDEMPOTENCY_STATUS = "Aurous-Idempotency-Status"
_MEMBER = re.compile(r"[\[\]-]")
_MEMBERS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})
CANCEL_WAIT_SECONDS = 5.0
KEY_TOO_LONG = "{header} must be 1 to 64 characters on chat completions."


def tpm_headers(decision: Decision) -> dict[str, str]:
    """The TPM trio (fact sheet §9), beside the pipeline's RPM ``X-RateLimit-*``."""
    return {
        "X-RateLimit-TPM-Limit": str(decision.limit),
        "X-RateLimit-TPM-Remaining": str(decision.remaining),
        "X-RateLimit-TPM-Reset": str(decision.reset),
    }


def replay_headers(ctx: Ctx) -> dict[str, str]:
    """A replay uses no tokens: it shows the TPM bucket as it is."""
    return tpm_headers(ctx.emulator.chat.tpm(ctx.team, ctx.now))


async def not_streamed(ctx: Ctx) -> bool:
    """Idempotency applies to non-streamed requests only (fact sheet §10); a body that is not JSON is not a stream."""
    try:
        data = await ctx.json()
    except DomainError:
        return True
    return data.get("stream") is not True


def parse(data: dict[str, Any]) -> ChatRequest:
    """The body as a :class:`ChatRequest`; ``null`` reads as omitted (OpenAI SDKs may send it)."""
    try:
        return ChatRequest.model_validate({key: value for key, value in data.items() if value is not None})
    except ValidationError as exc:
        raise _first_error(exc) from None


def _first_error(exc: ValidationError) -> DomainError:
    """The most telling error of a union field (``stop``, ``content``, ``tool_choice``): not the type mismatch of a
    member that was never meant, and a ``param`` without pydantic's member labels (``stop``, not
    ``stop.list[constrained-str]``; ``messages[0].content[1].image_url.url``)."""
    errors = exc.errors(include_url=False)
    # The member the client meant got furthest (the deepest location); then a real error over a type mismatch.
    best = max(errors, key=lambda e: (len(e["loc"]), not e["type"].endswith("_type")))
    loc: list[int | str] = []
    for part in best["loc"]:
        if isinstance(part, str) and (_MEMBER.search(part) or part in _MEMBERS or part[:1].isupper()):
            continue  # a union member's label
        if loc and part == loc[-1] and isinstance(part, str):
            continue  # a discriminated part's tag, followed by the field of the same name
        loc.append(part)
    param = param_path(tuple(loc)) or None
    message = f"{param}: {best['msg']}" if param else str(best["msg"])
    if best["type"] == "missing":
        return MissingFieldError(f"Missing required field: {param}.", param=param)
    if best["type"] in RANGE_ERRORS:
        return ValueOutOfRangeError(message, param=param)
    return InvalidFormatError(message, param=param)


# --- create ----------------------------------------------------------------------------------------------


async def create_chat_completion(ctx: Ctx) -> Response:
    chat = ctx.emulator.chat
    decision: Decision | None = None
    try:
        body = await ctx.json()
        req = parse(body)
        sent = sent_key(ctx)
        if sent is not None and ctx.emulator.settings.chat_idempotency_key_max_64 and len(sent[1]) > 64:
            raise InvalidFormatError(KEY_TOO_LONG.format(header=sent[0]), param=sent[0])
        plan = chat.plan(ctx.team, req, body)
        decision = chat.admit(ctx.team, plan, ctx.now)
        meta = {"now": ctx.now, "request_id": ctx.request_id, "api_key_id": ctx.key.id, "scenario": ctx.scenario}
        completion = chat.create(ctx.team, plan, meta)
    except DomainError as error:
        error.headers.update(tpm_headers(decision or chat.tpm(ctx.team, ctx.now)))
        raise
    headers = tpm_headers(decision)
    if completion.stream:
        run = StreamRun(ctx, completion, plan)
        headers[IDEMPOTENCY_STATUS] = "ignored_streaming" if sent is not None else "not_set"
        return EventStream(run, headers)
    return await _complete(ctx, completion, headers)


async def _complete(ctx: Ctx, completion: Completion, headers: dict[str, str]) -> Response:
    """A non-streamed completion: the whole reply after the generation time, or the scripted failure."""
    chat = ctx.emulator.chat
    first, per_token = delays(ctx, completion)
    produced = tokens.count_text(completion.reply.text())
    if first + per_token * produced > 0:
        await asyncio.sleep(first + per_token * produced)
    now = ctx.emulator.accounts.now(ctx.team)
    outcome, _ = step(completion)
    if outcome in ("stream_error", "stream_drop"):
        chat.finish(ctx.team, completion.id, now, state="failed", delivered=0, finish_reason=None,
                    error=provider_error(), bill=False)  # fmt: skip
        if outcome == "stream_drop":
            raise ConnectionDropped(f"createChatCompletion {ctx.request_id}")
        error = ChatProviderUnavailableError()
        error.headers.update(headers)
        raise error
    done = chat.finish(
        ctx.team,
        completion.id,
        now,
        state="completed",
        delivered=produced,
        finish_reason=completion.reply.finish_reason,
    )
    return json_response(render(done), headers=headers)


# --- the completion object ----------------------------------------------------------------------------------


def _message(completion: Completion) -> dict[str, Any]:
    reply = completion.reply
    delivered = completion.delivered if completion.terminal else 0
    if reply.tool_calls:
        call = reply.tool_calls[0]
        arguments = call.arguments if completion.state == "completed" else tokens.truncate(call.arguments, delivered)
        function = {"name": call.name, "arguments": arguments}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call.id, "type": "function", "function": function}],
        }
    return {"role": "assistant", "content": "".join(reply.pieces[:delivered])}


def render(completion: Completion) -> dict[str, Any]:
    """The completion object of fact sheet §3.8 (``status`` and, when failed or cancelled, ``error``)."""
    choice = {"index": 0, "message": _message(completion), "finish_reason": completion.finish_reason, "logprobs": None}
    body: dict[str, Any] = {
        "id": completion.id,
        "object": "chat.completion",
        "created": unix_seconds(completion.created_at),
        "model": completion.model,
        "choices": [choice],
        "usage": completion.usage,
        "status": completion.status,
    }
    if completion.status in ("failed", "cancelled"):
        body["error"] = completion.error
    if completion.status == "cancelled" and completion.finished_at is not None:
        body["cancelled_at"] = rfc3339(completion.finished_at)
    return body


# --- get, cancel ---------------------------------------------------------------------------------------------


async def get_chat_completion(ctx: Ctx) -> Response:
    """The stored completion, with the TPM bucket as it is (the TPM headers are on every chat answer, §9)."""
    chat = ctx.emulator.chat
    completion = chat.get(ctx.team, ctx.path("id"), ctx.now)
    return json_response(render(completion), headers=tpm_headers(chat.tpm(ctx.team, ctx.now)))


async def cancel_chat_completion(ctx: Ctx) -> Response:
    """A stream in flight here stops at its next frame; the answer is its final state (or ``completed``, if the
    stream finished first: the vendor's documented race)."""
    chat = ctx.emulator.chat
    target = chat.request_cancel(ctx.team, ctx.path("id"), ctx.now)
    if isinstance(target, Live) and not target.done:
        settled = asyncio.Event()
        previous = target.finished

        def finished() -> None:
            previous()
            settled.set()

        target.finished = finished
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settled.wait(), CANCEL_WAIT_SECONDS)
    now = ctx.emulator.accounts.now(ctx.team)
    completion = chat.get(ctx.team, ctx.path("id"), now)
    return json_response(render(completion), headers=tpm_headers(chat.tpm(ctx.team, now)))

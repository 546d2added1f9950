"""Chat completion handlers: create (JSON, or server-sent events with ``stream: true``), get, cancel.

Thin: parse, call :class:`~mockserver.core.chat.Chat`, render. The SSE framing is OpenAI's, as its SDKs parse it
(``openai/_streaming.py``): one ``data: <json>`` line and a blank line per frame, ``: keep-alive`` comments,
``data: [DONE]`` last, an ``{"error": …}`` frame for a failure after the ``200`` (fact sheet §3.9, §14.8-§14.10).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from pydantic import ValidationError
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from mockserver.api.errors import _RANGE_ERRORS as RANGE_ERRORS
from mockserver.api.errors import error_body, param_path
from mockserver.api.pipeline import Ctx, json_response
from mockserver.api.scenarios import ConnectionDropped, drop_connection
from mockserver.clock import rfc3339, unix_seconds
from mockserver.core import idempotency, tokens
from mockserver.core._chat_records import ChatRequest, Completion
from mockserver.core.chat import Live, Plan
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
DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
CANCEL_WAIT_SECONDS = 5.0
WARNING = "Idempotency-Key is ignored on streamed chat completions; retrying may bill twice."
CANCELLED_MESSAGES = {
    "cancelled_by_request": "The completion was cancelled by request.",
    "cancelled_client_disconnect": "The client disconnected before the completion finished.",
}
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


def _sent_key(ctx: Ctx) -> tuple[str, str] | None:
    for header in idempotency.HEADERS:
        value = ctx.header(header.lower())
        if value is not None:
            return header, value
    return None


# --- create ----------------------------------------------------------------------------------------------


async def create_chat_completion(ctx: Ctx) -> Response:
    chat = ctx.emulator.chat
    decision: Decision | None = None
    try:
        body = await ctx.json()
        req = parse(body)
        sent = _sent_key(ctx)
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


def _delays(ctx: Ctx, completion: Completion) -> tuple[float, float]:
    """(seconds to the first token, seconds per token after it), in real time.

    Under the virtual clock a stream is instant; under the system clock it is paced by the settings, divided by
    ``--speed``. A ``slow_first_token`` scenario waits in real time under either clock (like ``latency``).
    """
    s = ctx.emulator.settings
    first = per_token = 0.0
    if s.clock != "virtual":
        first = s.chat_time_to_first_token_ms / 1000 / s.speed
        per_token = 1 / s.chat_tokens_per_second / s.speed
    step = completion.scenario or {}
    if step.get("outcome") == "slow_first_token":
        first += float(step.get("arg") or 0) / 1000
    return first, per_token


def _step(completion: Completion) -> tuple[str | None, int]:
    step = completion.scenario or {}
    arg = step.get("arg")
    return step.get("outcome"), int(arg) if isinstance(arg, int | float) else 0


def _provider_error() -> dict[str, Any]:
    error = ChatProviderUnavailableError()
    return {"code": error.code, "type": error.type, "message": error.detail}


async def _complete(ctx: Ctx, completion: Completion, headers: dict[str, str]) -> Response:
    """A non-streamed completion: the whole reply after the generation time, or the scripted failure."""
    chat = ctx.emulator.chat
    first, per_token = _delays(ctx, completion)
    produced = tokens.count_text(completion.reply.text())
    if first + per_token * produced > 0:
        await asyncio.sleep(first + per_token * produced)
    now = ctx.emulator.accounts.now(ctx.team)
    outcome, _ = _step(completion)
    if outcome in ("stream_error", "stream_drop"):
        chat.finish(ctx.team, completion.id, now, state="failed", delivered=0, finish_reason=None,
                    error=_provider_error(), bill=False)  # fmt: skip
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
    return json_response(render(ctx.emulator.chat.get(ctx.team, ctx.path("id"), ctx.now)))


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
    completion = chat.get(ctx.team, ctx.path("id"), ctx.emulator.accounts.now(ctx.team))
    return json_response(render(completion))


# --- the stream --------------------------------------------------------------------------------------------------


def frame(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class _Drop(Exception):
    """``stream_drop``: the connection closes mid-stream."""


class StreamRun:
    """One stream's frames, paced on the event loop (never a blocked thread), and its settlement however it ends."""

    def __init__(self, ctx: Ctx, completion: Completion, plan: Plan) -> None:
        self.ctx = ctx
        self.completion = completion
        self.include_usage = bool(plan.req.stream_options and plan.req.stream_options.include_usage)
        self.key_sent = _sent_key(ctx) is not None
        self.delivered = 0
        self.settled = False
        self.wake = asyncio.Event()
        live = ctx.emulator.chat.live.get(completion.id)
        if live is not None:
            live.wake = self.wake.set
        self.base = {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": unix_seconds(completion.created_at),
            "model": completion.model,
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        if self.include_usage and "usage" not in extra:
            extra["usage"] = None  # OpenAI's include_usage shape: null until the last chunk (fact sheet §14.10)
        return frame({**body, **extra})

    def _cancel_requested(self) -> bool:
        live = self.ctx.emulator.chat.live.get(self.completion.id)
        return live is not None and live.cancel_at is not None

    async def _until(self, deadline: float) -> AsyncIterator[bytes]:
        """Wait for ``deadline`` (loop time), sending ``: keep-alive`` when nothing was sent for the interval."""
        loop = asyncio.get_running_loop()
        interval = self.ctx.emulator.settings.chat_keepalive_seconds
        while not self._cancel_requested():
            left = deadline - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), min(left, interval))
            if deadline - loop.time() > 0 and not self._cancel_requested():
                yield KEEP_ALIVE

    def _settle(
        self, state: str, finish: str | None, error: dict[str, Any] | None = None, *, bill: bool = True
    ) -> None:
        if self.settled:
            return
        self.settled = True
        chat, team = self.ctx.emulator.chat, self.ctx.team
        with contextlib.suppress(DomainError):  # reset meanwhile: nothing is left to settle
            self.completion = chat.finish(
                team, self.completion.id, self.ctx.emulator.accounts.now(team),
                state=state, delivered=self.delivered, finish_reason=finish, error=error, bill=bill,
            )  # fmt: skip

    def _cancelled_frames(self, state: str) -> bytes:
        error = {"code": state, "type": "invalid_request", "message": CANCELLED_MESSAGES[state]}
        self._settle(state, "cancelled", error)
        return self.chunk({}, "cancelled", usage=self.completion.usage) + DONE

    def abort(self, disconnected: bool) -> None:
        """However the stream ended early (a disconnect, a cancelled task): commit what was delivered."""
        if disconnected:
            self._cancelled_frames("cancelled_client_disconnect")
        else:
            self._settle("failed", None, _provider_error(), bill=self.delivered > 0)

    def _pieces(self) -> list[tuple[dict[str, Any], int]]:
        """(delta, tokens) per content frame after the role frame."""
        reply = self.completion.reply
        if reply.tool_calls:
            return [({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}, 1)
                    for part in tokens.split(reply.tool_calls[0].arguments)]  # fmt: skip
        return [({"content": piece}, 1) for piece in reply.pieces]

    def _first_delta(self) -> dict[str, Any]:
        calls = self.completion.reply.tool_calls
        if not calls:
            return {"role": "assistant", "content": ""}
        call = calls[0]
        function = {"name": call.name, "arguments": ""}
        tool_call = {"index": 0, "id": call.id, "type": "function", "function": function}
        return {"role": "assistant", "content": None, "tool_calls": [tool_call]}

    async def frames(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        first, per_token = _delays(self.ctx, self.completion)
        outcome, at = _step(self.completion)
        if self.key_sent:
            warning = {"code": "idempotency_ignored_streaming", "message": WARNING}
            yield frame({**self.base, "choices": [], "aurous_warning": warning})
        start = loop.time()
        async for keep_alive in self._until(start + first):
            yield keep_alive
        if self._cancel_requested():
            yield self._cancelled_frames("cancelled_by_request")
            return
        yield self.chunk(self._first_delta())
        for i, (delta, count) in enumerate(self._pieces()):
            if outcome in ("stream_error", "stream_drop") and self.delivered >= at:
                break
            if per_token:  # under the virtual clock there is nothing to wait for (and no generator to make)
                async for keep_alive in self._until(start + first + i * per_token):
                    yield keep_alive
            if self._cancel_requested():
                yield self._cancelled_frames("cancelled_by_request")
                return
            yield self.chunk(delta)
            self.delivered += count
        if outcome == "stream_error":
            self._settle("failed", None, _provider_error(), bill=self.delivered > 0)
            yield frame(error_body(ChatProviderUnavailableError(), self.ctx.request_id)) + DONE
            return
        if outcome == "stream_drop":
            self._settle("failed", None, _provider_error(), bill=self.delivered > 0)
            raise _Drop
        self._settle("completed", self.completion.reply.finish_reason)
        yield self.chunk({}, self.completion.reply.finish_reason, usage=self.completion.usage)
        yield DONE


class EventStream(StreamingResponse):
    """``text/event-stream`` from a :class:`StreamRun`; a client disconnect stops it and settles what was sent."""

    def __init__(self, run: StreamRun, headers: dict[str, str]) -> None:
        super().__init__(
            run.frames(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no", **headers},
        )
        self.run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = dropped = False
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal disconnected
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    disconnected = True
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                try:
                    async for chunk in self.body_iterator:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except _Drop:
                    dropped = True
                except OSError:  # the client went away while we wrote
                    disconnected = True
                group.cancel_scope.cancel()
        finally:
            if not self.run.settled:
                self.run.abort(disconnected or not dropped)
        if dropped and await drop_connection(scope.get("state", {}).get("raw_receive", receive)):
            return
        if not disconnected:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

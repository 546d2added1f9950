"""Scenarios over HTTP: each request's scenario (markers, header, rules), request-level outcomes, ``/_mock/scenarios``.

:func:`apply` runs in the pipeline just before the handler (after idempotency, so a replay never uses a
step): it resolves the request's scenario once into ``ctx.scenario`` and answers a request-level outcome
instead of the handler. Generation- and webhook-level outcomes travel to ``Generations.create_*`` in
``meta["scenario"]``. Nothing here is part of ``openapi.yaml``: the header and ``/_mock`` are emulator-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response
from starlette.types import Receive

from mockserver.core import llm_models
from mockserver.core.emulator import Emulator
from mockserver.core.errors import (
    BalanceTooLowError,
    ChatProviderUnavailableError,
    ConcurrencyLimitExceededError,
    DomainError,
    EmbeddingsProviderUnknownError,
    InternalError,
    InvalidFormatError,
    PromptBlockedError,
    ProviderBadGatewayError,
    ProviderRateLimitedError,
    ProviderTimeoutError,
    ReferenceBlockedError,
    ResourceNotFoundError,
    TooManyRequestsError,
    TpmRateLimitExceededError,
)
from mockserver.core.requests import ImageRequest, VideoRequest
from mockserver.core.scenarios import (
    CHATS,
    CREATES,
    MARKER_OPEN,
    REQUEST,
    Call,
    ScenarioFileError,
    Step,
    check_operation,
    header_steps,
    markers,
    parse_file,
    parse_rule,
)

if TYPE_CHECKING:  # the pipeline imports this module
    from mockserver.api.pipeline import Ctx, Operation

HEADER = "Aurous-Mock-Scenario"
HEADER_KEY = HEADER.lower()
HEADER_RAW = HEADER_KEY.encode("latin-1")  # as a request's header dict has it (api.headers.request_headers)
CONCURRENCY = "Too many generations in flight. Retry after {seconds}s."
FILE_RULE = "Scenario {id} comes from the scenario file and applies to every team; it cannot be deleted."
DROP_WAIT_ROUNDS = 20


class ConnectionDropped(Exception):
    """The ``drop`` outcome: ``ConventionsMiddleware`` closes the connection instead of answering."""


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


# --- wiring -------------------------------------------------------------------------------------------


def install(emulator: Emulator, entries: Iterable[tuple[str, str, str, Any]]) -> None:
    """Tell the service which operationIds pass the pipeline and load the scenario file (``ScenarioFileError``).

    ``entries`` is the public route table; operations served outside the pipeline (output URLs) are
    left out, since no scenario could reach them.
    """
    operations = {name for _, _, name, handler in entries if getattr(handler, "__name__", None) == name}
    path = emulator.settings.scenarios_file
    rules = load_file(path, operations) if path is not None else ()
    emulator.scenarios.configure(operations, rules)


def load_file(path: Path, operations: Iterable[str]) -> tuple[Any, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(f"{path}: cannot be read: {exc}") from None
    return parse_file(text, str(path), set(operations))


# --- the request-time application ------------------------------------------------------------------------


async def _prompt(ctx: Ctx, chat: bool = False) -> str | None:
    """The ``prompt`` of a JSON body (chat: the last user message's text), if any; a malformed body is left to the
    handler to refuse."""
    try:
        data = orjson.loads(await ctx.body())
    except orjson.JSONDecodeError:
        return None
    if chat:
        return _last_user_text(data)
    prompt = data.get("prompt") if isinstance(data, dict) else None
    return prompt if isinstance(prompt, str) else None


def _last_user_text(data: Any) -> str | None:
    """Where a chat request's ``[mock:…]`` markers go: the text of its last ``user`` message."""
    messages = data.get("messages") if isinstance(data, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            parts = content if isinstance(content, list) else []
            texts = [str(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
            return " ".join(texts) or None
    return None


def _chosen(operation: str, ctx: Ctx, prompt: str | None) -> Step | None:
    """The first prompt marker, else the header's first element; every one of them is validated."""
    marked = markers(prompt)
    sent = header_steps(ctx.header(HEADER_KEY), HEADER)
    for step in sent[:1]:
        check_operation(step, operation, HEADER)
    for step in marked[:1]:
        check_operation(step, operation, "prompt")
    return marked[0] if marked else (sent[0] if sent else None)


async def apply(op: Operation, ctx: Ctx) -> None:
    """Resolve the request's scenario into ``ctx.scenario``; raise (or wait) for a request-level outcome."""
    scenarios = ctx.emulator.scenarios
    if op.name not in scenarios.operations:
        return  # the control plane and anything else outside the public surface
    prompt = await _prompt(ctx, op.name in CHATS) if op.name in CREATES or op.name in CHATS else None
    marked = prompt is not None and MARKER_OPEN in prompt
    if not marked and HEADER_RAW not in ctx.headers and not scenarios.has_rules(ctx.team):
        return  # nothing could choose a scenario: the usual request (a create's prompt without a marker too)
    chosen = _chosen(op.name, ctx, prompt)
    call = Call(op.name, prompt, ctx.request.headers, ctx.key.key)
    ctx.scenario = scenarios.resolve(ctx.team, call, chosen)
    if ctx.scenario is not None and ctx.scenario.level == REQUEST:
        await _request_outcome(ctx.scenario, op, ctx)


async def _request_outcome(step: Step, op: Operation, ctx: Ctx) -> None:
    if step.outcome == "latency":
        await asyncio.sleep(float(step.arg or 0) / 1000)
        return
    if step.outcome == "drop":
        raise ConnectionDropped(f"{op.name} {ctx.request_id}")
    raise await _error(step, op, ctx)


async def _error(step: Step, op: Operation, ctx: Ctx) -> DomainError:
    name, arg = step.outcome, step.arg
    error: DomainError
    if name == "block":
        error = PromptBlockedError(param="prompt")
    elif name == "block_reference":
        error = ReferenceBlockedError()
    elif name == "provider_unavailable" and op.name in CHATS:
        error = ChatProviderUnavailableError()
    elif name == "provider_unavailable" and op.name == "createEmbedding":
        error = EmbeddingsProviderUnknownError()
    elif name == "provider_unavailable":
        error = ProviderBadGatewayError()
    elif name == "provider_timeout":
        error = ProviderTimeoutError()
    elif name == "balance_too_low":
        error = await _balance_too_low(op, ctx)
    elif name == "rate_limit":
        error = TooManyRequestsError(bucket=op.bucket or op.name, retry_after=arg)
        error.headers["Retry-After"] = str(arg)
    elif name in ("tpm_rate_limit", "provider_rate_limited"):
        error = TpmRateLimitExceededError(retry_after=arg) if name == "tpm_rate_limit" else ProviderRateLimitedError()
        error.headers["Retry-After"] = str(arg)
    elif name == "concurrency_limit":
        error = ConcurrencyLimitExceededError(CONCURRENCY.format(seconds=arg))
        error.headers["Retry-After"] = str(arg)
    else:
        error = InternalError()
    return error


def _credits(value: float) -> str:
    return repr(float(value))  # "1.5", "2.0": the documented message prints one decimal at least


async def _balance_too_low(op: Operation, ctx: Ctx) -> DomainError:
    """402 with the request's real cost, after the same validation the handler does (so 400s still win)."""
    generations = ctx.emulator.generations
    if op.name in CHATS:
        from mockserver.api.chat import parse  # chat imports this module (ConnectionDropped)

        body = await ctx.json()
        plan = ctx.emulator.chat.plan(ctx.team, parse(body), body)
        required = llm_models.chat_hold(plan.model, plan.prompt_tokens, plan.max_tokens)
        return BalanceTooLowError(available=_credits(ctx.team.available), required=_credits(float(required)))
    if op.name == "createImage":
        cost = generations.estimate_image(ctx.team, await ctx.parse(ImageRequest), ctx.version, ctx.now)
    else:
        cost = generations.estimate_video(ctx.team, await ctx.parse(VideoRequest), ctx.version, ctx.now)
    return BalanceTooLowError(available=_credits(ctx.team.available), required=_credits(cost.amount))


async def drop_connection(receive: Receive) -> bool:
    """Close the client's connection without a response; False when the server gives no way to (then re-raise).

    uvicorn answers 500 to an app that raises or returns without a response, so the transport is closed
    directly (reached through the server's ``receive``), and we wait until the server has seen it go.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "close"):
        return False
    transport.close()
    for _ in range(DROP_WAIT_ROUNDS):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)
    return True


# --- /_mock/scenarios -------------------------------------------------------------------------------------


async def add_scenario(ctx: Ctx) -> Response:
    """``POST /_mock/scenarios`` ``{"when": {...}, "then": [...], "repeat": false}`` → 201 with the rule."""
    scenarios = ctx.emulator.scenarios
    rule = parse_rule(await ctx.json(any_content_type=True), scenarios.operations)
    return _json(scenarios.add(ctx.team, rule, ctx.now).wire(), 201)


async def list_scenarios(ctx: Ctx) -> Response:
    """The team's rules (creation order), then the file's rules that apply to it, with their counters."""
    return _json({"object": "list", "data": [rule.wire() for rule in ctx.emulator.scenarios.rules(ctx.team)]})


async def delete_scenario(ctx: Ctx) -> Response:
    rule_id = ctx.path("id")
    scenarios = ctx.emulator.scenarios
    if scenarios.is_file_rule(rule_id):
        raise InvalidFormatError(FILE_RULE.format(id=rule_id), param="id")
    if not scenarios.delete(ctx.team, rule_id):
        raise ResourceNotFoundError(kind="scenario", id=rule_id)
    return _json({"id": rule_id, "object": "scenario", "deleted": True})


async def clear_scenarios(ctx: Ctx) -> Response:
    """Forget the team's own rules; the file's rules stay."""
    return _json({"object": "list", "deleted": ctx.emulator.scenarios.clear(ctx.team)})

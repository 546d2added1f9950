"""The conventions every operation goes through: auth, scope, rate limit, version, idempotency, envelope.

Each route is an :class:`Operation` (its operationId, scope, rate-limit bucket, idempotency) wrapped by
:func:`endpoint`. The order is auth → scope → rate limit → version → idempotency → scenario → handler; the
vendor does not document the order (inferred), this one puts rate-limit headers on version errors too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mockserver.api import scenarios
from mockserver.api.errors import error_response, from_validation_error, param_path
from mockserver.api.headers import REQUEST_ID, STAMPED, VERSION_KEY, assign_raw, request_headers, text
from mockserver.api.recorder import record
from mockserver.core import idempotency, payload
from mockserver.core.accounts import require_scope
from mockserver.core.emulator import Emulator
from mockserver.core.errors import (
    DomainError,
    IdempotencyKeyInUseError,
    InvalidFormatError,
    PayloadTooLargeError,
    TooManyRequestsError,
)
from mockserver.core.models import ApiKey, Team
from mockserver.core.pagination import Page, Row
from mockserver.core.scenarios import Step
from mockserver.core.versions import echo_version, resolve_version

Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[["Ctx"], Awaitable[Response]]

REPLAYED_HEADER = "Aurous-Idempotent-Replayed"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if headers is None:
        return EncodedJSONResponse(orjson.dumps(body), status)
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class EncodedJSONResponse(Response):
    """JSON already encoded: Starlette's ``Response`` with no extra headers, built without its general header code
    (the same two headers, in the same order: ``content-length`` unless the status has no body, ``content-type``)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        if status_code < 200 or status_code in (204, 304):
            self.raw_headers = [(b"content-type", b"application/json")]
        else:
            self.raw_headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]


class KeptJSONResponse(EncodedJSONResponse):
    """JSON already encoded into bytes of their own size that outlive the request (:func:`payload.kept`, a cached
    poll body): the journal keeps a reference instead of copying them again (``body_kept``)."""

    body_kept = True


def raw_json_response(body: bytes, status: int = 200) -> Response:
    """A response for JSON already encoded and kept (:func:`payload.kept`)."""
    return KeptJSONResponse(body, status_code=status)


def page_response(page: Page[Row], render: Callable[[Row], Any], **extra: Any) -> Response:
    """The list envelope of every paginated operation: ``{object: "list", data, has_more, next_cursor}``, then
    ``extra`` fields (the dashboard's views add ``total``)."""
    body = {"object": "list", "data": [render(row) for row in page.rows], "has_more": page.has_more}
    return json_response({**body, "next_cursor": page.next_cursor, **extra})


def api_key_from(headers: Mapping[bytes, bytes]) -> str | None:
    """``X-Api-Key`` (the documented contract) or its alias ``Authorization: Bearer <key>``."""
    key = headers.get(b"x-api-key")
    if key is not None:
        return key.decode("latin-1").strip()
    auth = headers.get(b"authorization")
    if auth is None:
        return None
    scheme, _, token = auth.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def caller(request: Request) -> Team | None:
    """The team of the request's key for an answer that is no operation (a legacy redirect, a 404 or 405), if the key
    authenticates; a missing or bad key is no error there (such answers need none). Under strict keys nothing is
    provisioned; otherwise a new well-formed key gets its team, as on any request."""
    emulator: Emulator = request.app.state.emulator
    try:
        team, _ = emulator.accounts.authenticate(api_key_from(request_headers(request.scope)), provision=False)
    except DomainError:
        return None
    return team


def passive_rate_headers(emulator: Emulator, team: Team | None, bucket: str, now: datetime) -> dict[str, str]:
    """``X-RateLimit-*`` of the team's ``bucket``, no token taken: the rate-limits page puts them on every response
    (inferred: which class a non-operation reports, and that it draws nothing)."""
    if team is None:
        return {}
    return emulator.limiter.peek(team.id, bucket, now).headers()


def request_id_of(request: Request) -> str:
    return str(request.scope["state"]["request_id"])


@dataclass(slots=True)
class Ctx:
    """What a handler sees: the request, the emulator, and the resolved team, key, version and time."""

    request: Request
    emulator: Emulator
    request_id: str
    team: Team
    key: ApiKey
    version: str
    now: datetime
    headers: Mapping[bytes, bytes]  # the request's, first value by lower-case name (api.headers.request_headers)
    _body: bytes | None = field(default=None, repr=False)
    scenario: Step | None = None  # resolved once by api.scenarios.apply, just before the handler

    def header(self, name: str) -> str | None:
        """A request header's (first) value: ``name`` in lower case."""
        return text(self.headers, name.encode("latin-1"))

    async def body(self, limit: int | None = None) -> bytes:
        """The whole request body, read once; over ``limit`` bytes (the body limit) is ``413``.

        Read from ``receive`` itself, not through ``Request.stream()``: an async generator costs every request that
        has a body the event loop's generator hooks (a create's CPU: 3 %). What is read is left where Starlette
        keeps a body it read (``Request._body``), so ``request.body()`` or ``form()`` later read it from there.
        """
        if self._body is None:
            kept = getattr(self.request, "_body", None)
            self._body = (
                kept if isinstance(kept, bytes) else await self._read(limit or self.emulator.settings.max_body_bytes)
            )
        return self._body

    async def _read(self, limit: int) -> bytes:
        receive = self.request.receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            if message["type"] != "http.request":
                continue
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(limit=limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = self.request._body = b"".join(chunks)  # Starlette's own cache of a body read (Request.body)
        return body

    async def json(self, *, any_content_type: bool = False) -> dict[str, Any]:
        """The JSON object body; no body is ``{}`` so that validation names the missing field.

        ``any_content_type`` reads JSON whatever the declared type (the control plane: ``curl -d`` sends a form type).
        """
        declared = self.header("content-type")
        media_type = "application/json" if declared is None else declared.split(";")[0].strip().lower()
        if not any_content_type and media_type != "application/json" and not media_type.endswith("+json"):
            raise InvalidFormatError("Content-Type must be application/json.")
        raw = await self.body()
        if not raw:  # no body at all; whitespace alone is not JSON
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidFormatError("The request body is not valid JSON.") from None
        payload.check(data, raw)
        if not isinstance(data, dict):
            raise InvalidFormatError("The request body must be a JSON object.")
        return data

    async def parse(self, model: type[Model], *, any_content_type: bool = False) -> Model:
        return validate(model, await self.json(any_content_type=any_content_type))

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])


NOT_NULL = "{field} must not be null; omit it to use the default."


def validate(model: type[Model], data: Any, *, prefix: str = "") -> Model:
    """Validate ``data`` into ``model``; an explicit ``null`` for a declared field is refused like the spec says.

    Whether upstream treats ``null`` as omitted is not documented; refusing it is the safer failure (inferred).
    """
    if isinstance(data, dict):
        for name, value in data.items():
            if value is None and name in model.model_fields:
                raise InvalidFormatError(NOT_NULL.format(field=name), param=param_path((name,), prefix))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, prefix=prefix) from None


@dataclass(frozen=True, slots=True)
class Operation:
    """One public operation: its operationId, handler and the conventions it is subject to."""

    name: str
    handler: Handler
    scope: str = "read"
    bucket: str | None = "get"
    idempotent: bool = False
    fingerprint: Callable[[Ctx], Awaitable[Any]] | None = None
    # For an operation with a lifecycle: whether the resource it created (the ``id`` of its answer) is still running.
    running: Callable[[Ctx, str], bool] | None = None
    provisions: bool = False  # an unknown well-formed key gets a team even under strict_keys (the control plane)
    # Whether this request is idempotent after all (chat: only when not streamed); None: whenever ``idempotent``.
    idempotent_if: Callable[[Ctx], Awaitable[bool]] | None = None
    # Headers a replay carries besides the cached ones (chat: the TPM bucket as it is now).
    replay_headers: Callable[[Ctx], dict[str, str]] | None = None


async def _json_fingerprint(ctx: Ctx) -> Any:
    try:
        return await ctx.json()
    except InvalidFormatError:
        return (await ctx.body()).decode("utf-8", "replace")


def endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``op`` into a Starlette endpoint that applies every convention."""

    async def run(request: Request) -> Response:
        emulator: Emulator = request.scope["app"].emulator  # app._Application
        state = request.scope["state"]
        request_id: str = state["request_id"]
        headers = request_headers(request.scope)
        requested_version = text(headers, VERSION_KEY)
        version = echo_version(requested_version)
        extra: dict[bytes, bytes] = {}
        started = time.perf_counter()
        team: Team | None = None  # known once authenticated: the journal records the team's exchanges only
        ctx: Ctx | None = None
        try:
            team, key = emulator.accounts.authenticate(api_key_from(headers), provision=op.provisions)
            require_scope(key, op.scope)
            now = emulator.accounts.now(team)
            emulator.generations.settle_due(team, now)  # every read sees a settled ledger
            emulator.characters.settle_due(team, now)  # and settled character syntheses
            if op.bucket is not None:
                decision = emulator.limiter.take(team.id, op.bucket, now)
                extra[b"x-ratelimit-limit"] = b"%d" % decision.limit
                extra[b"x-ratelimit-remaining"] = b"%d" % decision.remaining
                extra[b"x-ratelimit-reset"] = b"%d" % decision.reset
                if not decision.allowed:
                    error = TooManyRequestsError(bucket=op.bucket, retry_after=decision.retry_after)
                    error.headers["Retry-After"] = str(decision.retry_after)
                    raise error
            version = resolve_version(requested_version, team.default_api_version)
            ctx = Ctx(request, emulator, request_id, team, key, version, now, headers)
            idempotent = op.idempotent and (op.idempotent_if is None or await op.idempotent_if(ctx))
            response = await _run_idempotent(op, ctx) if idempotent else await _handle(op, ctx)
        except DomainError as error:
            response = error_response(error, request_id)
        finally:
            await request.close()  # closes multipart temp files even when the handler never read them
        # Every header this request adds, with the middleware's two, in one pass over the response's list
        # (in the order the middleware would have added them): the middleware then passes it as it is.
        extra[VERSION_KEY] = version.encode("latin-1")
        extra[REQUEST_ID] = request_id.encode("latin-1")
        response.raw_headers = state[STAMPED] = assign_raw(response.raw_headers, extra)
        if team is not None:
            record(emulator, team, op.name, request, response, ctx, started)
        return response

    run.__name__ = op.name
    return run


async def _handle(op: Operation, ctx: Ctx) -> Response:
    """The request's scenario first (a request-level outcome answers instead of the handler), then the handler."""
    await scenarios.apply(op, ctx)
    return await op.handler(ctx)


def _idempotency_key(ctx: Ctx) -> str | None:
    """The key from the first of the accepted headers; every one that is sent must be well-formed."""
    found = [idempotency.validate_key(h, v) for h in idempotency.HEADERS if (v := ctx.header(h.lower())) is not None]
    return found[0] if found else None


async def _run_idempotent(op: Operation, ctx: Ctx) -> Response:
    key = _idempotency_key(ctx)
    if key is None:
        return await _handle(op, ctx)
    body = await (op.fingerprint or _json_fingerprint)(ctx)
    route = f"{ctx.request.method} {ctx.request.url.path}"
    store = ctx.emulator.idempotency
    replay = store.begin(ctx.team.id, key, idempotency.fingerprint(route, body), ctx.now, wall=time.time())
    if replay is not None:
        if _still_running(op, ctx, replay.resource_id):
            raise IdempotencyKeyInUseError(STILL_RUNNING)  # the page: no Retry-After, no id of the original
        fresh = op.replay_headers(ctx) if op.replay_headers is not None else {}
        headers = {**replay.headers, **fresh, REPLAYED_HEADER: "true"}
        return Response(replay.body, status_code=replay.status, headers=headers)
    try:
        response = await _handle(op, ctx)
    except BaseException:
        store.abandon(ctx.team.id, key)
        raise
    if 200 <= response.status_code < 300:
        kept = {"content-type": response.headers.get("content-type", "application/json")}
        created = _resource_id(response.body) if op.running is not None else None
        store.complete(ctx.team.id, key, response.status_code, bytes(response.body), kept, created)
    else:
        store.abandon(ctx.team.id, key)
    return response


STILL_RUNNING = (
    "The original request with this Idempotency-Key is still running; retry the same key later to get its response."
)


def _still_running(op: Operation, ctx: Ctx, resource_id: str | None) -> bool:
    """Whether a finished twin must wait: its resource is still running and replays wait for terminal states."""
    if op.running is None or resource_id is None or ctx.emulator.settings.idempotency_replay != "terminal":
        return False
    return op.running(ctx, resource_id)


def _resource_id(body: bytes | memoryview) -> str | None:
    """The ``id`` of a JSON answer (what a lifecycle operation created), if any."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None

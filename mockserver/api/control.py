"""The control plane ``/_mock/*``: the team's clock, reset and webhook deliveries. Never part of ``openapi.yaml``.

Every route is scoped to the team of the ``X-Api-Key`` sent with it. When the server binds beyond
loopback the control plane answers only with ``Aurous-Mock-Control-Token`` (or not at all without a
configured token), so an emulator reachable from a network cannot be reset by anyone.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from mockserver.api.pipeline import Ctx, json_response
from mockserver.clock import rfc3339
from mockserver.core.errors import (
    DomainError,
    InvalidApiKeyError,
    MissingApiKeyError,
    RouteNotFoundError,
    ValueOutOfRangeError,
)
from mockserver.core.webhooks import id_scope

TOKEN_HEADER = "Aurous-Mock-Control-Token"
NEVER_BACKWARDS = "The clock never moves backwards: statuses are derived from it and must not regress."
TOO_FAR = "The clock cannot move past 9000-01-01T00:00:00Z."
# Far enough for any test, and far from datetime's year-9999 overflow when durations are added.
HORIZON = datetime(9000, 1, 1, tzinfo=UTC)


class AdvanceBody(BaseModel):
    seconds: float = Field(ge=0, le=10 * 365 * 86400)


class SetBody(BaseModel):
    now: AwareDatetime


def refusal(request: Request) -> DomainError | None:
    """Why a control route must not answer (checked before authentication, so nothing leaks), or None."""
    settings = request.app.state.emulator.settings
    if not settings.control_plane or (settings.control_token is None and not settings.loopback_only):
        return RouteNotFoundError(method=request.method, path=request.url.path)
    if settings.control_token is not None:
        sent = request.headers.get(TOKEN_HEADER)
        if sent is None:
            return MissingApiKeyError(f"The control plane needs the {TOKEN_HEADER} header.")
        if not hmac.compare_digest(sent.encode(), settings.control_token.encode()):
            return InvalidApiKeyError(f"Wrong {TOKEN_HEADER}.")
    return None


def _clock_state(ctx: Ctx) -> Response:
    team_time = ctx.team.time
    now = team_time.now(ctx.emulator.clock)
    return json_response({"now": rfc3339(now), "frozen": team_time.frozen_at is not None})


async def get_clock(ctx: Ctx) -> Response:
    return _clock_state(ctx)


async def advance_clock(ctx: Ctx) -> Response:
    body = await ctx.parse(AdvanceBody, any_content_type=True)
    if ctx.now + timedelta(seconds=body.seconds) >= HORIZON:
        raise ValueOutOfRangeError(TOO_FAR, param="seconds")
    with ctx.emulator.store.transaction():
        ctx.team.time.advance(ctx.emulator.clock, body.seconds)
    return _clock_state(ctx)


async def set_clock(ctx: Ctx) -> Response:
    body = await ctx.parse(SetBody, any_content_type=True)
    when = body.now.astimezone(UTC)
    if when < ctx.team.time.now(ctx.emulator.clock):
        raise ValueOutOfRangeError(NEVER_BACKWARDS, param="now")
    if when >= HORIZON:
        raise ValueOutOfRangeError(TOO_FAR, param="now")
    with ctx.emulator.store.transaction():
        ctx.team.time.set(ctx.emulator.clock, when)
    return _clock_state(ctx)


async def freeze_clock(ctx: Ctx) -> Response:
    with ctx.emulator.store.transaction():
        ctx.team.time.freeze(ctx.emulator.clock)
    return _clock_state(ctx)


async def unfreeze_clock(ctx: Ctx) -> Response:
    with ctx.emulator.store.transaction():
        ctx.team.time.unfreeze(ctx.emulator.clock)
    return _clock_state(ctx)


async def reset(ctx: Ctx) -> Response:
    ctx.emulator.accounts.reset(ctx.team)
    ctx.emulator.ids.reset(ctx.team.id)
    ctx.emulator.ids.reset(id_scope(ctx.team.id))
    team = ctx.emulator.accounts.team(ctx.team.id)
    return json_response({"reset": True, "team_id": team.id, "at": rfc3339(ctx.emulator.accounts.now(team))})


# --- webhooks ----------------------------------------------------------------------------------------


async def list_webhook_deliveries(ctx: Ctx) -> Response:
    """Every attempt of this team, newest first; ``?event_id=`` keeps one event's."""
    rows = ctx.emulator.webhooks.attempts(ctx.team, ctx.request.query_params.get("event_id"))
    return json_response({"object": "list", "data": [row.wire() for row in rows]})


async def flush_webhooks(ctx: Ctx) -> Response:
    """Send every attempt due now on this team's clock (retries falling due meanwhile too), then answer."""
    dispatcher = ctx.request.app.state.dispatcher
    return json_response({"flushed": await dispatcher.flush(ctx.team.id)})


async def redeliver_webhook_event(ctx: Ctx) -> Response:
    """A new delivery of the event to the same (still active) targets, due now."""
    event_id = ctx.path("event_id")
    deliveries = ctx.emulator.webhooks.redeliver(ctx.team, event_id, ctx.now)
    return json_response({"event_id": event_id, "deliveries": [d.id for d in deliveries]})

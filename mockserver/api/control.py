"""The control plane ``/_mock/*``: the team's clock, reset and webhook deliveries. Never part of ``openapi.yaml``.

Every route is scoped to the team of the ``X-Api-Key`` sent with it; the clock and reset also have a global
form, asked for explicitly with ``?global=true``. Every ``/_mock`` route is documented in ``control-openapi.yaml``.
When the server binds beyond loopback the control plane answers only with ``Aurous-Mock-Control-Token`` (or not
at all without a configured token), so an emulator reachable from a network cannot be reset by anyone.
"""

from __future__ import annotations

import hmac
import ipaddress
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from mockserver.api.pipeline import Ctx, json_response
from mockserver.clock import TeamTime, rfc3339
from mockserver.core.errors import (
    DomainError,
    ForeignOriginError,
    InvalidApiKeyError,
    InvalidFormatError,
    MissingApiKeyError,
    RouteNotFoundError,
    ValueOutOfRangeError,
)
from mockserver.core.models import Team
from mockserver.core.webhooks import id_scope

TOKEN_HEADER = "Aurous-Mock-Control-Token"
NEVER_BACKWARDS = "The clock never moves backwards: statuses are derived from it and must not regress."
TOO_FAR = "The clock cannot move past 9000-01-01T00:00:00Z."
TEAM_TOO_FAR = "A team's clock runs ahead of the global clock by more than is left before 9000-01-01T00:00:00Z."
FLAG_FORMAT = "{name} must be true or false."
REQUEST_IDS = "req"  # the id scope ConventionsMiddleware draws request ids from
# Far enough for any test, and far from datetime's year-9999 overflow when durations are added.
HORIZON = datetime(9000, 1, 1, tzinfo=UTC)


class AdvanceBody(BaseModel):
    seconds: float = Field(ge=0, le=10 * 365 * 86400, strict=True)  # a number: never "60" or false


class SetBody(BaseModel):
    now: AwareDatetime


def refusal(request: Request) -> DomainError | None:
    """Why a control route must not answer (checked before authentication, so nothing leaks), or None.

    Without a token the control plane answers only a server bound to loopback, and only peers on loopback: the
    peer check covers an app served some other way than ``serve`` (say ``uvicorn --factory --host 0.0.0.0``)
    while its settings still name the default host.
    """
    settings = request.app.state.emulator.settings
    local = settings.loopback_only and _from_loopback(request.scope.get("client"))
    if local and settings.control_token is None and _browser_beyond_loopback(request):
        local = False
    if not settings.control_plane or (settings.control_token is None and not local):
        return RouteNotFoundError(method=request.method, path=request.url.path)
    if settings.control_token is not None:
        sent = request.headers.get(TOKEN_HEADER)
        if sent is None:
            return MissingApiKeyError(f"The control plane needs the {TOKEN_HEADER} header.")
        if not hmac.compare_digest(sent.encode(), settings.control_token.encode()):
            return InvalidApiKeyError(f"Wrong {TOKEN_HEADER}.")
    return foreign_origin(request)


def _browser_beyond_loopback(request: Request) -> bool:
    """A browser that reached loopback under another name (DNS rebinding): its ``Host`` is not a loopback one.

    Only requests a browser sends (``Origin`` or ``Sec-Fetch-Site``) are checked, so scripts and test clients that
    send any ``Host`` keep working; a page on another site renamed to 127.0.0.1 never gets in.
    """
    if "origin" not in request.headers and "sec-fetch-site" not in request.headers:
        return False
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True


def foreign_origin(request: Request) -> DomainError | None:
    """A state change sent by a page of another origin (a cross-site form or fetch to loopback), or None.

    Browsers name the page's origin in ``Origin`` (``null`` for sandboxed frames and files) and say
    ``Sec-Fetch-Site: cross-site`` on every such request; reads stay open to same-origin pages only by CORS.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin.lower() != own.lower():
        return ForeignOriginError(origin=origin[:200])
    if site is not None and site not in ("same-origin", "none"):
        return ForeignOriginError(origin=site)
    return None


def _from_loopback(client: tuple[str, int] | None) -> bool:
    """Whether the peer is on loopback; a peer that is not an IP address (in-process transports) counts as local."""
    if client is None:
        return True
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return True
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def flag(ctx: Ctx, name: str, *, default: bool = False) -> bool:
    """A boolean query parameter (``true``/``false``); anything else is a 400 naming it."""
    value = ctx.request.query_params.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise InvalidFormatError(FLAG_FORMAT.format(name=name), param=name)
    return value == "true"


def _clock_state(ctx: Ctx) -> Response:
    if flag(ctx, "global"):
        shared = ctx.emulator.global_clock
        return json_response({"now": rfc3339(shared.now()), "frozen": shared.frozen})
    team_time = ctx.team.time
    now = team_time.now(ctx.emulator.clock)
    return json_response({"now": rfc3339(now), "frozen": team_time.frozen_at is not None})


def _clock_now(ctx: Ctx) -> datetime:
    return ctx.emulator.global_clock.now() if flag(ctx, "global") else ctx.team.time.now(ctx.emulator.clock)


async def _fire_due(ctx: Ctx) -> None:
    """After a move: book what finished by the new instant, then deliver every webhook attempt now due.

    Attempts go out in the order they fall due (each signed for its own instant), retries that fall due
    meanwhile too, so one advance of a day shows every retry. ``?wait=false`` leaves the sending to the
    background task; waiting, a hanging receiver holds the answer up by at most its timeout per attempt.
    """
    emulator, everyone = ctx.emulator, flag(ctx, "global")
    teams: list[Team] = emulator.store.values("team", owner=None) if everyone else [ctx.team]
    for team in teams:
        emulator.settle_due(team, emulator.accounts.now(team))
    if flag(ctx, "wait", default=True):
        await ctx.request.app.state.dispatcher.flush(None if everyone else ctx.team.id)


async def get_clock(ctx: Ctx) -> Response:
    return _clock_state(ctx)


def _carries_no_team_too_far(ctx: Ctx, target: datetime, param: str) -> None:
    """A global move carries every running team's own offset along: none may pass the horizon with it (a team
    past ``datetime.max`` could not even read its clock; found by fuzzing the control plane)."""
    if not flag(ctx, "global"):
        return
    teams: list[Team] = ctx.emulator.store.values("team", owner=None)
    ahead = max((team.time.offset for team in teams if team.time.frozen_at is None), default=0.0)
    if ahead > 0 and ahead >= (HORIZON - target).total_seconds():  # never target + ahead: it may overflow
        raise ValueOutOfRangeError(TEAM_TOO_FAR, param=param)


async def advance_clock(ctx: Ctx) -> Response:
    """Move the team's time (every team's with ``?global=true``) forward; everything due fires before the answer."""
    body = await ctx.parse(AdvanceBody, any_content_type=True)
    if _clock_now(ctx) + timedelta(seconds=body.seconds) >= HORIZON:
        raise ValueOutOfRangeError(TOO_FAR, param="seconds")
    _carries_no_team_too_far(ctx, _clock_now(ctx) + timedelta(seconds=body.seconds), "seconds")
    if flag(ctx, "global"):
        ctx.emulator.global_clock.advance(body.seconds)
    else:
        base = ctx.emulator.clock
        ctx.emulator.accounts.move_time(ctx.team, lambda time: time.advance(base, body.seconds))
    await _fire_due(ctx)
    return _clock_state(ctx)


async def set_clock(ctx: Ctx) -> Response:
    body = await ctx.parse(SetBody, any_content_type=True)
    try:
        when = body.now.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before datetime.min in UTC (9999-12-31…-01:00 after max)
        raise ValueOutOfRangeError(NEVER_BACKWARDS if body.now.year == 1 else TOO_FAR, param="now") from None
    if when < _clock_now(ctx):
        raise ValueOutOfRangeError(NEVER_BACKWARDS, param="now")
    if when >= HORIZON:
        raise ValueOutOfRangeError(TOO_FAR, param="now")
    _carries_no_team_too_far(ctx, when, "now")
    if flag(ctx, "global"):
        ctx.emulator.global_clock.set(when)
    else:
        base = ctx.emulator.clock

        def forward(time: TeamTime) -> datetime:  # checked again on the stored clock: another worker may have moved it
            if when < time.now(base):
                raise ValueOutOfRangeError(NEVER_BACKWARDS, param="now")
            return time.set(base, when)

        ctx.emulator.accounts.move_time(ctx.team, forward)
    await _fire_due(ctx)
    return _clock_state(ctx)


async def freeze_clock(ctx: Ctx) -> Response:
    if flag(ctx, "global"):
        ctx.emulator.global_clock.freeze()
    else:
        base = ctx.emulator.clock
        ctx.emulator.accounts.move_time(ctx.team, lambda time: time.freeze(base))
    return _clock_state(ctx)


async def unfreeze_clock(ctx: Ctx) -> Response:
    if flag(ctx, "global"):
        ctx.emulator.global_clock.unfreeze()
    else:
        base = ctx.emulator.clock
        ctx.emulator.accounts.move_time(ctx.team, lambda time: time.unfreeze(base))
    return _clock_state(ctx)


async def reset(ctx: Ctx) -> Response:
    """Forget the team's data (every team's with ``?global=true``); its journal and snapshots are kept."""
    emulator = ctx.emulator
    if flag(ctx, "global"):
        emulator.accounts.reset_all()
        emulator.ids.reset(keep={REQUEST_IDS})  # request ids (and the journal's) stay unique across resets
        emulator.global_clock.reset()
        return json_response({"reset": True, "team_id": None, "at": rfc3339(emulator.clock.now())})
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

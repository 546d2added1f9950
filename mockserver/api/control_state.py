"""``/_mock/snapshots``, ``/_mock/keys`` and ``/_mock/team``: roll a team back, declare its keys, change its settings.

All scoped to the team of the ``X-Api-Key`` sent (snapshots also globally, with ``?global=true``).
``GET /_mock/keys`` shows whole key strings: this is a test tool, and tests need them to send requests.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mockserver.api.control import flag
from mockserver.api.pipeline import Ctx, json_response
from mockserver.clock import rfc3339
from mockserver.core.accounts import pinned_version
from mockserver.core.models import ApiKey
from mockserver.settings import Scope

MAX_CREDITS = 1e15


class KeyBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)

    key: str | None = Field(default=None, max_length=208)
    scope: Scope = "full"
    revoked: bool = False


class KeyPatch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)

    scope: Scope | None = None
    revoked: bool | None = None


class TeamPatch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", defer_build=True)

    credits: float | None = Field(default=None, ge=0, le=MAX_CREDITS, allow_inf_nan=False)
    scope: Scope | None = None  # of the key sending the request
    billing_mode: str | None = Field(default=None, min_length=1, max_length=64)  # open: non-metered never gates
    default_api_version: str | None = None


# --- snapshots ---------------------------------------------------------------------------------------


def _owner(ctx: Ctx) -> str | None:
    return None if flag(ctx, "global") else ctx.team.id


async def create_snapshot(ctx: Ctx) -> Response:
    """Capture the team's records (the whole store and the global time with ``?global=true``)."""
    team = None if flag(ctx, "global") else ctx.team
    return json_response(ctx.emulator.snapshots.take(team).wire(), status=201)


async def list_snapshots(ctx: Ctx) -> Response:
    rows = ctx.emulator.snapshots.list(_owner(ctx))
    return json_response({"object": "list", "data": [row.wire() for row in rows]})


async def restore_snapshot(ctx: Ctx) -> Response:
    """Put the team (the whole store) back as captured; other teams, the journal and the snapshots stay."""
    snapshot = ctx.emulator.snapshots.restore(ctx.path("id"), _owner(ctx))
    return json_response({**snapshot.wire(), "restored": True})


async def delete_snapshot(ctx: Ctx) -> Response:
    snapshot = ctx.emulator.snapshots.delete(ctx.path("id"), _owner(ctx))
    return json_response({"id": snapshot.id, "object": "mock.snapshot", "deleted": True})


# --- keys --------------------------------------------------------------------------------------------


def _key(key: ApiKey) -> dict[str, Any]:
    return {
        "key": key.key,
        "object": "mock.api_key",
        "id": key.id,
        "scope": key.scope,
        "revoked": key.revoked,
        "team_id": key.team_id,
    }


async def declare_key(ctx: Ctx) -> Response:
    """A new key on the caller's team; without ``key`` one is generated (``al_live_`` + 64 hex)."""
    body = await ctx.parse(KeyBody, any_content_type=True)
    raw = body.key if body.key is not None else "al_live_" + ctx.emulator.ids.token_hex(32, scope=f"keys:{ctx.team.id}")
    key = ctx.emulator.accounts.declare_key(ctx.team, raw, scope=body.scope, revoked=body.revoked)
    return json_response(_key(key), status=201)


async def list_keys(ctx: Ctx) -> Response:
    return json_response({"object": "list", "data": [_key(key) for key in ctx.emulator.accounts.keys(ctx.team)]})


async def update_key(ctx: Ctx) -> Response:
    """Revoke, unrevoke or rescope a key of the caller's team (another team's key is not found)."""
    body = await ctx.parse(KeyPatch, any_content_type=True)
    key = ctx.emulator.accounts.update_key(ctx.team, ctx.path("key"), scope=body.scope, revoked=body.revoked)
    return json_response(_key(key))


# --- team settings -----------------------------------------------------------------------------------


def _team_state(ctx: Ctx) -> Response:
    team, emulator = ctx.team, ctx.emulator
    return json_response(
        {
            "id": team.id,
            "object": "mock.team",
            "name": team.name,
            "credits": team.credits,
            "held_credits": team.held,
            "available_credits": team.available,
            "billing_mode": team.billing_mode,
            "default_api_version": team.default_api_version,
            "scope": ctx.key.scope,
            "clock": {"now": rfc3339(emulator.accounts.now(team)), "frozen": team.time.frozen_at is not None},
        }
    )


async def get_team(ctx: Ctx) -> Response:
    return _team_state(ctx)


async def update_team(ctx: Ctx) -> Response:
    """Apply every given setting or none: each is checked before anything changes.

    ``credits`` writes an ``adjustment`` ledger row and may not go below the held credits; ``scope`` is the
    scope of the key sending this request.
    """
    body = await ctx.parse(TeamPatch, any_content_type=True)
    emulator = ctx.emulator
    version = pinned_version(body.default_api_version) if body.default_api_version is not None else None
    with emulator.store.transaction():
        if body.credits is not None:
            emulator.ledger.adjust(ctx.team, body.credits, ctx.now)
        emulator.accounts.configure(ctx.team, billing_mode=body.billing_mode, default_api_version=version)
        if body.scope is not None:
            emulator.accounts.update_key(ctx.team, ctx.key.key, scope=body.scope)
    return _team_state(ctx)

"""Read-only views of a team for the dashboard (``/_mock/ui``) and anyone: teams, generations, characters, chat
completions, ledger, webhook endpoints, and ``/_mock/changes``, the cheap "has anything changed" probe the page polls.

Every list is paginated (newest first, ``starting_after``) and renders only its page, so a team with 10,000
generations costs one page of rendering. A generation is shown with the resource exactly as
``GET /v1/images/{id}`` returns it, beside what only the emulator knows (its timeline, credits held or charged,
when its outputs start answering 410); a chat completion likewise, as ``GET /v1/chat/completions/{id}`` returns it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from starlette.responses import Response

from mockserver.api import characters as character_views
from mockserver.api import chat as chat_views
from mockserver.api.control import flag
from mockserver.api.generations import base_url, query_int, render, wire_status
from mockserver.api.pipeline import Ctx, json_response, page_response
from mockserver.api.usage import ledger_response, render_llm_event
from mockserver.clock import rfc3339, rfc3339_or_none
from mockserver.core import chat
from mockserver.core._chat_records import Completion
from mockserver.core.errors import InvalidFormatError
from mockserver.core.journal import KEY_PREVIEW
from mockserver.core.models import Generation, JobStatus, Team
from mockserver.core.pagination import paginate
from mockserver.core.scenarios import output_ttl
from mockserver.core.usage_rows import KIND as LLM_USAGE
from mockserver.core.usage_rows import LlmUsageRow
from mockserver.core.webhooks import DELIVERY, ENDPOINT, LOG

STATUSES = tuple(status.value for status in JobStatus)
KINDS = ("image", "video")
BAD_STATUS = "status must be one of " + ", ".join(STATUSES) + "."
BAD_KIND = "kind must be image or video."
CHAT_STATUSES = ("in_progress", "completed", "failed", "cancelled")
BAD_CHAT_STATUS = "status must be one of " + ", ".join(CHAT_STATUSES) + "."
COUNTED = ("generation", "ledger", "character", "api_key", ENDPOINT, DELIVERY)  # kinds whose count says "changed"
# A chat completion created or settled (an exempt team moves no credit), an embeddings request (its usage row).
LLM_COUNTED = (chat.KIND, chat.SETTLED, LLM_USAGE)
LLM_TYPES = ("chat", "embedding")
BAD_LLM_TYPE = "type must be chat or embedding."


def _one_of(ctx: Ctx, name: str, allowed: tuple[str, ...], message: str) -> str | None:
    value = ctx.request.query_params.get(name)
    if value is not None and value not in allowed:
        raise InvalidFormatError(message, param=name)
    return value


# --- teams ---------------------------------------------------------------------------------------------


def _team_row(ctx: Ctx, team: Team) -> dict[str, Any]:
    emulator = ctx.emulator
    keys = emulator.accounts.keys(team)
    return {
        "id": team.id,
        "object": "mock.team_overview",
        "name": team.name,
        "created_at": rfc3339(team.created_at),
        "key_preview": keys[0].key[:KEY_PREVIEW] + "…" if keys else None,  # never a whole key: no team's secret
        "keys": len(keys),
        "credits": team.credits,
        "held_credits": team.held,
        "available_credits": team.available,
        "billing_mode": team.billing_mode,
        "generations": emulator.store.count("generation", owner=team.id),
        "clock": {"now": rfc3339(emulator.accounts.now(team)), "frozen": team.time.frozen_at is not None},
    }


async def list_teams(ctx: Ctx) -> Response:
    """The caller's team; every team seen with ``?global=true``, newest first: counters and a key preview only."""
    limit = query_int(ctx, "limit", 100, 1, 1000)
    if not flag(ctx, "global"):
        return json_response({"object": "list", "data": [_team_row(ctx, ctx.team)], "has_more": False})
    teams: list[Team] = sorted(ctx.emulator.store.values("team", owner=None), key=lambda t: t.created_at, reverse=True)
    rows = [_team_row(ctx, team) for team in teams[:limit]]
    return json_response({"object": "list", "data": rows, "has_more": len(teams) > limit})


# --- generations ---------------------------------------------------------------------------------------


def _credits(gen: Generation, status: JobStatus) -> dict[str, float]:
    """What the generation holds now, or was charged; an exempt team's generations hold nothing."""
    amount = gen.cost.amount if gen.hold_id is not None else 0.0
    held = amount if not gen.settled and not status.terminal else 0.0
    charged = amount if gen.settled and status is JobStatus.SUCCEEDED else 0.0
    return {"amount": gen.cost.amount, "held": held, "charged": charged}


def _expires_at(ctx: Ctx, gen: Generation, status: JobStatus) -> datetime | None:
    """When the outputs start answering ``410 output_expired`` (a succeeded generation only)."""
    completed = gen.completed_at(ctx.now)
    if status is not JobStatus.SUCCEEDED or completed is None:
        return None
    settings = ctx.emulator.settings
    ttl = settings.output_ttl_image_seconds if gen.media_type == "image" else settings.output_ttl_video_seconds
    return completed + timedelta(seconds=output_ttl(gen.params, ttl))


def _generation_row(ctx: Ctx, gen: Generation, base: str) -> dict[str, Any]:
    settings = ctx.emulator.settings
    status = wire_status(gen, ctx.now, settings)
    return {
        "id": gen.id,
        "object": "mock.generation",
        "kind": gen.media_type,
        "status": status.value,
        "prompt": gen.prompt,
        "created_at": rfc3339(gen.created_at),
        "started_at": rfc3339(gen.started_at),
        "finish_at": rfc3339(gen.finish_at),
        "credits": _credits(gen, status),
        "outputs_expire_at": rfc3339_or_none(_expires_at(ctx, gen, status)),
        "resource": render(gen, ctx.now, base, settings),
    }


async def list_generations(ctx: Ctx) -> Response:
    """The team's generations, newest first; ``status`` and ``kind`` filter before paginating."""
    query = ctx.request.query_params
    limit = query_int(ctx, "limit", 50, 1, 100)
    status = _one_of(ctx, "status", STATUSES, BAD_STATUS)
    kind = _one_of(ctx, "kind", KINDS, BAD_KIND)
    rows: list[Generation] = ctx.emulator.store.values("generation", owner=ctx.team.id)
    rows.reverse()
    settings = ctx.emulator.settings
    if kind is not None:
        rows = [gen for gen in rows if gen.media_type == kind]
    if status is not None:
        rows = [gen for gen in rows if wire_status(gen, ctx.now, settings).value == status]
    page = paginate(rows, limit=limit, starting_after=query.get("starting_after"))
    base = base_url(ctx)
    return page_response(page, lambda gen: _generation_row(ctx, gen, base), total=len(rows))


async def list_characters(ctx: Ctx) -> Response:
    """The team's characters as ``GET /v1/characters`` renders them (deleted ones excluded), newest first."""
    query = ctx.request.query_params
    limit = query_int(ctx, "limit", 50, 1, 100)
    page = ctx.emulator.characters.list_characters(
        ctx.team, ctx.now, limit=limit, starting_after=query.get("starting_after"), status=None
    )
    base, settings = base_url(ctx), ctx.emulator.settings
    return page_response(page, lambda character: character_views.render(character, ctx.now, base, settings))


# --- chat completions ----------------------------------------------------------------------------------


def _chat_credits(completion: Completion) -> dict[str, float]:
    """The hold while it runs, then what it was billed (the hold's rest is released); an exempt team holds nothing."""
    if completion.hold_id is None:
        return {"amount": completion.cost.amount, "held": 0.0, "charged": 0.0}
    usage = completion.usage or {}
    held = 0.0 if completion.settled else completion.cost.amount
    charged = float(usage.get("credits_charged", 0.0)) if completion.settled else 0.0
    return {"amount": completion.cost.amount, "held": held, "charged": charged}


def _chat_row(completion: Completion) -> dict[str, Any]:
    usage = completion.usage or {}
    return {
        "id": completion.id,
        "object": "mock.chat_completion",
        "model": completion.model,
        "status": completion.status,
        "stream": completion.stream,
        "finish_reason": completion.finish_reason,
        "prompt": getattr(completion, "prompt", ""),  # a record stored before the field existed has none
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": usage.get("completion_tokens"),
        "credits": _chat_credits(completion),
        "created_at": rfc3339(completion.created_at),
        "finished_at": rfc3339_or_none(completion.finished_at),
        "resource": chat_views.render(completion),
    }


async def list_chat_completions(ctx: Ctx) -> Response:
    """The team's chat completions, newest first, those ``GET /v1/chat/completions/{id}`` still answers (retention);
    ``status`` filters before paginating."""
    query = ctx.request.query_params
    limit = query_int(ctx, "limit", 50, 1, 100)
    status = _one_of(ctx, "status", CHAT_STATUSES, BAD_CHAT_STATUS)
    retention = timedelta(days=ctx.emulator.settings.chat_retention_days)
    stored: list[Completion] = ctx.emulator.store.values(chat.KIND, owner=ctx.team.id)
    rows = [row for row in reversed(stored) if ctx.now - row.created_at <= retention]
    if status is not None:
        rows = [row for row in rows if row.status == status]
    page = paginate(rows, limit=limit, starting_after=query.get("starting_after"))
    return page_response(page, _chat_row, total=len(rows))


async def list_llm_usage(ctx: Ctx) -> Response:
    """The team's LLM usage rows (chat completions and embeddings requests), newest first, each as the
    ``GET /v1/usage/events`` stream renders it; ``type`` filters before paginating."""
    query = ctx.request.query_params
    limit = query_int(ctx, "limit", 20, 1, 100)
    kind = _one_of(ctx, "type", LLM_TYPES, BAD_LLM_TYPE)
    rows: list[LlmUsageRow] = list(reversed(ctx.emulator.usage_rows.all(ctx.team)))
    if kind is not None:
        rows = [row for row in rows if row.type == kind]
    page = paginate(rows, limit=limit, starting_after=query.get("starting_after"))
    return page_response(page, render_llm_event, total=len(rows))


# --- credits and webhooks ------------------------------------------------------------------------------


async def list_ledger(ctx: Ctx) -> Response:
    """The credit ledger (hold, charge, release, adjustment …) as ``GET /v1/usage/events`` without ``start_time``."""
    return ledger_response(ctx, ctx.emulator.ledger.entries(ctx.team))


async def list_webhook_endpoints(ctx: Ctx) -> Response:
    """Every endpoint of the team, newest first, secrets shown by their preview only."""
    rows = list(reversed(ctx.emulator.store.values(ENDPOINT, owner=ctx.team.id)))
    return json_response({"object": "list", "data": [row.wire() for row in rows]})


# --- changes -------------------------------------------------------------------------------------------


def version(ctx: Ctx) -> str:
    """A digest of what the dashboard shows: it moves with every recorded request, record count, credit, clock move
    and webhook attempt of the team; O(1) per kind, so a page polling it costs next to nothing."""
    team, store = ctx.team, ctx.emulator.store
    parts: list[object] = [ctx.emulator.journal.latest(team.id), team.credits, team.held, team.billing_mode]
    shift = ctx.emulator.global_clock.cell.load()  # a global move reaches every team
    parts += [team.time.offset, team.time.frozen_at, shift.offset, shift.frozen_at, len(store.get(LOG, team.id) or ())]
    parts += [store.count(kind, owner=team.id) for kind in COUNTED + LLM_COUNTED]
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


async def changes(ctx: Ctx) -> Response:
    """The team's change digest and clock; poll it and re-read the views when ``version`` moves."""
    clock = {"now": rfc3339(ctx.now), "frozen": ctx.team.time.frozen_at is not None}
    return json_response({"object": "mock.changes", "version": version(ctx), "clock": clock})

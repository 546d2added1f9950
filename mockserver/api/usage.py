"""Handlers for usage: ``GET /v1/usage`` (totals or bucketed metrics) and ``GET /v1/usage/events`` (stream or ledger).

Which documented shape answers is an emulator choice (reference §8.15): the [G] shapes when ``start_time``
or a token continuing them is sent, the [R] shapes otherwise.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from mockserver.api.generations import query_int
from mockserver.api.pipeline import Ctx, json_response, page_response
from mockserver.clock import rfc3339, rfc3339_or_none
from mockserver.core import usage
from mockserver.core.errors import InvalidFormatError, ValueOutOfRangeError
from mockserver.core.models import Generation, LedgerEntry
from mockserver.core.pagination import Page
from mockserver.core.usage_rows import LlmUsageRow

GET_USAGE = "getUsage"
LIST_EVENTS = "listUsageEvents"
TIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$", re.IGNORECASE)

MSG_TIME = "{param} must be an RFC 3339 timestamp with a UTC offset, e.g. 2026-05-04T10:00:00Z."
MSG_ONE_OF = "{param} must be one of: {allowed}."
MSG_GROUP_BY_UNKNOWN = "group_by accepts: " + ", ".join(usage.GROUP_KEYS) + "."
MSG_GROUP_BY_TOO_MANY = f"group_by accepts at most {usage.MAX_GROUP_BY} dimensions."
MSG_GROUP_BY_REPEATED = "group_by names a dimension more than once."

_FILTERS = ("api_key_id", "user_id", "lora_id")
METRIC_DEFAULTS: dict[str, Any] = {
    "bucket_width": "1d",
    "group_by": [],
    **dict.fromkeys(("status", "type", *_FILTERS, "character_id")),
}
# The stream's `type` is the media type (chat/embedding/image/video), not the inference type of the metrics.
EVENT_DEFAULTS: dict[str, Any] = dict.fromkeys(("media_type", "status", "model", *_FILTERS))


def parse_time(raw: str, param: str) -> str:
    """An RFC 3339 instant in its canonical form; a naive or malformed one is ``invalid_format``.

    A leap second (``:60``, valid RFC 3339) reads as the first instant of the next minute.
    """
    found = TIME_PATTERN.match(raw)
    try:
        if found is not None:
            leap = found.group(1) == "60"
            text = raw[: found.start(1)] + ("59" if leap else found.group(1)) + raw[found.end(1) :]
            when = datetime.fromisoformat(text.upper()) + timedelta(seconds=leap)
            if when.tzinfo is not None:
                return usage.canonical_time(when.astimezone(UTC))
    except (ValueError, OverflowError):
        pass
    raise InvalidFormatError(MSG_TIME.format(param=param), param=param)


def _one_of(ctx: Ctx, name: str, allowed: tuple[str, ...]) -> str | None:
    value = ctx.request.query_params.get(name)
    if value is not None and value not in allowed:
        raise InvalidFormatError(MSG_ONE_OF.format(param=name, allowed=", ".join(allowed)), param=name)
    return value


def _group_by(ctx: Ctx) -> list[str] | None:
    """Comma-separated, repeated, or both; each dimension at most once (the spec's ``uniqueItems``)."""
    raw = ctx.request.query_params.getlist("group_by")
    if not raw:
        return None
    values = [part.strip() for value in raw for part in value.split(",")]
    if any(value not in usage.GROUP_KEYS for value in values):
        raise InvalidFormatError(MSG_GROUP_BY_UNKNOWN, param="group_by")
    if len(set(values)) < len(values):
        raise InvalidFormatError(MSG_GROUP_BY_REPEATED, param="group_by")
    if len(values) > usage.MAX_GROUP_BY:
        raise ValueOutOfRangeError(MSG_GROUP_BY_TOO_MANY, param="group_by")
    return values


def _texts(ctx: Ctx, sent: dict[str, Any], names: tuple[str, ...]) -> None:
    """Free-text filters; an empty value filters nothing."""
    query = ctx.request.query_params
    for name in names:
        if name in query:
            sent[name] = query[name] or None


def _lora(ctx: Ctx, ref: str) -> str:
    """A LoRA slug or legacy UUID filters like its id (inferred); an unknown reference filters to nothing."""
    for kind in ("image", "video"):
        lora = ctx.emulator.catalogue.find(kind, ref, ctx.team.id)
        if lora is not None:
            return lora.id
    return ref


def _common(ctx: Ctx, status: tuple[str, ...] | None) -> dict[str, Any]:
    """The parameters both [G] operations share, as sent (normalized), absent ones left out."""
    query = ctx.request.query_params
    sent: dict[str, Any] = {}
    for name in ("start_time", "end_time"):
        if name in query:
            sent[name] = parse_time(query[name], name)
    if status is not None and "status" in query:
        sent["status"] = _one_of(ctx, "status", status)
    _texts(ctx, sent, _FILTERS if status is not None else ("status", *_FILTERS))
    if sent.get("lora_id") is not None:
        sent["lora_id"] = _lora(ctx, sent["lora_id"])
    return sent


def _metrics_params(ctx: Ctx) -> dict[str, Any]:
    """``type`` is open-ended (values seen: t2i, t2v, chat, embedding): an unknown one matches nothing."""
    sent = _common(ctx, usage.STATUSES)
    if "bucket_width" in ctx.request.query_params:
        sent["bucket_width"] = _one_of(ctx, "bucket_width", tuple(usage.BUCKET_WIDTHS))
    group_by = _group_by(ctx)
    if group_by is not None:
        sent["group_by"] = group_by
    _texts(ctx, sent, ("type", "character_id"))
    return sent


def _event_params(ctx: Ctx) -> dict[str, Any]:
    """The stream's ``status`` is free text in the spec (an unknown one matches nothing); ``type`` is an enum."""
    sent = _common(ctx, None)
    if "type" in ctx.request.query_params:
        sent["media_type"] = _one_of(ctx, "type", usage.EVENT_TYPES)
    _texts(ctx, sent, ("model",))
    if sent.get("api_key_id") is not None:
        sent["api_key_id"] = usage.recorded_key_id(sent["api_key_id"])
    return sent


def _begin(
    ctx: Ctx, operation: str, sent: dict[str, Any], defaults: dict[str, Any], limits: tuple[int, int], param: str
) -> usage.Resumed:
    """The query of this page: a fresh one, or the one a token carries (re-sent parameters must match it)."""
    default_limit, max_limit = limits
    limit = query_int(ctx, "limit", default_limit, 1, max_limit)
    token = ctx.request.query_params.get(param)
    if not token:
        params = usage.complete({**defaults, **sent}, ctx.now)
        return usage.Resumed(params, None, limit, usage.canonical_time(ctx.now))
    secret = ctx.emulator.settings.signing_key
    found = usage.resume(secret, token, operation=operation, team_id=ctx.team.id, sent=sent, now=ctx.now, param=param)
    if "limit" in ctx.request.query_params:
        return usage.Resumed(found.params, found.position, limit, found.issued_at)
    return found


def _next(ctx: Ctx, operation: str, page: usage.Resumed, position: Any) -> str:
    return usage.next_token(
        ctx.emulator.settings.signing_key,
        operation=operation,
        team_id=ctx.team.id,
        params=page.params,
        position=position,
        limit=page.limit,
        issued_at=page.issued_at,
    )


def _generations(ctx: Ctx) -> list[Generation]:
    rows: list[Generation] = ctx.emulator.store.values("generation", owner=ctx.team.id)
    return rows


def _wants_stream(ctx: Ctx, token_param: str) -> bool:
    query = ctx.request.query_params
    return "start_time" in query or bool(query.get(token_param))


def render_bucket(bucket: usage.Bucket) -> dict[str, Any]:
    return {
        "object": "usage.bucket",
        "bucket_start": rfc3339(bucket.start),
        "bucket_end": rfc3339(bucket.end),
        "groups": [{"key": key, "metrics": metrics} for key, metrics in bucket.groups],
    }


async def get_usage(ctx: Ctx) -> Response:
    """Lifetime totals ([R]) without ``start_time``; bucketed metrics ([G]) with it or with a ``page_token``."""
    gens = _generations(ctx)
    entries = ctx.emulator.ledger.entries(ctx.team)
    if not _wants_stream(ctx, "page_token"):
        # The [G] parameters are still validated: a malformed filter is a 400 whichever shape answers.
        _metrics_params(ctx)
        query_int(ctx, "limit", 24, 1, 100)
        return json_response(usage.lifetime_totals(gens, entries))
    page = _begin(ctx, GET_USAGE, _metrics_params(ctx), METRIC_DEFAULTS, (24, 100), "page_token")
    rows = usage.buckets(page.params, gens, usage.charges_by_generation(entries), ctx.now)
    offset = int(page.position or 0)
    end = offset + page.limit
    has_more = end < len(rows)
    return json_response(
        {
            "object": "list",
            "data": [render_bucket(bucket) for bucket in rows[offset:end]],
            "has_more": has_more,
            "next_page": _next(ctx, GET_USAGE, page, end) if has_more else None,
        }
    )


def render_llm_event(row: LlmUsageRow) -> dict[str, Any]:
    """A [G] event-stream row of a chat completion or an embeddings request (``cmp_`` / ``emb_``)."""
    return {
        "id": row.id,
        "type": row.type,
        "model": row.model,
        "status": row.status,
        "created_at": rfc3339(row.created_at),
        "completed_at": rfc3339_or_none(row.completed_at),
        "duration_ms": row.duration_ms(),
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "credits_charged": row.credits_charged,
        "api_key_id": row.api_key_id,
        "user_id": None,
        "request_id": row.request_id,
    }


def render_event(gen: Generation | LlmUsageRow, now: datetime, charges: dict[str, float]) -> dict[str, Any]:
    """A [G] event-stream row; tokens and user are not recorded for generations (null)."""
    if isinstance(gen, LlmUsageRow):
        return render_llm_event(gen)
    completed = gen.completed_at(now)
    return {
        "id": gen.id,
        "type": gen.media_type,
        "model": usage.model_of(gen),
        "status": usage.usage_status(gen, now),
        "created_at": rfc3339(gen.created_at),
        "completed_at": rfc3339_or_none(completed),
        "duration_ms": usage.duration_ms(gen, now),
        "input_tokens": None,
        "output_tokens": None,
        "credits_charged": charges.get(gen.id, 0.0),
        "api_key_id": usage.event_key_id(gen.params.get("api_key_id")),
        "user_id": None,
        "request_id": gen.creation_request_id,
    }


def render_entry(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": "usage_event",
        "type": entry.type,
        "amount": entry.amount,
        "currency": "credit",
        "created_at": rfc3339(entry.created_at),
        "generation_id": entry.generation_id,
        "hold_id": entry.hold_id,
        "description": entry.description,
    }


def ledger_response(ctx: Ctx, entries: list[LedgerEntry]) -> Response:
    query = ctx.request.query_params
    kind = query.get("type")
    if kind is not None and kind not in usage.LEDGER_TYPES:
        allowed = ", ".join(usage.LEDGER_TYPES)
        raise InvalidFormatError(MSG_ONE_OF.format(param="type", allowed=allowed), param="type")
    limit = query_int(ctx, "limit", 20, 1, 100)
    rows, has_more = usage.ledger_page(entries, kind=kind, starting_after=query.get("starting_after"), limit=limit)
    return page_response(Page(rows, has_more), render_entry)


async def list_usage_events(ctx: Ctx) -> Response:
    """The [G] event stream with ``start_time`` (or a ``cursor``); the [R] credit ledger otherwise."""
    entries = ctx.emulator.ledger.entries(ctx.team)
    if not _wants_stream(ctx, "cursor"):
        _common(ctx, None)  # the [G] filters are validated whichever shape answers
        return ledger_response(ctx, entries)
    page = _begin(ctx, LIST_EVENTS, _event_params(ctx), EVENT_DEFAULTS, (100, 500), "cursor")
    llm_rows = ctx.emulator.usage_rows.all(ctx.team)
    rows, has_more = usage.events(page.params, _generations(ctx), ctx.now, page.position, page.limit, llm_rows)
    cursor = None
    if has_more and rows:
        cursor = _next(ctx, LIST_EVENTS, page, [usage.canonical_time(rows[-1].created_at), rows[-1].id])
    charges = usage.charges_by_generation(entries)
    return json_response(
        {
            "object": "list",
            "data": [render_event(gen, ctx.now, charges) for gen in rows],
            "has_more": has_more,
            "next_cursor": cursor,
        }
    )

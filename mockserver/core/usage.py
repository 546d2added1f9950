"""Usage: lifetime totals, bucketed metrics, the per-request event stream, the credit ledger, signed page tokens.

Pure functions over a team's generations, its ledger rows and the team's ``now``. ``GET /v1/usage`` and
``GET /v1/usage/events`` each have two incompatible documented shapes (reference §2.8, §8.15): the
[G] metrics / event stream when ``start_time`` (or a token continuing one) is sent, the [R] totals / credit
ledger otherwise. A query is carried as a canonical dict of JSON values (``params``), so that page
tokens can store it and fingerprint it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from mockserver.core.errors import (
    InvalidPageTokenError,
    TooManyBucketsError,
    UnknownReferenceError,
    ValueOutOfRangeError,
)
from mockserver.core.models import Generation, JobStatus, LedgerEntry
from mockserver.core.usage_rows import LlmUsageRow

BUCKET_WIDTHS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
GROUP_KEYS = ("status", "api_key_id", "user_id", "type", "model")
MAX_GROUP_BY = 2
STATUSES = ("completed", "failed", "cancelled", "processing", "pending")
EVENT_TYPES = ("chat", "embedding", "image", "video")
LEDGER_TYPES = ("hold", "release", "charge", "refund", "topup", "adjustment")
MAX_BUCKETS = 2000  # the vendor documents too_many_buckets but not the cap (inferred)
MAX_LOOKBACK = timedelta(days=730)
TOKEN_TTL = timedelta(hours=24)

MSG_LOOKBACK = "start_time must be at most 730 days before now."
MSG_END_BEFORE_START = "end_time must be later than start_time."
MSG_TOKEN_GARBLED = "The {param} is not a token issued by this API."
MSG_TOKEN_TEAM = "The {param} belongs to another team."
MSG_TOKEN_EXPIRED = "The {param} has expired (token_expired): tokens live 24 hours from the first page."
MSG_TOKEN_QUERY = "The {param} does not match the query parameters sent with it."

# The pages disagree on how a key id is spelled: `/v1/usage` groups show `key_<ulid>`, the event-stream page shows
# `apikey_<ulid>`. Each operation follows its own page (the more specific one); the ulid is the same key's.
KEY_ID_PREFIX = "key_"
EVENT_KEY_ID_PREFIX = "apikey_"


def event_key_id(key_id: str | None) -> str | None:
    """A recorded key id (``key_…``) as the event stream spells it (``apikey_…``)."""
    if key_id is None or not key_id.startswith(KEY_ID_PREFIX):
        return key_id
    return EVENT_KEY_ID_PREFIX + key_id.removeprefix(KEY_ID_PREFIX)


def recorded_key_id(sent: str) -> str:
    """An event-stream ``api_key_id`` filter as recorded: ``apikey_…`` and its alias ``key_…`` name the same key."""
    if sent.startswith(EVENT_KEY_ID_PREFIX):
        return KEY_ID_PREFIX + sent.removeprefix(EVENT_KEY_ID_PREFIX)
    return sent


_USAGE_STATUS = {JobStatus.SUCCEEDED: "completed", JobStatus.EXPIRED: "failed", JobStatus.MODERATION_REJECTED: "failed"}


def _money(value: float) -> float:
    return round(value, 4)


def usage_status(gen: Generation, now: datetime) -> str:
    """The usage vocabulary: ``succeeded`` reads ``completed``; the v1.1 failure statuses read ``failed``."""
    status = gen.status_at(now)
    return _USAGE_STATUS.get(status, status.value)


def model_of(gen: Generation) -> str | None:
    loras = gen.params.get("loras") or []
    return str(loras[0]["name"]) if loras else None


def duration_ms(gen: Generation, now: datetime) -> int | None:
    """Processing time, as on the generation resource: ``completed_at - started_at``."""
    completed = gen.completed_at(now)
    if completed is None or completed <= gen.started_at:
        return None
    return int((completed - gen.started_at).total_seconds() * 1000)


def charges_by_generation(entries: Iterable[LedgerEntry]) -> dict[str, float]:
    """What each generation was charged, read from the ledger's ``charge`` rows."""
    charged: dict[str, float] = {}
    for entry in entries:
        if entry.type == "charge" and entry.generation_id is not None:
            charged[entry.generation_id] = _money(charged.get(entry.generation_id, 0.0) + entry.amount)
    return charged


def lifetime_totals(generations: list[Generation], entries: Iterable[LedgerEntry]) -> dict[str, Any]:
    """The [R] shape: every generation the team created and every credit charged."""
    charged = sum(entry.amount for entry in entries if entry.type == "charge")
    return {"total_generations": len(generations), "total_credits_used": _money(charged)}


# --- queries ---------------------------------------------------------------------------------------------


def canonical_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def complete(params: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Fill the defaults of a first-page query and check its window (lookback, ``end_time > start_time``)."""
    start = datetime.fromisoformat(params["start_time"])
    end = datetime.fromisoformat(params["end_time"]) if "end_time" in params else now
    if start < now - MAX_LOOKBACK:
        raise ValueOutOfRangeError(MSG_LOOKBACK, param="start_time")
    if end <= start:
        raise ValueOutOfRangeError(MSG_END_BEFORE_START, param="end_time")
    return {**params, "end_time": canonical_time(end)}


def fingerprint(operation: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps({"op": operation, **params}, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _window(params: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(params["start_time"]), datetime.fromisoformat(params["end_time"])


def matches(gen: Generation, params: dict[str, Any], now: datetime) -> bool:
    """The filters shared by both [G] operations; ``user_id`` is never recorded, so it matches nothing."""
    start, end = _window(params)
    if not start <= gen.created_at < end:
        return False
    if params.get("user_id") is not None:
        return False
    if params.get("api_key_id") not in (None, gen.params.get("api_key_id")):
        return False
    facets = {"status": usage_status(gen, now), "type": gen.inference_type, "media_type": gen.media_type}
    if any(params.get(name) not in (None, value) for name, value in facets.items()):
        return False
    lora_id = params.get("lora_id")
    if lora_id is not None and lora_id not in {lora["id"] for lora in gen.params.get("loras") or []}:
        return False
    model = params.get("model")
    if model is not None and model_of(gen) != model:
        return False
    character_id = params.get("character_id")
    return character_id is None or gen.params.get("character_id") == character_id


# --- bucketed metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    end: datetime
    groups: list[tuple[dict[str, Any], dict[str, Any]]]


def bucket_bounds(start: datetime, end: datetime, width: timedelta) -> list[tuple[datetime, datetime]]:
    """Buckets aligned on ``start``, covering ``[start, end)``, newest first; the last one is clipped at ``end``.

    Clipping and the 2,000-bucket cap are emulator choices (inferred).
    """
    span = end - start
    count = math.ceil(span / width)
    if count > MAX_BUCKETS:
        raise TooManyBucketsError(param="bucket_width", count=count, maximum=MAX_BUCKETS)
    # Offsets are clipped before adding so that a range ending near datetime.max never overflows.
    bounds = [(start + i * width, start + min((i + 1) * width, span)) for i in range(count)]
    bounds.reverse()
    return bounds


def percentile(values: list[int], p: float) -> int | None:
    """Nearest-rank percentile (inferred: the vendor does not say how it interpolates)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def metrics(gens: list[Generation], charges: dict[str, float], now: datetime) -> dict[str, Any]:
    """One group's metrics; image count and video seconds count what was delivered (inferred)."""
    statuses = [usage_status(gen, now) for gen in gens]
    done = [gen for gen, status in zip(gens, statuses, strict=True) if status == "completed"]
    durations = [ms for ms in (duration_ms(gen, now) for gen in done) if ms is not None]
    return {
        "request_count": len(gens),
        "successful_count": len(done),
        "failed_count": statuses.count("failed"),
        "cancelled_count": statuses.count("cancelled"),
        "credits_used": _money(sum(charges.get(gen.id, 0.0) for gen in gens)),
        "duration_ms_p50": percentile(durations, 50),
        "duration_ms_p95": percentile(durations, 95),
        "image_count": sum(int(gen.params.get("image_count") or 0) for gen in done if gen.media_type == "image"),
        "video_seconds": sum(gen.params.get("video_duration") or 0 for gen in done if gen.media_type == "video"),
    }


def group_key(gen: Generation, group_by: list[str], now: datetime) -> tuple[tuple[str, Any], ...]:
    values = {
        "status": usage_status(gen, now),
        "type": gen.inference_type,
        "model": model_of(gen),
        "api_key_id": gen.params.get("api_key_id"),
    }
    # Generations do not record a dashboard user (API keys have none): `user_id` groups under null.
    return tuple((name, values.get(name)) for name in group_by)


def _sort_key(key: tuple[tuple[str, Any], ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((value is not None, str(value or "")) for _, value in key)


def group(
    gens: list[Generation], group_by: list[str], charges: dict[str, float], now: datetime
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Groups ordered by key (nulls first); an empty bucket has no group, even without ``group_by``."""
    grouped: dict[tuple[tuple[str, Any], ...], list[Generation]] = {}
    for gen in gens:
        grouped.setdefault(group_key(gen, group_by, now), []).append(gen)
    return [(dict(key), metrics(grouped[key], charges, now)) for key in sorted(grouped, key=_sort_key)]


def buckets(
    params: dict[str, Any], generations: list[Generation], charges: dict[str, float], now: datetime
) -> list[Bucket]:
    """Every bucket of the query, newest first; a generation counts in the bucket of its ``created_at``."""
    start, end = _window(params)
    width = BUCKET_WIDTHS[params["bucket_width"]]
    bounds = bucket_bounds(start, end, width)
    members: dict[int, list[Generation]] = {}
    for gen in generations:
        if matches(gen, params, now):
            members.setdefault((gen.created_at - start) // width, []).append(gen)
    last = len(bounds) - 1
    return [
        Bucket(low, high, group(members.get(last - i, []), params["group_by"], charges, now))
        for i, (low, high) in enumerate(bounds)
    ]


# --- the [G] event stream ----------------------------------------------------------------------------------


def _event_order(gen: Generation | LlmUsageRow) -> tuple[float, str]:
    return (-gen.created_at.timestamp(), gen.id)


def _event_matches(row: Generation | LlmUsageRow, params: dict[str, Any], now: datetime) -> bool:
    if isinstance(row, LlmUsageRow):
        return row.matches(params, *_window(params))
    return matches(row, params, now)


def events(
    params: dict[str, Any],
    generations: list[Generation],
    now: datetime,
    after: list[Any] | None,
    limit: int,
    llm_rows: Sequence[LlmUsageRow] = (),
) -> tuple[list[Generation | LlmUsageRow], bool]:
    """One row per generation (and LLM request) created in the window: ``created_at`` desc, ties by id asc,
    after the keyset ``after``."""
    candidates: list[Generation | LlmUsageRow] = [*generations, *llm_rows]
    rows = sorted((row for row in candidates if _event_matches(row, params, now)), key=_event_order)
    if after is not None:
        position = (-datetime.fromisoformat(after[0]).timestamp(), str(after[1]))
        rows = [gen for gen in rows if _event_order(gen) > position]
    return rows[:limit], len(rows) > limit


# --- the [R] credit ledger ---------------------------------------------------------------------------------


def ledger_page(
    entries: list[LedgerEntry], *, kind: str | None, starting_after: str | None, limit: int
) -> tuple[list[LedgerEntry], bool]:
    """Newest first; ``starting_after`` is located among all rows, so it may name a row the filter hides."""
    ordered = [entry for _, entry in sorted(enumerate(entries), key=lambda p: (p[1].created_at, p[0]), reverse=True)]
    if starting_after is not None:
        ids = [entry.id for entry in ordered]
        if starting_after not in ids:
            raise UnknownReferenceError(param="starting_after", id=starting_after)
        ordered = ordered[ids.index(starting_after) + 1 :]
    if kind is not None:
        ordered = [entry for entry in ordered if entry.type == kind]
    return ordered[:limit], len(ordered) > limit


# --- signed page tokens ------------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, body: bytes) -> str:
    return hmac.new(f"{secret}:{purpose}".encode(), body, hashlib.sha256).hexdigest()


def mint_token(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    """Opaque base64url (no padding) of ``{"p": payload, "s": HMAC(payload)}``; ``purpose`` separates the keys."""
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return _b64(orjson.dumps({"p": payload, "s": _mac(secret, purpose, body)}))


def _decode(secret: str, purpose: str, token: str, param: str) -> dict[str, Any]:
    try:
        outer = orjson.loads(_unb64(token))
        payload, signature = outer["p"], outer["s"]
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        authentic = hmac.compare_digest(str(signature), _mac(secret, purpose, body))
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONEncodeError):
        authentic = False
    if not authentic or not isinstance(payload, dict):
        raise InvalidPageTokenError(MSG_TOKEN_GARBLED.format(param=param), param=param)
    return payload


@dataclass(frozen=True, slots=True)
class Resumed:
    params: dict[str, Any]
    position: Any
    limit: int
    issued_at: str


def resume(
    secret: str, token: str, *, operation: str, team_id: str, sent: dict[str, Any], now: datetime, param: str
) -> Resumed:
    """Open a token of ``operation``: authentic, the team's, younger than 24 h, and matching what was re-sent."""
    payload = _decode(secret, operation, token, param)
    if payload.get("team") != team_id:
        raise InvalidPageTokenError(MSG_TOKEN_TEAM.format(param=param), param=param)
    if now - datetime.fromisoformat(payload["iat"]) > TOKEN_TTL:
        raise InvalidPageTokenError(MSG_TOKEN_EXPIRED.format(param=param), param=param)
    params = {**payload["q"], **sent}
    if fingerprint(operation, params) != payload["fp"]:
        raise InvalidPageTokenError(MSG_TOKEN_QUERY.format(param=param), param=param)
    return Resumed(params, payload["pos"], int(payload["limit"]), str(payload["iat"]))


def next_token(
    secret: str, *, operation: str, team_id: str, params: dict[str, Any], position: Any, limit: int, issued_at: str
) -> str:
    """The token of the following page; ``issued_at`` stays the first page's, so a whole walk lives 24 h."""
    payload = {
        "team": team_id,
        "fp": fingerprint(operation, params),
        "q": params,
        "pos": position,
        "limit": limit,
        "iat": issued_at,
    }
    return mint_token(secret, operation, payload)

"""The journal: every request and response of a team, kept in a bounded ring per team, for assertions.

The journal is *history*, never state: resetting a team, restoring a snapshot or moving its clock leaves it
alone, and ``DELETE /_mock/journal`` forgets it without touching the team ("forget data", "roll back" and
"forget history" are separate verbs). Recording is on the hot path, so an entry keeps the raw pieces of the
exchange (header lists packed into bytes, body bytes truncated at :data:`BODY_LIMIT`) and is rendered only when
read. Memory is bounded per team by both an entry count and a byte budget; the oldest entries go first.
"""

from __future__ import annotations

import marshal
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from mockserver.clock import rfc3339
from mockserver.core import payload
from mockserver.core.errors import InvalidFormatError, ValueOutOfRangeError

BODY_LIMIT = 64 * 1024
KEY_PREVIEW = 14
ENTRY_OVERHEAD = 512  # bytes charged per entry besides its bodies (headers, fields), for the byte budget
DEFAULT_LIMIT = 100
Headers = list[tuple[bytes, bytes]]
# A header list as kept by an entry: packed (pack_headers), or the list itself when it could not be packed.
KeptHeaders = bytes | Headers
STATUS_FORMAT = "status must be an HTTP status (404) or a class (4xx)."
TIME_FORMAT = "{param} must be an RFC 3339 timestamp with a time zone."
KIND_FORMAT = "kind must be public or control."
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(slots=True)
class Entry:
    """One recorded exchange: raw pieces, rendered by :meth:`wire` only when read."""

    at: datetime  # the team's clock when the request arrived
    operation: str
    control: bool
    method: str
    path: str
    query: bytes
    status: int
    request_id: str
    request_headers: KeptHeaders  # pack_headers: no list or tuple of them for the collector to walk
    request_body: bytes | None
    request_size: int
    response_headers: KeptHeaders
    response_body: bytes | None
    response_size: int
    duration_ms: float

    @property
    def id(self) -> str:
        """``jnl_`` and the ULID of the request's id: one entry per request."""
        return "jnl_" + self.request_id.partition("_")[2]

    def wire(self) -> dict[str, Any]:
        response_headers = _headers(self.response_headers)
        response_headers.setdefault("aurous-request-id", self.request_id)
        return {
            "id": self.id,
            "object": "mock.journal_entry",
            "at": rfc3339(self.at),
            "kind": "control" if self.control else "public",
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "query": _query(self.query),
            "status": self.status,
            "request_id": self.request_id,
            "request_headers": _redacted(_headers(self.request_headers)),
            "request_body": _body(self.request_body, self.request_size),
            "request_body_truncated": self.request_size > BODY_LIMIT,
            "response_headers": response_headers,
            "response_body": _body(self.response_body, self.response_size),
            "response_body_truncated": self.response_size > BODY_LIMIT,
            "duration_ms": round(self.duration_ms, 3),
        }


ENTRY_FIELDS = tuple(f.name for f in fields(Entry))
# An entry as the ring keeps it: its fields in order, in a plain tuple. Every field is an atomic value (no
# container), so the collector stops tracking the tuple the first time it sees it; an Entry object would be walked
# by every collection for as long as the ring keeps it (a thousand requests per team).
Row = tuple[Any, ...]
_REQUEST_BODY, _RESPONSE_BODY = ENTRY_FIELDS.index("request_body"), ENTRY_FIELDS.index("response_body")


def clip(body: bytes | None, *, kept: bool = False) -> bytes | None:
    """At most :data:`BODY_LIMIT` bytes of ``body``, in an allocation of its own size (:func:`payload.kept`).

    ``kept``: ``body`` already is such an allocation and outlives the request (a cached poll body): shared, not
    copied again.
    """
    if body is None:
        return None
    if len(body) > BODY_LIMIT:
        return body[:BODY_LIMIT]
    return body if kept else payload.kept(body)


def pack_headers(headers: Headers) -> KeptHeaders:
    """An ASGI header list as one bytes object (``marshal``, version 2: ~0.5 µs for a response's seven headers).

    An entry outlives a thousand requests. Kept as lists, every entry left a list and a tuple per header in the
    collector's youngest generation, which then held ~8,000 objects per collection instead of ~700 and paused the
    server 3–5 ms each time (every request in flight waited; bench/README.md). Bytes are no container: the collector
    never visits them. Anything marshal cannot write (no ASGI server sends it) is kept as it is.
    """
    try:
        return marshal.dumps(headers, 2)
    except ValueError:
        return headers


def _headers(kept: KeptHeaders) -> dict[str, str]:
    raw: Headers = marshal.loads(kept) if isinstance(kept, bytes) else kept
    found: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        found[key] = f"{found[key]}, {text}" if key in found else text
    return found


def _redacted(headers: dict[str, str]) -> dict[str, str]:
    """Secrets shown only by their first characters: ``X-Api-Key``, a bearer token, the control token."""
    if "x-api-key" in headers:
        headers["x-api-key"] = _preview(headers["x-api-key"])
    if "authorization" in headers:
        scheme, _, token = headers["authorization"].partition(" ")
        headers["authorization"] = f"{scheme} {_preview(token)}" if token else _preview(scheme)
    if "aurous-mock-control-token" in headers:
        headers["aurous-mock-control-token"] = "…"
    return headers


def _preview(secret: str) -> str:
    return secret if len(secret) <= KEY_PREVIEW else secret[:KEY_PREVIEW] + "…"


def _query(raw: bytes) -> dict[str, str | list[str]]:
    found: dict[str, str | list[str]] = {}
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        previous = found.get(name)
        if previous is None:
            found[name] = value
        else:
            found[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
    return found


def _body(body: bytes | None, size: int) -> Any:
    """JSON bodies as JSON, anything else as text; ``None`` when there was none (or it was not read)."""
    if not body:
        return None
    if size <= BODY_LIMIT:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            if payload.shallow(value):  # a refused deep body is shown as text: it could not be encoded again
                return value
    return body.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Query:
    """A filter over a team's entries: every given field must match."""

    operation: str | None = None
    method: str | None = None
    status: tuple[int, int] | None = None  # an inclusive range: 404 → (404, 404), 4xx → (400, 499)
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    kind: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        """Read ``operation``, ``method``, ``status``, ``since``, ``until`` and ``kind`` from query parameters."""
        kind = params.get("kind")
        if kind is not None and kind not in ("public", "control"):
            raise InvalidFormatError(KIND_FORMAT, param="kind")
        method = params.get("method")
        return cls(
            operation=params.get("operation"),
            method=method.upper() if method else None,
            status=_status_range(params.get("status")),
            since=_instant(params.get("since"), "since"),
            until=_instant(params.get("until"), "until"),
            kind=kind,
        )

    def matches(self, entry: Entry) -> bool:
        return (
            (self.operation is None or entry.operation == self.operation)
            and (self.method is None or entry.method == self.method)
            and (self.status is None or self.status[0] <= entry.status <= self.status[1])
            and (self.since is None or entry.at >= self.since)
            and (self.until is None or entry.at < self.until)
            and (self.kind is None or entry.control == (self.kind == "control"))
        )


def _status_range(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    text = value
    if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
        low = int(text[0]) * 100
        return low, low + 99
    if len(text) == 3 and text.isdigit() and 100 <= int(text) <= 599:
        return int(text), int(text)
    raise InvalidFormatError(STATUS_FORMAT, param="status")


def _instant(value: str | None, param: str) -> datetime | None:
    if value is None:
        return None
    if len(value) > 6 and value[-6] == " ":  # an unencoded "+01:00" arrives as " 01:00"
        value = f"{value[:-6]}+{value[-5:]}"
    if not RFC3339.match(value):
        raise InvalidFormatError(TIME_FORMAT.format(param=param), param=param)
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFormatError(TIME_FORMAT.format(param=param), param=param) from None


def parse_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit():
        raise InvalidFormatError("limit must be a positive integer.", param="limit")
    if int(value) < 1:
        raise ValueOutOfRangeError("limit must be at least 1.", param="limit")
    return int(value)


class _Ring:
    __slots__ = ("bytes", "costs", "entries")

    def __init__(self) -> None:
        self.entries: deque[Row] = deque()
        self.costs: deque[int] = deque()  # each entry's charge against the byte budget, in the same order
        self.bytes = 0


class Journal:
    """Per-team rings of at most ``size`` entries and ``max_bytes`` bytes; ``size`` 0 records nothing."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._rings: dict[str, _Ring] = {}
        self._lock = threading.Lock()

    def record(self, team_id: str, row: Row) -> None:
        """Record an entry given as its :data:`Row` (the hot path builds the tuple, never the object)."""
        if self.size <= 0:
            return
        with self._lock:
            ring = self._rings.get(team_id)
            if ring is None:
                ring = self._rings[team_id] = _Ring()
            cost = ENTRY_OVERHEAD + len(row[_REQUEST_BODY] or b"") + len(row[_RESPONSE_BODY] or b"")
            ring.entries.append(row)
            ring.costs.append(cost)
            ring.bytes += cost
            while len(ring.entries) > self.size or (ring.bytes > self.max_bytes and len(ring.entries) > 1):
                ring.entries.popleft()
                ring.bytes -= ring.costs.popleft()

    def entries(self, team_id: str, query: Query | None = None, limit: int | None = None) -> list[Entry]:
        """The team's matching entries, newest first, at most ``limit``."""
        query = query or Query()
        found: list[Entry] = []
        with self._lock:
            ring = self._rings.get(team_id)
            rows = list(ring.entries) if ring is not None else []
        for row in reversed(rows):
            entry = Entry(*row)
            if query.matches(entry):
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def count(self, team_id: str, query: Query | None = None) -> int:
        return len(self.entries(team_id, query))

    def latest(self, team_id: str) -> str | None:
        """The id of the team's newest entry (None when it has none): changes whenever one is recorded."""
        with self._lock:
            ring = self._rings.get(team_id)
            return Entry(*ring.entries[-1]).id if ring is not None and ring.entries else None

    def clear(self, team_id: str | None = None) -> int:
        """Forget one team's history (every team's when ``team_id`` is None); the number of entries forgotten."""
        with self._lock:
            if team_id is None:
                forgotten = sum(len(ring.entries) for ring in self._rings.values())
                self._rings.clear()
                return forgotten
            ring = self._rings.pop(team_id, None)
            return len(ring.entries) if ring is not None else 0

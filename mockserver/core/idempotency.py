"""Idempotency keys (reference §1.9): replay, in-flight and mismatch conflicts, a 24 h window.

A record is keyed per team; its fingerprint covers the route and the canonical JSON body, so the
same key on another route or with another body is a conflict. Only 2xx answers are cached: a 4xx
``invalid_request`` (or a 5xx) is re-evaluated on retry.

A key in flight is leased for a span of real time (``idempotency_lease_seconds``, 120 s; a request here lasts
at most the 30 s of a ``latency`` scenario plus its own work): when the process handling it dies mid-request,
the record is never completed nor abandoned, and once the lease runs out a retry with the key proceeds instead of
answering 409 for the rest of the 24 h window (inferred: upstream documents no crash behaviour).

A finished twin of a lifecycle operation (a generation create; a character resynthesis or ref regeneration) replays
only once what it created is terminal on the team's clock: before, the retry is ``409 idempotency_key_in_use``
(the idempotency page); ``idempotency_replay = "immediate"`` replays at once, as files always do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mockserver.core import payload
from mockserver.core.errors import IdempotencyKeyInUseError, InvalidFormatError
from mockserver.core.models import IdempotencyRecord, IdempotencyState
from mockserver.store import Store

HEADERS = ("Idempotency-Key", "Aurous-Idempotent-Key", "Aurous-Idempotency-Key")
MAX_KEY_LENGTH = 256
KIND = "idempotency"


def canonical(body: Any) -> str:
    """Canonical JSON: sorted keys, no insignificant whitespace (``{"a":1,"b":2}`` ≡ ``{"b":2,"a":1}``)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(route: str, body: Any) -> str:
    return hashlib.sha256(f"{route}\n{canonical(body)}".encode()).hexdigest()


def validate_key(header: str, value: str) -> str:
    if not 1 <= len(value) <= MAX_KEY_LENGTH:
        raise InvalidFormatError(f"{header} must be 1 to {MAX_KEY_LENGTH} characters.", param=header)
    return value


@dataclass(frozen=True, slots=True)
class Replay:
    """A finished twin's answer; ``resource_id`` names what it created when its operation has a lifecycle.

    The idempotency page ("Recovering after a dropped connection"): while that resource is still running, a retry
    gets ``409 idempotency_key_in_use`` without ``Retry-After``; once it is terminal, the replay. The caller decides
    with the resource at hand (``api.pipeline``), on the team's clock.
    """

    status: int
    body: bytes
    headers: dict[str, str]
    resource_id: str | None = None


class Idempotency:
    """Begins, completes and abandons idempotent requests for one store."""

    def __init__(self, store: Store, ttl_seconds: float, lease_seconds: float = 120.0) -> None:
        self.store = store
        self.ttl = timedelta(seconds=ttl_seconds)
        self.lease = lease_seconds

    def begin(self, team_id: str, key: str, print_: str, now: datetime, wall: float | None = None) -> Replay | None:
        """``Replay`` for a finished twin, ``None`` when the caller should proceed; raises on conflict.

        ``wall`` is the real time (Unix seconds): with it, the key is leased while in flight, and a key whose
        lease ran out (its request died with its process) is taken over. ``now`` is the team's clock.
        """
        record_key = f"{team_id}:{key}"
        with self.store.transaction():
            record: IdempotencyRecord | None = self.store.get(KIND, record_key)
            if record is not None and now - record.created_at >= self.ttl:
                record = None
            if record is not None and record.state is IdempotencyState.IN_FLIGHT and _expired(record, wall):
                record = None
            if record is None:
                fresh = IdempotencyRecord(
                    fingerprint=print_,
                    state=IdempotencyState.IN_FLIGHT,
                    created_at=now,
                    lease_until=None if wall is None else wall + self.lease,
                )
                self.store.put(KIND, record_key, fresh, owner=team_id)
                return None
            if record.fingerprint != print_ or record.state is IdempotencyState.IN_FLIGHT:
                raise IdempotencyKeyInUseError()
            resource_id = getattr(record, "resource_id", None)  # records written before this field have none
            return Replay(status=record.status, body=record.body, headers=dict(record.headers), resource_id=resource_id)

    def complete(
        self, team_id: str, key: str, status: int, body: bytes, headers: dict[str, str], resource_id: str | None = None
    ) -> None:
        with self.store.transaction():
            record: IdempotencyRecord | None = self.store.get(KIND, f"{team_id}:{key}")
            if record is not None:
                record.state, record.status, record.headers = IdempotencyState.DONE, status, headers
                record.body = payload.kept(body)
                record.resource_id = resource_id
                self.store.put(KIND, f"{team_id}:{key}", record, owner=team_id)

    def abandon(self, team_id: str, key: str) -> None:
        self.store.delete(KIND, f"{team_id}:{key}")


def _expired(record: IdempotencyRecord, wall: float | None) -> bool:
    lease_until = getattr(record, "lease_until", None)  # records written before leases existed have none
    return wall is not None and lease_until is not None and wall >= lease_until

"""The domain records: teams, API keys, rate buckets, idempotency records, generations, files, ledger rows."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from mockserver.clock import TeamTime
from mockserver.ids import stable_ulid

SCOPE_RANK = {"read": 0, "write": 1, "full": 2}


@dataclass(slots=True)
class Team:
    id: str
    name: str
    created_at: datetime
    credits: float
    held: float = 0.0
    billing_mode: str = "metered"
    billing_email: str | None = None
    default_api_version: str = "2026-05-15"
    time: TeamTime = field(default_factory=TeamTime)

    @property
    def available(self) -> float:
        return round(self.credits - self.held, 6)  # LLM charges have 6 decimals (LLM fact sheet §14.5)

    @property
    def gated(self) -> bool:
        """Only ``metered`` teams are charged and blocked; unknown modes are non-gating (reference §2.8)."""
        return self.billing_mode == "metered"

    def assign(self, other: Team) -> None:
        """Take every field of ``other`` (the stored version of this team), keeping this object's identity."""
        for name in TEAM_FIELDS:
            setattr(self, name, getattr(other, name))


TEAM_FIELDS = tuple(f.name for f in fields(Team))


@dataclass(slots=True)
class ApiKey:
    key: str
    team_id: str
    scope: str = "full"
    revoked: bool = False

    @property
    def id(self) -> str:
        """The key's public id (``key_…``, as the usage filters spell it), derived from the secret."""
        return _key_id(self.key)

    def allows(self, needed: str) -> bool:
        return SCOPE_RANK[self.scope] >= SCOPE_RANK[needed]


@functools.lru_cache(maxsize=4096)
def _key_id(key: str) -> str:
    # Cached: every create records the key's id, and deriving it hashes the key (bench/README.md).
    return f"key_{stable_ulid('key:' + key)}"


@dataclass(slots=True)
class RateBucket:
    tokens: float
    updated_at: datetime


class IdempotencyState(enum.StrEnum):
    IN_FLIGHT = "in_flight"
    DONE = "done"


@dataclass(slots=True)
class IdempotencyRecord:
    fingerprint: str
    state: IdempotencyState
    created_at: datetime
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    lease_until: float | None = None  # real time (Unix seconds) after which an in-flight record counts as abandoned
    resource_id: str | None = None  # what a lifecycle operation created (a generation, a character): see Replay


class JobStatus(enum.StrEnum):
    """Generation status; values are the wire strings (v1.0 emits only the first five)."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    MODERATION_REJECTED = "moderation_rejected"

    @property
    def terminal(self) -> bool:
        return self not in (JobStatus.PENDING, JobStatus.PROCESSING)


@dataclass(slots=True)
class Cost:
    amount: float
    base: float
    enhance: float

    def wire(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": "credit", "breakdown": {"base": self.base, "enhance": self.enhance}}


@dataclass(slots=True)
class Generation:
    """An image or video generation. Its status is derived from the team's clock, never stored."""

    id: str
    team_id: str
    media_type: str  # "image" | "video"
    prompt: str
    created_at: datetime
    started_at: datetime  # pending until then, processing after
    finish_at: datetime  # terminal at this instant unless cancelled first
    outcome: JobStatus  # the terminal status reached at finish_at
    cost: Cost
    aurous_version: str
    creation_request_id: str
    inference_type: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    cancelled_at: datetime | None = None
    settled: bool = False
    hold_id: str | None = None
    webhook_url: str | None = None

    def status_at(self, now: datetime) -> JobStatus:
        if self.cancelled_at is not None:
            return JobStatus.CANCELLED
        if now >= self.finish_at:
            return self.outcome
        if now >= self.started_at:
            return JobStatus.PROCESSING
        return JobStatus.PENDING

    def completed_at(self, now: datetime) -> datetime | None:
        if self.cancelled_at is not None:
            return self.cancelled_at
        return self.finish_at if now >= self.finish_at else None


@dataclass(slots=True)
class LedgerEntry:
    """A credit-ledger row (``GET /v1/usage/events`` without ``start_time``)."""

    id: str
    type: str  # hold | release | charge | refund | topup | adjustment
    amount: float
    created_at: datetime
    generation_id: str | None = None
    hold_id: str | None = None
    description: str | None = None


@dataclass(slots=True)
class StoredFile:
    id: str
    team_id: str
    purpose: str
    mime_type: str
    size_bytes: int
    width_px: int
    height_px: int
    created_at: datetime
    expires_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""

"""Rate limits: token buckets per team per endpoint class, refilled on the team's clock (reference §1.8)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from mockserver.clock import unix_seconds
from mockserver.core.models import RateBucket


@dataclass(frozen=True, slots=True)
class BucketSpec:
    capacity: int
    per_minute: float

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


# Burst capacity and sustained refill per endpoint class. `webhooks_test` has no documented burst,
# so its capacity is its per-minute rate (inferred).
DEFAULT_BUCKETS: dict[str, BucketSpec] = {
    "images_post": BucketSpec(120, 60),
    "get": BucketSpec(1200, 600),
    "files_post": BucketSpec(60, 30),
    "webhooks_post": BucketSpec(10, 10),
    "estimate_post": BucketSpec(240, 120),
    "webhooks_test": BucketSpec(30, 30),
    "characters_post": BucketSpec(60, 30),
    "characters_get": BucketSpec(240, 120),
    "characters_synthesize": BucketSpec(12, 6),
    # LLM surfaces (fact sheet aurous-llm-v1.md §9, §14.14; all non-vendor): chat create/cancel mirror images_post,
    # and one tokens-per-minute bucket per team, debited by tokens (``take(..., amount=n)``), not by requests.
    "chat_post": BucketSpec(120, 60),
    "llm_tpm": BucketSpec(200_000, 200_000),
}


class Decision(NamedTuple):
    """One request's answer from a bucket (a NamedTuple: one per request, twice as fast as a frozen dataclass)."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self, prefix: str = "X-RateLimit") -> dict[str, str]:
        """The trio of headers; ``prefix="X-RateLimit-TPM"`` for the tokens-per-minute bucket."""
        return {
            f"{prefix}-Limit": str(self.limit),
            f"{prefix}-Remaining": str(self.remaining),
            f"{prefix}-Reset": str(self.reset),
        }


def take(
    bucket: RateBucket | None, spec: BucketSpec, now: datetime, amount: float = 1.0
) -> tuple[RateBucket, Decision]:
    """Refill ``bucket`` up to ``now`` and try to take ``amount`` tokens from it (0: only read it).

    A negative ``amount`` gives tokens back (up to the capacity). An amount above the capacity is allowed once the
    bucket is full and leaves it in debt, so a large request is slowed down but never refused forever (inferred).
    """
    capacity = spec.capacity
    per_second = spec.per_minute / 60.0
    if bucket is None:
        bucket = RateBucket(tokens=float(capacity), updated_at=now)
    tokens = bucket.tokens
    if now > bucket.updated_at:  # a clock gone backwards neither refills nor rewinds
        tokens += (now - bucket.updated_at).total_seconds() * per_second
        bucket.updated_at = now
    tokens = min(float(capacity), tokens)
    need = min(amount, float(capacity))
    allowed = tokens >= need
    if allowed:
        tokens = min(float(capacity), tokens - amount)
    bucket.tokens = tokens
    retry_after = 0 if allowed else max(1, math.ceil((need - tokens) / per_second))
    reset = unix_seconds(now) + math.ceil((capacity - tokens) / per_second)
    # positional: on every request, and a NamedTuple built by keyword takes twice as long
    decision = Decision(allowed, capacity, max(0, math.floor(tokens)), reset, retry_after)
    return bucket, decision


def peek(bucket: RateBucket | None, spec: BucketSpec, now: datetime) -> Decision:
    """``bucket`` refilled up to ``now``, nothing taken: the headers of an answer that is no operation."""
    tokens = float(spec.capacity)
    if bucket is not None:
        elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
        tokens = min(tokens, bucket.tokens + elapsed * spec.per_second)
    until_full = (spec.capacity - tokens) / spec.per_second
    reset = unix_seconds(now) + math.ceil(until_full)
    return Decision(allowed=True, limit=spec.capacity, remaining=math.floor(tokens), reset=reset, retry_after=0)


class Limiter:
    """Keeps each team's buckets in the store and answers allow/deny with the header values."""

    KIND = "rate_bucket"

    def __init__(self, store: Any, specs: dict[str, BucketSpec], *, enabled: bool = True) -> None:
        self.store = store
        self.specs = specs
        self.enabled = enabled

    def take(self, team_id: str, bucket: str, now: datetime, amount: float = 1.0) -> Decision:
        """``amount`` tokens from the team's ``bucket`` (one request by default; 0 reads it; negative refunds).

        Switched off, it always allows and reports a full bucket.
        """
        if not self.enabled:
            spec = self.specs[bucket]
            return Decision(True, spec.capacity, spec.capacity, unix_seconds(now), 0)
        key = f"{team_id}:{bucket}"
        with self.store.transaction(lazy=True):  # a bucket lost with a killed process only gives tokens back
            state, decision = take(self.store.get(self.KIND, key), self.specs[bucket], now, amount)
            self.store.put(self.KIND, key, state, owner=team_id)
        return decision

    def refund(self, team_id: str, bucket: str, now: datetime, amount: float) -> None:
        """Give ``amount`` tokens back (up to the capacity): a TPM debit larger than what was actually used."""
        if amount > 0:
            self.take(team_id, bucket, now, -amount)

    def peek(self, team_id: str, bucket: str, now: datetime) -> Decision:
        """The team's ``bucket`` as it stands, no token taken (a legacy redirect, an unknown route; inferred)."""
        spec = self.specs[bucket]
        if not self.enabled:
            return Decision(True, spec.capacity, spec.capacity, unix_seconds(now), 0)
        return peek(self.store.get(self.KIND, f"{team_id}:{bucket}"), spec, now)

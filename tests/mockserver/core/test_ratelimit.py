"""Tests for mockserver.core.ratelimit: token-bucket math and the per-team limiter, plus the HTTP headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mockserver.clock import unix_seconds
from mockserver.core.ratelimit import DEFAULT_BUCKETS, BucketSpec, Decision, Limiter, take
from mockserver.store import InMemoryStore
from tests.conftest import ClientFactory, new_api_key
from tests.helpers import assert_envelope

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SPEC = BucketSpec(capacity=3, per_minute=60)  # one token per second


def drain(spec: BucketSpec, count: int, now: datetime = START) -> tuple[object, list[Decision]]:
    bucket = None
    decisions = []
    for _ in range(count):
        bucket, decision = take(bucket, spec, now)
        decisions.append(decision)
    return bucket, decisions


def test_default_buckets_match_reference_table() -> None:
    table = {name: (spec.capacity, spec.per_minute) for name, spec in DEFAULT_BUCKETS.items()}
    assert table == {
        "images_post": (120, 60),
        "get": (1200, 600),
        "files_post": (60, 30),
        "webhooks_post": (10, 10),
        "estimate_post": (240, 120),
        "webhooks_test": (30, 30),
        "characters_post": (60, 30),
        "characters_get": (240, 120),
        "characters_synthesize": (12, 6),
        "chat_post": (120, 60),  # LLM choices (aurous-llm-v1.md §14.14)
        "llm_tpm": (200_000, 200_000),
    }


def test_take_an_amount_debits_refunds_and_lets_an_oversized_request_through_a_full_bucket() -> None:
    spec = BucketSpec(1000, 600)
    bucket, decision = take(None, spec, START, 400)
    assert decision.allowed
    assert decision.remaining == 600
    bucket, decision = take(bucket, spec, START, 700)
    assert not decision.allowed
    assert decision.retry_after == 10  # 100 tokens missing at 10 per second
    bucket, decision = take(bucket, spec, START, -300)  # a refund
    assert decision.remaining == 900
    bucket, decision = take(bucket, spec, START, 0)  # a read
    assert decision.remaining == 900
    bucket, decision = take(bucket, spec, START + timedelta(seconds=60), 5000)  # more than the capacity, once full
    assert decision.allowed
    assert decision.remaining == 0
    _, decision = take(bucket, spec, START + timedelta(seconds=61), 1)
    assert not decision.allowed  # in debt: 4000 below empty, refilling


def test_take_with_an_amount_debits_that_many_tokens_and_says_when_enough_is_back() -> None:
    spec = BucketSpec(capacity=100, per_minute=60)  # one token per second
    bucket, first = take(None, spec, START, amount=70)
    assert (first.allowed, first.remaining) == (True, 30)
    bucket, second = take(bucket, spec, START, amount=50)
    assert (second.allowed, second.remaining, second.retry_after) == (False, 30, 20)
    _, peek = take(bucket, spec, START + timedelta(seconds=20), amount=0)
    assert (peek.allowed, peek.remaining) == (True, 50)


def test_a_cost_above_the_capacity_passes_only_from_a_full_bucket_and_leaves_a_debt() -> None:
    spec = BucketSpec(capacity=10, per_minute=60)
    bucket, decision = take(None, spec, START, amount=25)
    assert (decision.allowed, decision.remaining) == (True, 0)  # -15 tokens, never a negative header
    _, again = take(bucket, spec, START + timedelta(seconds=5), amount=25)
    assert (again.allowed, again.retry_after) == (False, 20)  # from -10 back to a full 10


def test_refund_gives_tokens_back_up_to_the_capacity() -> None:
    limiter = Limiter(InMemoryStore(), {"tpm": BucketSpec(100, 60)})
    limiter.take("team", "tpm", START, amount=80)
    limiter.refund("team", "tpm", START, 30)
    assert limiter.take("team", "tpm", START, amount=0).remaining == 50
    limiter.refund("team", "tpm", START, 500)
    assert limiter.take("team", "tpm", START, amount=0).remaining == 100


def test_take_first_request_starts_full() -> None:
    bucket, decision = take(None, SPEC, START)
    assert decision.allowed
    assert decision.limit == 3
    assert decision.remaining == 2
    assert decision.retry_after == 0
    assert bucket.tokens == 2
    assert bucket.updated_at == START


def test_take_counts_down_to_zero_then_denies() -> None:
    _, decisions = drain(SPEC, 5)
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]


def test_take_denied_has_retry_after_at_least_one_second() -> None:
    _, decisions = drain(SPEC, 4)
    assert decisions[-1].retry_after == 1


def test_take_retry_after_is_time_to_next_token() -> None:
    slow = BucketSpec(capacity=1, per_minute=6)  # a token every 10 s
    bucket, first = take(None, slow, START)
    bucket, denied = take(bucket, slow, START + timedelta(seconds=4))
    assert first.allowed
    assert not denied.allowed
    assert denied.retry_after == 6


def test_take_retry_after_rounds_up_fractions() -> None:
    bucket, _ = drain(SPEC, 3)
    bucket, denied = take(bucket, SPEC, START + timedelta(seconds=0.25))
    assert not denied.allowed
    assert denied.retry_after == 1


def test_take_refills_on_the_clock() -> None:
    bucket, _ = drain(SPEC, 4)
    bucket, decision = take(bucket, SPEC, START + timedelta(seconds=1))
    assert decision.allowed
    assert decision.remaining == 0
    bucket, decision = take(bucket, SPEC, START + timedelta(seconds=1))
    assert not decision.allowed


def test_take_refill_is_capped_at_capacity() -> None:
    bucket, _ = drain(SPEC, 3)
    bucket, decision = take(bucket, SPEC, START + timedelta(hours=1))
    assert decision.remaining == 2
    assert bucket.tokens == 2


def test_take_reset_is_epoch_second_when_full_again() -> None:
    _, decisions = drain(SPEC, 3)
    assert [d.reset for d in decisions] == [unix_seconds(START) + n for n in (1, 2, 3)]
    _, full = take(None, SPEC, START)
    assert full.reset == unix_seconds(START) + 1


def test_take_clock_going_backwards_neither_refills_nor_rewinds() -> None:
    bucket, _ = drain(SPEC, 3)
    bucket, decision = take(bucket, SPEC, START - timedelta(minutes=5))
    assert not decision.allowed
    assert decision.remaining == 0
    assert bucket.updated_at == START


def test_decision_headers_are_the_documented_names() -> None:
    _, decision = take(None, SPEC, START)
    assert decision.headers() == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "2",
        "X-RateLimit-Reset": str(unix_seconds(START) + 1),
    }


@given(
    st.integers(min_value=1, max_value=50),
    st.floats(min_value=0.5, max_value=1200),
    st.lists(st.floats(min_value=0, max_value=120, allow_nan=False), max_size=60),
)
def test_take_tokens_stay_within_zero_and_capacity(capacity: int, per_minute: float, gaps: list[float]) -> None:
    spec = BucketSpec(capacity, per_minute)
    bucket = None
    now = START
    for gap in gaps:
        now += timedelta(seconds=gap)
        bucket, decision = take(bucket, spec, now)
        assert 0 <= bucket.tokens <= capacity
        assert 0 <= decision.remaining <= capacity
        assert decision.limit == capacity
        assert decision.reset >= unix_seconds(now)
        if decision.allowed:
            assert decision.retry_after == 0
        else:
            assert decision.retry_after >= 1


def test_limiter_keeps_buckets_per_team_and_class() -> None:
    limiter = Limiter(InMemoryStore(), {"get": SPEC, "images_post": BucketSpec(1, 60)})
    assert [limiter.take("team_a", "get", START).allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.take("team_b", "get", START).remaining == 2
    assert limiter.take("team_a", "images_post", START).allowed


def test_limiter_buckets_are_owned_by_team() -> None:
    store = InMemoryStore()
    limiter = Limiter(store, {"get": SPEC})
    limiter.take("team_a", "get", START)
    limiter.take("team_b", "get", START)
    store.clear(owner="team_a")
    assert limiter.take("team_a", "get", START).remaining == 2
    assert limiter.take("team_b", "get", START).remaining == 1


def test_limiter_disabled_always_allows_with_full_bucket() -> None:
    limiter = Limiter(InMemoryStore(), {"get": SPEC}, enabled=False)
    decisions = [limiter.take("team_a", "get", START) for _ in range(10)]
    assert all(d.allowed for d in decisions)
    assert {(d.limit, d.remaining, d.retry_after) for d in decisions} == {(3, 3, 0)}


# --- through HTTP -------------------------------------------------------------------------------

LIMITED = {"get": {"capacity": 3, "per_minute": 60}}


@pytest.fixture
def limited(client_for: ClientFactory) -> TestClient:
    return client_for(rate_limits=LIMITED)


def test_http_rate_limit_headers_count_down_then_429(limited: TestClient, headers: dict[str, str]) -> None:
    answers = [limited.get("/v1/balance", headers=headers) for _ in range(4)]
    assert [r.status_code for r in answers[:3]] == [200, 200, 200]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert {r.headers["X-RateLimit-Limit"] for r in answers} == {"3"}
    assert_envelope(answers[3], 429, "too_many_requests", message="Rate limit exceeded for get. Retry after 1s.")
    assert answers[3].headers["Retry-After"] == "1"
    assert int(answers[3].headers["X-RateLimit-Reset"]) == unix_seconds(START) + 3


def test_http_rate_limit_shared_by_every_get_route(limited: TestClient, headers: dict[str, str]) -> None:
    for path in ("/v1/balance", "/v1/team", "/v1/loras"):
        assert limited.get(path, headers=headers).status_code == 200
    assert_envelope(limited.get("/v1/pricing", headers=headers), 429, "too_many_requests")


def test_http_rate_limit_refills_when_team_clock_advances(limited: TestClient, headers: dict[str, str]) -> None:
    for _ in range(4):
        limited.get("/v1/balance", headers=headers)
    assert limited.post("/_mock/clock/advance", json={"seconds": 1}, headers=headers).status_code == 200
    refilled = limited.get("/v1/balance", headers=headers)
    assert refilled.status_code == 200
    assert refilled.headers["X-RateLimit-Remaining"] == "0"
    limited.post("/_mock/clock/advance", json={"seconds": 60}, headers=headers)
    assert limited.get("/v1/balance", headers=headers).headers["X-RateLimit-Remaining"] == "2"


def test_http_rate_limit_is_per_team(limited: TestClient, headers: dict[str, str]) -> None:
    for _ in range(4):
        limited.get("/v1/balance", headers=headers)
    other = limited.get("/v1/balance", headers={"X-Api-Key": new_api_key()})
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Remaining"] == "2"


def test_http_rate_limit_shared_by_keys_of_one_team(client_for: ClientFactory) -> None:
    keys = [{"key": "al_live_one", "team_id": "team_shared"}, {"key": "al_live_two", "team_id": "team_shared"}]
    client = client_for(rate_limits=LIMITED, keys=keys)
    for _ in range(3):
        client.get("/v1/balance", headers={"X-Api-Key": "al_live_one"})
    assert_envelope(client.get("/v1/balance", headers={"X-Api-Key": "al_live_two"}), 429, "too_many_requests")


def test_http_rate_limit_disabled_never_429(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(rate_limits=LIMITED, rate_limits_enabled=False)
    answers = [client.get("/v1/balance", headers=headers) for _ in range(6)]
    assert {r.status_code for r in answers} == {200}
    assert all("Retry-After" not in r.headers for r in answers)


def test_http_control_routes_do_not_draw_tokens(limited: TestClient, headers: dict[str, str]) -> None:
    for _ in range(5):
        assert limited.get("/_mock/clock", headers=headers).status_code == 200
    assert limited.get("/v1/balance", headers=headers).headers["X-RateLimit-Remaining"] == "2"

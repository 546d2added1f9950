"""Tests for mockserver.core.idempotency: canonical fingerprints, replay, conflicts and the 24 h window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.errors import IdempotencyKeyInUseError, InvalidFormatError
from mockserver.core.idempotency import (
    HEADERS,
    MAX_KEY_LENGTH,
    Idempotency,
    Replay,
    canonical,
    fingerprint,
    validate_key,
)
from mockserver.store import InMemoryStore

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
ROUTE = "POST /v1/images"
DAY = 86_400


@pytest.fixture
def idem() -> Idempotency:
    return Idempotency(InMemoryStore(), ttl_seconds=DAY)


def test_canonical_json_ignores_key_order_and_whitespace() -> None:
    assert canonical({"a": 1, "b": 2}) == canonical({"b": 2, "a": 1}) == '{"a":1,"b":2}'
    assert canonical({"x": {"z": 1, "y": [2, {"b": 0, "a": 1}]}}) == '{"x":{"y":[2,{"a":1,"b":0}],"z":1}}'


def test_canonical_json_keeps_unicode() -> None:
    assert canonical({"prompt": "café ☕"}) == '{"prompt":"café ☕"}'


def test_fingerprint_equal_for_reordered_bodies() -> None:
    assert fingerprint(ROUTE, {"a": 1, "b": 2}) == fingerprint(ROUTE, {"b": 2, "a": 1})


def test_fingerprint_differs_by_body_and_route() -> None:
    assert fingerprint(ROUTE, {"a": 1}) != fingerprint(ROUTE, {"a": 2})
    assert fingerprint(ROUTE, {"a": 1}) != fingerprint("POST /v1/videos", {"a": 1})


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5) | st.booleans(), max_size=6))
def test_fingerprint_independent_of_insertion_order(body: dict[str, object]) -> None:
    reversed_body = dict(reversed(list(body.items())))
    assert fingerprint(ROUTE, body) == fingerprint(ROUTE, reversed_body)


def test_idempotency_accepts_documented_header_spellings() -> None:
    assert HEADERS == ("Idempotency-Key", "Aurous-Idempotent-Key", "Aurous-Idempotency-Key")


@pytest.mark.parametrize("length", [1, 36, MAX_KEY_LENGTH])
def test_validate_key_accepts_1_to_256_chars(length: int) -> None:
    assert validate_key("Idempotency-Key", "k" * length) == "k" * length


@pytest.mark.parametrize("length", [0, MAX_KEY_LENGTH + 1])
@pytest.mark.parametrize("header", HEADERS)
def test_validate_key_rejects_bad_length_naming_header(length: int, header: str) -> None:
    with pytest.raises(InvalidFormatError) as caught:
        validate_key(header, "k" * length)
    assert caught.value.code == "invalid_format"
    assert caught.value.status == 400
    assert caught.value.param == header


def test_begin_new_key_proceeds(idem: Idempotency) -> None:
    assert idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 1}), START) is None


def test_begin_after_complete_replays(idem: Idempotency) -> None:
    print_ = fingerprint(ROUTE, {"a": 1, "b": 2})
    idem.begin("team_a", "key-1", print_, START)
    idem.complete("team_a", "key-1", 201, b'{"id":"img_1"}', {"content-type": "application/json"})
    replay = idem.begin("team_a", "key-1", fingerprint(ROUTE, {"b": 2, "a": 1}), START + timedelta(hours=1))
    assert replay == Replay(status=201, body=b'{"id":"img_1"}', headers={"content-type": "application/json"})


def test_begin_while_in_flight_conflicts(idem: Idempotency) -> None:
    print_ = fingerprint(ROUTE, {"a": 1})
    idem.begin("team_a", "key-1", print_, START)
    with pytest.raises(IdempotencyKeyInUseError) as caught:
        idem.begin("team_a", "key-1", print_, START)
    assert caught.value.status == 409
    assert caught.value.code == "idempotency_key_in_use"


def test_begin_with_different_body_conflicts(idem: Idempotency) -> None:
    idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 1}), START)
    idem.complete("team_a", "key-1", 201, b"{}", {})
    with pytest.raises(IdempotencyKeyInUseError):
        idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 2}), START)


def test_begin_with_different_route_conflicts(idem: Idempotency) -> None:
    idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 1}), START)
    idem.complete("team_a", "key-1", 201, b"{}", {})
    with pytest.raises(IdempotencyKeyInUseError):
        idem.begin("team_a", "key-1", fingerprint("POST /v1/videos", {"a": 1}), START)


def test_keys_are_scoped_per_team(idem: Idempotency) -> None:
    idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 1}), START)
    assert idem.begin("team_b", "key-1", fingerprint(ROUTE, {"a": 2}), START) is None


def test_record_expires_after_24_hours(idem: Idempotency) -> None:
    print_ = fingerprint(ROUTE, {"a": 1})
    idem.begin("team_a", "key-1", print_, START)
    idem.complete("team_a", "key-1", 201, b"{}", {})
    just_before = START + timedelta(seconds=DAY - 1)
    assert idem.begin("team_a", "key-1", print_, just_before) is not None
    with pytest.raises(IdempotencyKeyInUseError):
        idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 2}), just_before)
    assert idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 2}), START + timedelta(seconds=DAY)) is None


def test_in_flight_record_also_expires(idem: Idempotency) -> None:
    print_ = fingerprint(ROUTE, {"a": 1})
    idem.begin("team_a", "key-1", print_, START)
    assert idem.begin("team_a", "key-1", print_, START + timedelta(days=1)) is None


def test_ttl_is_configurable() -> None:
    idem = Idempotency(InMemoryStore(), ttl_seconds=60)
    print_ = fingerprint(ROUTE, {"a": 1})
    idem.begin("team_a", "key-1", print_, START)
    assert idem.begin("team_a", "key-1", print_, START + timedelta(seconds=60)) is None


def test_abandon_allows_retry(idem: Idempotency) -> None:
    print_ = fingerprint(ROUTE, {"a": 1})
    idem.begin("team_a", "key-1", print_, START)
    idem.abandon("team_a", "key-1")
    assert idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 2}), START) is None


def test_abandon_unknown_key_is_harmless(idem: Idempotency) -> None:
    idem.abandon("team_a", "never-used")
    assert idem.begin("team_a", "never-used", fingerprint(ROUTE, {}), START) is None


def test_complete_unknown_key_does_not_create_record(idem: Idempotency) -> None:
    idem.complete("team_a", "key-1", 201, b"{}", {})
    assert idem.begin("team_a", "key-1", fingerprint(ROUTE, {}), START) is None


def test_records_are_owned_by_team() -> None:
    store = InMemoryStore()
    idem = Idempotency(store, ttl_seconds=DAY)
    idem.begin("team_a", "key-1", fingerprint(ROUTE, {}), START)
    idem.begin("team_b", "key-1", fingerprint(ROUTE, {}), START)
    store.clear(owner="team_a")
    assert idem.begin("team_a", "key-1", fingerprint(ROUTE, {"x": 1}), START) is None
    with pytest.raises(IdempotencyKeyInUseError):
        idem.begin("team_b", "key-1", fingerprint(ROUTE, {}), START)


def test_a_key_in_flight_is_leased_and_taken_over_once_its_lease_ran_out() -> None:
    idem = Idempotency(InMemoryStore(), ttl_seconds=DAY, lease_seconds=120)
    print_ = fingerprint(ROUTE, {"a": 1})
    assert idem.begin("team_a", "key-1", print_, START, wall=1000.0) is None  # its process then dies
    with pytest.raises(IdempotencyKeyInUseError):
        idem.begin("team_a", "key-1", print_, START, wall=1119.9)  # might still be running
    with pytest.raises(IdempotencyKeyInUseError):
        idem.begin("team_a", "key-1", print_, START)  # without real time, no lease ever runs out
    assert idem.begin("team_a", "key-1", print_, START, wall=1120.0) is None  # taken over, leased again
    with pytest.raises(IdempotencyKeyInUseError):
        idem.begin("team_a", "key-1", print_, START, wall=1130.0)
    idem.complete("team_a", "key-1", 201, b"{}", {})
    replay = idem.begin("team_a", "key-1", print_, START, wall=10_000.0)
    assert replay == Replay(status=201, body=b"{}", headers={})  # a finished key replays, lease or not


def test_a_finished_key_is_never_taken_over_by_the_lease() -> None:
    idem = Idempotency(InMemoryStore(), ttl_seconds=DAY, lease_seconds=1)
    print_ = fingerprint(ROUTE, {"a": 1})
    idem.begin("team_a", "key-1", print_, START, wall=0.0)
    idem.complete("team_a", "key-1", 201, b'{"id": 1}', {})
    with pytest.raises(IdempotencyKeyInUseError):
        idem.begin("team_a", "key-1", fingerprint(ROUTE, {"a": 2}), START, wall=50.0)  # other body: conflict
    assert idem.begin("team_a", "key-1", print_, START, wall=50.0) is not None

"""Tests for mockserver.core.journal: the per-team ring, its bounds, filters and rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.errors import InvalidFormatError, ValueOutOfRangeError
from mockserver.core.journal import (
    BODY_LIMIT,
    ENTRY_FIELDS,
    ENTRY_OVERHEAD,
    Entry,
    Journal,
    Query,
    clip,
    pack_headers,
    parse_limit,
)

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
KEY = "al_live_0123456789abcdef"


def entry(
    n: int = 0,
    *,
    operation: str = "getBalance",
    status: int = 200,
    method: str = "GET",
    control: bool = False,
    request_body: bytes | None = None,
    response_body: bytes | None = b'{"ok": true}',
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Entry:
    return Entry(
        at=T0 + timedelta(seconds=n),
        operation=operation,
        control=control,
        method=method,
        path="/v1/balance",
        query=b"a=1&a=2&b=",
        status=status,
        request_id=f"req_{n:026d}",
        request_headers=pack_headers(headers or [(b"x-api-key", KEY.encode())]),
        request_body=clip(request_body),
        request_size=len(request_body or b""),
        response_headers=pack_headers([(b"content-type", b"application/json")]),
        response_body=clip(response_body),
        response_size=len(response_body or b""),
        duration_ms=1.23456,
    )


def record(journal: Journal, team_id: str, kept: Entry) -> None:
    """Record ``kept`` as the recorder does: as its row (the entry's fields in order)."""
    journal.record(team_id, tuple(getattr(kept, name) for name in ENTRY_FIELDS))


def test_journal_lists_newest_first_with_limit() -> None:
    journal = Journal(size=10, max_bytes=10**6)
    for n in range(4):
        record(journal, "team_a", entry(n))
    assert [e.id for e in journal.entries("team_a", limit=2)] == [entry(3).id, entry(2).id]
    assert journal.count("team_a") == 4


def test_journal_keeps_teams_apart() -> None:
    journal = Journal(size=10, max_bytes=10**6)
    record(journal, "team_a", entry(1))
    assert journal.entries("team_b") == []


def test_journal_ring_evicts_oldest_beyond_size() -> None:
    journal = Journal(size=3, max_bytes=10**6)
    for n in range(5):
        record(journal, "team_a", entry(n))
    assert [e.id for e in journal.entries("team_a")] == [entry(n).id for n in (4, 3, 2)]


def test_journal_byte_budget_evicts_oldest_but_keeps_the_newest() -> None:
    body = b"x" * 1000
    journal = Journal(size=100, max_bytes=3 * (ENTRY_OVERHEAD + 1000 + 12))
    for n in range(5):
        record(journal, "team_a", entry(n, request_body=body))
    assert journal.count("team_a") == 3
    huge = Journal(size=100, max_bytes=1024)
    record(huge, "team_a", entry(0, request_body=b"y" * BODY_LIMIT))
    assert huge.count("team_a") == 1


def test_journal_size_zero_records_nothing() -> None:
    journal = Journal(size=0, max_bytes=10**6)
    record(journal, "team_a", entry())
    assert journal.count("team_a") == 0


def test_journal_clear_one_team_or_all() -> None:
    journal = Journal(size=10, max_bytes=10**6)
    for team in ("team_a", "team_b"):
        record(journal, team, entry(1))
        record(journal, team, entry(2))
    assert journal.clear("team_a") == 2
    assert journal.count("team_b") == 2
    assert journal.clear() == 2
    assert journal.count("team_b") == 0


def test_clip_keeps_short_bodies_whole_and_cuts_long_ones() -> None:
    body = b"abc"
    assert clip(body) == body  # a copy of its own size (tests/mockserver/core/test_payload_kept.py)
    assert clip(None) is None
    assert clip(b"z" * (BODY_LIMIT + 5)) == b"z" * BODY_LIMIT


def test_clip_shares_a_kept_body_and_still_cuts_a_long_one() -> None:
    body = b'{"object":"inference"}' * 3
    assert clip(body, kept=True) is body  # already its own allocation: shared
    assert clip(body) is not body  # anything else is copied once
    assert clip(b"z" * (BODY_LIMIT + 5), kept=True) == b"z" * BODY_LIMIT


def test_entry_wire_decodes_json_and_redacts_the_key() -> None:
    wire = entry(1, request_body=b'{"prompt": "a fox"}').wire()
    assert wire["request_body"] == {"prompt": "a fox"}
    assert wire["response_body"] == {"ok": True}
    assert wire["request_headers"] == {"x-api-key": KEY[:14] + "…"}
    assert wire["response_headers"]["aurous-request-id"] == wire["request_id"]
    assert wire["query"] == {"a": ["1", "2"], "b": ""}
    assert wire["at"] == "2026-06-01T12:00:01Z"
    assert wire["kind"] == "public"
    assert wire["duration_ms"] == 1.235


HEADER_NAMES = st.sampled_from([b"content-type", b"x-trace", b"accept", b"x-api-key", b"set-cookie"])
HEADER_LISTS = st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=40)), max_size=12)


@given(request=HEADER_LISTS, response=HEADER_LISTS)
def test_packed_headers_render_as_the_lists_they_were(request: list, response: list) -> None:
    """Packing is invisible: an entry shows the same headers (repeated names joined, in order) as from the lists."""
    packed = entry(headers=request or None)
    packed.response_headers = pack_headers(response)
    kept = entry(headers=request or None)
    kept.request_headers = request or [(b"x-api-key", KEY.encode())]
    kept.response_headers = response
    assert packed.wire() == kept.wire()


def test_headers_marshal_cannot_pack_are_kept_as_they_are() -> None:
    odd = [(b"x-trace", object())]
    assert pack_headers(odd) is odd
    assert isinstance(pack_headers([(b"x-trace", b"1")]), bytes)


def test_entry_wire_redacts_bearer_and_control_token() -> None:
    headers = [(b"authorization", f"Bearer {KEY}".encode()), (b"aurous-mock-control-token", b"s3cret")]
    wire = entry(headers=headers).wire()
    assert wire["request_headers"] == {"authorization": f"Bearer {KEY[:14]}…", "aurous-mock-control-token": "…"}


def test_entry_wire_shows_text_and_truncated_bodies_as_text() -> None:
    assert entry(request_body=b"not json").wire()["request_body"] == "not json"
    long = entry(request_body=b'{"p": "' + b"x" * BODY_LIMIT + b'"}').wire()
    assert long["request_body_truncated"] is True
    assert isinstance(long["request_body"], str)
    assert entry(request_body=None, response_body=b"").wire()["response_body"] is None


@pytest.mark.parametrize(
    ("params", "matching"),
    [
        ({}, 4),
        ({"operation": "createImage"}, 1),
        ({"status": "404"}, 1),
        ({"status": "2xx"}, 3),
        ({"method": "post"}, 2),
        ({"kind": "control"}, 1),
        ({"kind": "public"}, 3),
        ({"since": "2026-06-01T12:00:02Z"}, 2),
        ({"until": "2026-06-01T12:00:02Z"}, 2),
        ({"since": "2026-06-01T14:00:01+02:00", "until": "2026-06-01T12:00:03Z"}, 2),
        ({"since": "2026-06-01T14:00:01 02:00"}, 3),  # an unencoded "+" arrives as a space
    ],
)
def test_query_filters(params: dict[str, str], matching: int) -> None:
    journal = Journal(size=10, max_bytes=10**6)
    record(journal, "t", entry(0, operation="createImage", status=201, method="POST"))
    record(journal, "t", entry(1, operation="mock_advance_clock", method="POST", control=True))
    record(journal, "t", entry(2, operation="getGeneration", status=404))
    record(journal, "t", entry(3))
    assert journal.count("t", Query.parse(params)) == matching


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"status": "600"}, "status"),
        ({"status": "4XX"}, "status"),
        ({"status": "2x"}, "status"),
        ({"since": "2026-06-01"}, "since"),
        ({"since": "20260601T120000Z"}, "since"),
        ({"until": "2026-06-01T12:00:00"}, "until"),
        ({"until": "2026-02-30T12:00:00Z"}, "until"),
        ({"kind": "all"}, "kind"),
    ],
)
def test_query_parse_refuses_bad_filters(params: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidFormatError) as caught:
        Query.parse(params)
    assert caught.value.param == param


def test_parse_limit() -> None:
    assert parse_limit(None) == 100
    assert parse_limit("7") == 7
    with pytest.raises(ValueOutOfRangeError):
        parse_limit("0")
    with pytest.raises(InvalidFormatError):
        parse_limit("-1")

"""Tests for usage aggregation, the event stream, the credit ledger and page tokens (mockserver.core.usage)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core import usage
from mockserver.core.errors import (
    InvalidPageTokenError,
    TooManyBucketsError,
    UnknownReferenceError,
    ValueOutOfRangeError,
)
from mockserver.core.models import Cost, Generation, JobStatus, LedgerEntry

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SECRET = "test-secret"
TEAM = "team_A"
LORA = {"id": "lora_01JD4S7E3D1A2B3C4D5E6F7G8H", "name": "Seedance 1.0 Pro"}
DEFAULTS: dict[str, Any] = {
    "bucket_width": "1d",
    "group_by": [],
    "status": None,
    "type": None,
    "api_key_id": None,
    "user_id": None,
    "lora_id": None,
    "character_id": None,
}


def at(hours: float = 0, **kwargs: float) -> datetime:
    return NOW + timedelta(hours=hours, **kwargs)


def make_gen(
    gen_id: str,
    created: datetime,
    *,
    outcome: JobStatus = JobStatus.SUCCEEDED,
    amount: float = 1.0,
    media_type: str = "image",
    inference_type: str = "t2i",
    processing_s: float = 10,
    cancelled: bool = False,
    **params: Any,
) -> Generation:
    started = created + timedelta(seconds=1)
    if media_type == "image":
        params.setdefault("image_count", 1)
    return Generation(
        id=gen_id,
        team_id=TEAM,
        media_type=media_type,
        prompt="p",
        created_at=created,
        started_at=started,
        finish_at=started + timedelta(seconds=processing_s),
        outcome=outcome,
        cost=Cost(amount=amount, base=amount, enhance=0),
        aurous_version="2026-05-15",
        creation_request_id=f"req_{gen_id}",
        inference_type=inference_type,
        seed=1,
        params=params,
        cancelled_at=created if cancelled else None,
    )


def charged(gens: list[Generation], now: datetime) -> dict[str, float]:
    return {gen.id: gen.cost.amount for gen in gens if gen.status_at(now) is JobStatus.SUCCEEDED}


def query(start: datetime, end: datetime, **overrides: Any) -> dict[str, Any]:
    return {**DEFAULTS, "start_time": start.isoformat(), "end_time": end.isoformat(), **overrides}


# --- buckets -------------------------------------------------------------------------------------------------


def test_bucket_bounds_align_on_start_newest_first_and_clip_the_last():
    bounds = usage.bucket_bounds(at(-2, minutes=-53), at(1), timedelta(hours=1))
    assert bounds == [
        (at(0, minutes=7), at(1)),
        (at(-1, minutes=7), at(0, minutes=7)),
        (at(-2, minutes=7), at(-1, minutes=7)),
        (at(-2, minutes=-53), at(-1, minutes=-53)),
    ]


def test_bucket_bounds_refuse_more_than_the_cap():
    assert len(usage.bucket_bounds(NOW, at(minutes=2000), timedelta(minutes=1))) == usage.MAX_BUCKETS
    with pytest.raises(TooManyBucketsError) as info:
        usage.bucket_bounds(NOW, at(minutes=2001), timedelta(minutes=1))
    assert info.value.param == "bucket_width"


def test_bucket_bounds_near_datetime_max_do_not_overflow():
    end = datetime(9999, 12, 31, tzinfo=UTC)
    assert usage.bucket_bounds(end - timedelta(days=1), end, timedelta(days=30)) == [(end - timedelta(days=1), end)]


def test_buckets_count_start_inclusive_and_end_exclusive():
    gens = [make_gen("img_a", at(0)), make_gen("img_b", at(2)), make_gen("img_c", at(1, minutes=59))]
    rows = usage.buckets(query(at(0), at(2), bucket_width="1h"), gens, charged(gens, at(5)), at(5))
    assert [(row.start, row.end) for row in rows] == [(at(1), at(2)), (at(0), at(1))]
    assert [[m["request_count"] for _, m in row.groups] for row in rows] == [[1], [1]]
    assert all(key == {} for row in rows for key, _ in row.groups)


def test_buckets_leave_empty_buckets_without_groups():
    gens = [make_gen("img_a", at(0))]
    rows = usage.buckets(query(at(0), at(3), bucket_width="1h"), gens, {}, at(5))
    assert [row.groups for row in rows[:2]] == [[], []]
    assert len(rows[2].groups) == 1


def test_buckets_group_by_status_and_type_with_metrics():
    gens = [
        make_gen("img_a", at(0), processing_s=10),
        make_gen("img_b", at(0), processing_s=30, image_count=4, amount=4),
        make_gen("img_c", at(0), outcome=JobStatus.FAILED),
        make_gen("img_d", at(0), cancelled=True),
        make_gen("vid_e", at(0), media_type="video", inference_type="t2v", amount=3.75, video_duration=5, loras=[LORA]),
        make_gen("img_f", at(0, minutes=30), processing_s=7200),
    ]
    now = at(1)
    params = query(at(0), at(1), bucket_width="1h", group_by=["status", "type"])
    [bucket] = usage.buckets(params, gens, charged(gens, now), now)
    groups = {tuple(key.values()): m for key, m in bucket.groups}
    assert list(groups) == [
        ("cancelled", "t2i"),
        ("completed", "t2i"),
        ("completed", "t2v"),
        ("failed", "t2i"),
        ("processing", "t2i"),
    ]
    done = groups[("completed", "t2i")]
    assert done["request_count"] == done["successful_count"] == 2
    assert done["credits_used"] == 5.0
    assert (done["duration_ms_p50"], done["duration_ms_p95"]) == (10_000, 30_000)
    assert done["image_count"] == 5
    assert groups[("completed", "t2v")]["video_seconds"] == 5
    assert groups[("failed", "t2i")]["failed_count"] == 1
    assert groups[("failed", "t2i")]["credits_used"] == 0
    assert groups[("cancelled", "t2i")]["cancelled_count"] == 1
    assert groups[("processing", "t2i")]["duration_ms_p50"] is None


def test_group_by_unrecorded_dimensions_are_null_and_model_is_the_lora_name():
    gens = [make_gen("vid_a", at(0), media_type="video", inference_type="t2v", loras=[LORA]), make_gen("img_b", at(0))]
    params = query(at(0), at(1), bucket_width="1h", group_by=["model", "api_key_id"])
    [bucket] = usage.buckets(params, gens, {}, at(1))
    assert [key for key, _ in bucket.groups] == [
        {"model": None, "api_key_id": None},
        {"model": "Seedance 1.0 Pro", "api_key_id": None},
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "completed"}, {"img_a", "vid_c"}),
        ({"status": "failed"}, {"img_d"}),
        ({"status": "succeeded"}, set()),
        ({"type": "t2v"}, {"vid_c"}),
        ({"type": "chat"}, set()),
        ({"lora_id": LORA["id"]}, {"vid_c"}),
        ({"api_key_id": "key_x"}, set()),
        ({"user_id": "usr_x"}, set()),
        ({"character_id": "char_x"}, {"img_d"}),
        ({"model": "Seedance 1.0 Pro"}, {"vid_c"}),
        ({"media_type": "image"}, {"img_a", "img_b", "img_d"}),
    ],
)
def test_matches_applies_filters(filters, expected):
    gens = [
        make_gen("img_a", at(0)),
        make_gen("img_b", at(0), cancelled=True),
        make_gen("vid_c", at(0), media_type="video", inference_type="t2v", loras=[LORA]),
        make_gen("img_d", at(0), outcome=JobStatus.FAILED, character_id="char_x"),
    ]
    params = query(at(0), at(1), **filters)
    assert {gen.id for gen in gens if usage.matches(gen, params, at(1))} == expected


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (JobStatus.SUCCEEDED, "completed"),
        (JobStatus.FAILED, "failed"),
        (JobStatus.EXPIRED, "failed"),
        (JobStatus.MODERATION_REJECTED, "failed"),
    ],
)
def test_usage_status_uses_the_usage_vocabulary(outcome, expected):
    gen = make_gen("img_a", at(0), outcome=outcome)
    assert usage.usage_status(gen, at(1)) == expected
    assert usage.usage_status(gen, at(0)) == "pending"
    assert usage.usage_status(gen, at(0, seconds=2)) == "processing"


def test_percentile_is_nearest_rank():
    values = list(range(1, 21))
    assert (usage.percentile(values, 50), usage.percentile(values, 95)) == (10, 19)
    assert usage.percentile([7], 95) == 7
    assert usage.percentile([], 50) is None


def test_complete_defaults_end_to_now_and_checks_the_window():
    params = usage.complete({**DEFAULTS, "start_time": at(-5).isoformat()}, NOW)
    assert datetime.fromisoformat(params["end_time"]) == NOW
    with pytest.raises(ValueOutOfRangeError, match=usage.MSG_LOOKBACK) as info:
        usage.complete({"start_time": (NOW - timedelta(days=731)).isoformat()}, NOW)
    assert info.value.param == "start_time"
    with pytest.raises(ValueOutOfRangeError, match=usage.MSG_END_BEFORE_START) as info:
        usage.complete({"start_time": at(0).isoformat(), "end_time": at(0).isoformat()}, NOW)
    assert info.value.param == "end_time"


def test_lifetime_totals_count_generations_and_sum_charges():
    gens = [make_gen("img_a", at(0)), make_gen("img_b", at(0))]
    entries = [
        LedgerEntry("uev_1", "hold", 2.5, at(0), "img_a"),
        LedgerEntry("uev_2", "charge", 2.5, at(1), "img_a"),
        LedgerEntry("uev_3", "charge", 0.25, at(1), "img_b"),
    ]
    assert usage.lifetime_totals(gens, entries) == {"total_generations": 2, "total_credits_used": 2.75}
    assert usage.charges_by_generation(entries) == {"img_a": 2.5, "img_b": 0.25}


# --- the event stream and the ledger ------------------------------------------------------------------------------


def test_events_order_newest_first_ties_by_id_and_page_by_keyset():
    gens = [make_gen("img_b", at(0)), make_gen("img_a", at(0)), make_gen("img_c", at(1)), make_gen("img_z", at(3))]
    params = {"start_time": at(0).isoformat(), "end_time": at(2).isoformat()}
    rows, more = usage.events(params, gens, at(5), None, 2)
    assert ([gen.id for gen in rows], more) == (["img_c", "img_a"], True)
    after = [usage.canonical_time(rows[-1].created_at), rows[-1].id]
    rows, more = usage.events(params, gens, at(5), after, 2)
    assert ([gen.id for gen in rows], more) == (["img_b"], False)


def ledger_rows() -> list[LedgerEntry]:
    return [
        LedgerEntry("uev_1", "hold", 1, at(0), "img_a"),
        LedgerEntry("uev_2", "hold", 1, at(0), "img_b"),
        LedgerEntry("uev_3", "release", 1, at(0), "img_b"),
        LedgerEntry("uev_4", "charge", 1, at(1), "img_a"),
    ]


def test_ledger_page_is_newest_first_and_pages_strictly_older():
    rows, more = usage.ledger_page(ledger_rows(), kind=None, starting_after=None, limit=3)
    assert ([row.id for row in rows], more) == (["uev_4", "uev_3", "uev_2"], True)
    rows, more = usage.ledger_page(ledger_rows(), kind=None, starting_after="uev_2", limit=3)
    assert ([row.id for row in rows], more) == (["uev_1"], False)


def test_ledger_page_filters_by_type():
    rows, more = usage.ledger_page(ledger_rows(), kind="hold", starting_after="uev_4", limit=1)
    assert ([row.id for row in rows], more) == (["uev_2"], True)


def test_ledger_page_unknown_starting_after_is_resource_not_found():
    with pytest.raises(UnknownReferenceError) as info:
        usage.ledger_page(ledger_rows(), kind=None, starting_after="uev_nope", limit=3)
    assert info.value.param == "starting_after"


# --- page tokens ---------------------------------------------------------------------------------------------------


def mint(params: dict[str, Any] | None = None, *, team: str = TEAM, issued: datetime = NOW) -> str:
    return usage.next_token(
        SECRET,
        operation="getUsage",
        team_id=team,
        params=params or query(at(-5), NOW),
        position=24,
        limit=24,
        issued_at=usage.canonical_time(issued),
    )


def open_token(token: str, sent: dict[str, Any] | None = None, now: datetime = NOW) -> usage.Resumed:
    return usage.resume(SECRET, token, operation="getUsage", team_id=TEAM, sent=sent or {}, now=now, param="page_token")


def test_token_round_trips_the_query_and_is_base64url_without_padding():
    token = mint()
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    found = open_token(token, {"bucket_width": "1d"}, now=at(23))
    assert (found.params, found.position, found.limit) == (query(at(-5), NOW), 24, 24)


def expect_invalid(token: str, message: str, **kwargs: Any) -> None:
    with pytest.raises(InvalidPageTokenError) as info:
        open_token(token, **kwargs)
    assert info.value.param == "page_token"
    assert info.value.detail == message.format(param="page_token")


@pytest.mark.parametrize("token", ["", "!!", "bm90IGpzb24", "W10", "eyJwIjp7fSwicyI6IngifQ", "é"])
def test_token_garbled_is_invalid(token):
    expect_invalid(token, usage.MSG_TOKEN_GARBLED)


def test_token_tampered_is_invalid():
    token = mint()
    forged = usage.mint_token("another-secret", "getUsage", {"team": TEAM})
    expect_invalid(forged, usage.MSG_TOKEN_GARBLED)
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    expect_invalid(flipped, usage.MSG_TOKEN_GARBLED)


def test_token_of_another_operation_is_invalid():
    cursor = usage.next_token(
        SECRET, operation="listUsageEvents", team_id=TEAM, params={}, position=None, limit=1, issued_at=""
    )
    expect_invalid(cursor, usage.MSG_TOKEN_GARBLED)


def test_token_expires_after_24_hours():
    expect_invalid(mint(issued=at(-24, seconds=-1)), usage.MSG_TOKEN_EXPIRED)


def test_token_of_another_team_is_invalid():
    expect_invalid(mint(team="team_B"), usage.MSG_TOKEN_TEAM)


def test_token_with_different_resent_query_is_invalid():
    expect_invalid(mint(), usage.MSG_TOKEN_QUERY, sent={"bucket_width": "1h"})


# --- properties --------------------------------------------------------------------------------------------------

OUTCOMES = st.sampled_from([JobStatus.SUCCEEDED, JobStatus.FAILED, None])


@settings(max_examples=60)
@given(
    rows=st.lists(
        st.tuples(st.integers(-3 * 86400, 3 * 86400), OUTCOMES, st.sampled_from([0.25, 1.0, 3.75])), max_size=30
    ),
    width=st.sampled_from(["1h", "1d", "7d"]),
    span_hours=st.integers(1, 72),
    group_by=st.sampled_from([[], ["status"], ["status", "type"]]),
)
def test_buckets_account_for_every_generation_in_range(rows, width, span_hours, group_by):
    gens = [
        make_gen(f"img_{i:03d}", at(seconds=s), outcome=o or JobStatus.SUCCEEDED, cancelled=o is None, amount=a)
        for i, (s, o, a) in enumerate(rows)
    ]
    now = at(96)
    charges = charged(gens, now)
    start, end = at(-span_hours), at(span_hours / 2)
    buckets = usage.buckets(query(start, end, bucket_width=width, group_by=group_by), gens, charges, now)
    in_range = [gen for gen in gens if start <= gen.created_at < end]
    metrics = [m for bucket in buckets for _, m in bucket.groups]
    assert sum(m["request_count"] for m in metrics) == len(in_range)
    assert sum(m["credits_used"] for m in metrics) == pytest.approx(sum(charges.get(g.id, 0) for g in in_range))
    assert (buckets[0].end, buckets[-1].start) == (end, start)
    assert all(newer.start == older.end for newer, older in itertools.pairwise(buckets))

"""``GET /v1/usage`` and ``GET /v1/usage/events`` through HTTP: totals, buckets, events, ledger, tokens, errors."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver import Settings, VirtualClock, create_app
from mockserver.core import usage
from tests.helpers import assert_envelope

START = datetime(2026, 6, 1, 12, tzinfo=UTC)
DAY_START = "2026-06-01T00:00:00Z"
VIDEO = {"video_lora_id": "seedance-1-pro", "resolution": "720p", "duration": 5}


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(
        clock="virtual", image_pending_seconds=1, image_processing_seconds=10, rate_limits_enabled=False
    )
    with TestClient(create_app(settings, clock=VirtualClock(START))) as test_client:
        yield test_client


def new_headers() -> dict[str, str]:
    return {"X-Api-Key": f"al_live_{secrets.token_hex(32)}"}


@pytest.fixture
def headers() -> dict[str, str]:
    return new_headers()


def advance(client: TestClient, headers: dict[str, str], seconds: float) -> None:
    response = client.post("/_mock/clock/advance", json={"seconds": seconds}, headers=headers)
    assert response.status_code == 200, response.text


def seed(client: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Two images (one cancelled) and a video created at 12:00, then one hour later: all terminal."""
    gens = {
        "done": client.post("/v1/images", json={"prompt": "a lighthouse"}, headers=headers).json(),
        "cancelled": client.post("/v1/images", json={"prompt": "a harbour"}, headers=headers).json(),
        "video": client.post("/v1/videos", json=VIDEO, headers=headers).json(),
    }
    assert client.post(f"/v1/images/{gens['cancelled']['id']}/cancel", headers=headers).status_code == 200
    advance(client, headers, 3600)
    return gens


def get(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def charged(gens: dict[str, dict[str, Any]]) -> float:
    return float(gens["done"]["cost"]["amount"] + gens["video"]["cost"]["amount"])


# --- GET /v1/usage -------------------------------------------------------------------------------------------------


def test_usage_without_start_time_is_lifetime_totals(client, headers):
    assert get(client, headers, "/v1/usage") == {"total_generations": 0, "total_credits_used": 0}
    gens = seed(client, headers)
    body = get(client, headers, "/v1/usage")
    assert body == {"total_generations": 3, "total_credits_used": pytest.approx(charged(gens))}


def test_usage_buckets_are_newest_first_with_one_ungrouped_group(client, headers):
    gens = seed(client, headers)
    body = get(client, headers, "/v1/usage", start_time=DAY_START, bucket_width="1h", limit=100)
    assert (body["object"], body["has_more"], body["next_page"]) == ("list", False, None)
    starts = [bucket["bucket_start"] for bucket in body["data"]]
    assert starts[:2] == ["2026-06-01T12:00:00Z", "2026-06-01T11:00:00Z"]
    assert len(starts) == 13
    assert body["data"][0]["bucket_end"] == "2026-06-01T13:00:00Z"
    assert all(bucket["groups"] == [] for bucket in body["data"][1:])
    [group] = body["data"][0]["groups"]
    assert group["key"] == {}
    metrics = group["metrics"]
    assert {k: metrics[k] for k in ("request_count", "successful_count", "failed_count", "cancelled_count")} == {
        "request_count": 3,
        "successful_count": 2,
        "failed_count": 0,
        "cancelled_count": 1,
    }
    assert metrics["credits_used"] == pytest.approx(charged(gens))
    assert (metrics["image_count"], metrics["video_seconds"]) == (1, 5)
    assert metrics["duration_ms_p50"] == 10_000
    assert metrics["duration_ms_p95"] >= metrics["duration_ms_p50"]


def test_usage_group_by_and_filters(client, headers):
    seed(client, headers)
    params = {"start_time": DAY_START, "group_by": ["status", "type"], "limit": 1}
    [bucket] = get(client, headers, "/v1/usage", **params)["data"]
    keys = [group["key"] for group in bucket["groups"]]
    assert keys == [
        {"status": "cancelled", "type": "t2i"},
        {"status": "completed", "type": "t2i"},
        {"status": "completed", "type": "t2v"},
    ]
    filtered = get(client, headers, "/v1/usage", start_time=DAY_START, status="completed", type="t2v", group_by="model")
    [group] = filtered["data"][0]["groups"]
    assert group["key"] == {"model": "Seedance 1.0 Pro"}
    assert group["metrics"]["request_count"] == 1
    by_lora = get(client, headers, "/v1/usage", start_time=DAY_START, lora_id="seedance-1-pro")
    assert by_lora["data"][0]["groups"][0]["metrics"]["request_count"] == 1
    by_key = get(client, headers, "/v1/usage", start_time=DAY_START, group_by="api_key_id")
    [key_group] = by_key["data"][0]["groups"]
    key_id = key_group["key"]["api_key_id"]
    assert key_id.startswith("key_")
    assert key_group["metrics"]["request_count"] == sum(g["metrics"]["request_count"] for g in bucket["groups"])
    assert get(client, headers, "/v1/usage", start_time=DAY_START, api_key_id=key_id)["data"][0]["groups"]
    assert get(client, headers, "/v1/usage", start_time=DAY_START, api_key_id="key_other")["data"][0]["groups"] == []
    # `type` is open-ended in the spec: an unseen value is accepted and matches nothing.
    assert get(client, headers, "/v1/usage", start_time=DAY_START, type="chat")["data"][0]["groups"] == []


@pytest.mark.parametrize(
    ("raw", "bucket_start"),
    [
        ("2026-06-01t00:00:00z", "2026-06-01T00:00:00Z"),
        ("2026-06-01T02:00:00.000000000+02:00", "2026-06-01T00:00:00Z"),
        ("2026-05-31T23:59:60Z", "2026-06-01T00:00:00Z"),
    ],
)
def test_usage_start_time_accepts_rfc3339_variants(client, headers, raw, bucket_start):
    body = get(client, headers, "/v1/usage", start_time=raw, limit=100)
    assert body["data"][-1]["bucket_start"] == bucket_start


def test_usage_page_token_walks_every_bucket_once(client, headers):
    seed(client, headers)
    body = get(client, headers, "/v1/usage", start_time=DAY_START, bucket_width="1h", limit=5)
    starts = [bucket["bucket_start"] for bucket in body["data"]]
    while body["has_more"]:
        token = body["next_page"]
        assert "=" not in token
        body = get(client, headers, "/v1/usage", page_token=token)
        starts += [bucket["bucket_start"] for bucket in body["data"]]
    assert body["next_page"] is None
    assert len(starts) == len(set(starts)) == 13
    assert starts == sorted(starts, reverse=True)


def test_usage_page_token_accepts_the_same_params_resent(client, headers):
    first = get(client, headers, "/v1/usage", start_time=DAY_START, bucket_width="1h", limit=5)
    params = {"start_time": "2026-06-01T02:00:00+02:00", "bucket_width": "1h", "page_token": first["next_page"]}
    second = get(client, headers, "/v1/usage", **params, limit=2)
    assert [bucket["bucket_start"] for bucket in second["data"]] == ["2026-06-01T06:00:00Z", "2026-06-01T05:00:00Z"]


def page_two(client: TestClient, headers: dict[str, str]) -> str:
    token: str = get(client, headers, "/v1/usage", start_time=DAY_START, bucket_width="1h", limit=5)["next_page"]
    return token


def test_usage_page_token_with_different_params_is_invalid(client, headers):
    token = page_two(client, headers)
    response = client.get("/v1/usage", params={"page_token": token, "bucket_width": "1d"}, headers=headers)
    assert_envelope(
        response, 400, "invalid_page_token", "page_token", message=usage.MSG_TOKEN_QUERY.format(param="page_token")
    )


def test_usage_page_token_of_another_team_is_invalid(client, headers):
    token = page_two(client, headers)
    response = client.get("/v1/usage", params={"page_token": token}, headers=new_headers())
    assert_envelope(
        response, 400, "invalid_page_token", "page_token", message=usage.MSG_TOKEN_TEAM.format(param="page_token")
    )


def test_usage_page_token_expires_after_24_hours(client, headers):
    token = page_two(client, headers)
    advance(client, headers, 24 * 3600 + 1)
    response = client.get("/v1/usage", params={"page_token": token}, headers=headers)
    message = usage.MSG_TOKEN_EXPIRED.format(param="page_token")
    assert_envelope(response, 400, "invalid_page_token", "page_token", message=message)


def test_usage_page_token_garbled_is_invalid(client, headers):
    token = page_two(client, headers)
    for bad in (token[:-3], "not-a-token", token.upper()):
        response = client.get("/v1/usage", params={"page_token": bad}, headers=headers)
        assert_envelope(response, 400, "invalid_page_token", "page_token")


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"start_time": "yesterday"}, "invalid_format", "start_time"),
        ({"start_time": "2026-06-01T00:00:00"}, "invalid_format", "start_time"),
        ({"start_time": "2026-06-01"}, "invalid_format", "start_time"),
        ({"start_time": "2026-02-30T00:00:00Z"}, "invalid_format", "start_time"),
        ({"start_time": "0001-01-01T00:00:00+01:00"}, "invalid_format", "start_time"),
        ({"start_time": "2024-05-01T00:00:00Z"}, "value_out_of_range", "start_time"),
        ({"start_time": DAY_START, "end_time": DAY_START}, "value_out_of_range", "end_time"),
        ({"start_time": "2026-06-02T00:00:00Z"}, "value_out_of_range", "end_time"),
        ({"start_time": DAY_START, "end_time": "soon"}, "invalid_format", "end_time"),
        ({"start_time": DAY_START, "bucket_width": "2h"}, "invalid_format", "bucket_width"),
        ({"start_time": DAY_START, "group_by": "status,colour"}, "invalid_format", "group_by"),
        ({"start_time": DAY_START, "group_by": "status,type,model"}, "value_out_of_range", "group_by"),
        ({"start_time": DAY_START, "group_by": ["status", "status"]}, "invalid_format", "group_by"),
        ({"start_time": DAY_START, "group_by": ""}, "invalid_format", "group_by"),
        ({"start_time": DAY_START, "status": "succeeded"}, "invalid_format", "status"),
        ({"start_time": DAY_START, "status": "completed,failed"}, "invalid_format", "status"),
        ({"start_time": DAY_START, "limit": "0"}, "value_out_of_range", "limit"),
        ({"start_time": DAY_START, "limit": "101"}, "value_out_of_range", "limit"),
        ({"start_time": DAY_START, "limit": "ten"}, "invalid_format", "limit"),
        ({"start_time": "2026-05-01T00:00:00Z", "bucket_width": "1m"}, "too_many_buckets", "bucket_width"),
    ],
)
def test_usage_bad_params_are_400(client, headers, params, code, param):
    assert_envelope(client.get("/v1/usage", params=params, headers=headers), 400, code, param)


# --- GET /v1/usage/events: the [G] event stream ------------------------------------------------------------------


def test_events_stream_rows(client, headers):
    gens = seed(client, headers)
    body = get(client, headers, "/v1/usage/events", start_time=DAY_START)
    assert (body["object"], body["has_more"], body["next_cursor"]) == ("list", False, None)
    rows = {row["id"]: row for row in body["data"]}
    assert [row["id"] for row in body["data"]] == sorted(rows)  # same created_at: ties by id asc
    video = rows[gens["video"]["id"]]
    assert video == {
        "id": gens["video"]["id"],
        "type": "video",
        "model": "Seedance 1.0 Pro",
        "status": "completed",
        "created_at": "2026-06-01T12:00:00Z",
        "completed_at": video["completed_at"],
        "duration_ms": video["duration_ms"],
        "input_tokens": None,
        "output_tokens": None,
        "credits_charged": gens["video"]["cost"]["amount"],
        "api_key_id": video["api_key_id"],
        "user_id": None,
        "request_id": gens["video"]["creation_request_id"],
    }
    # The event-stream page spells key ids `apikey_<ulid>`; /v1/usage groups the same key as `key_<ulid>`.
    assert video["api_key_id"].startswith("apikey_")
    [group] = get(client, headers, "/v1/usage", start_time=DAY_START, group_by="api_key_id")["data"][0]["groups"]
    assert group["key"]["api_key_id"] == "key_" + video["api_key_id"].removeprefix("apikey_")
    assert rows[gens["done"]["id"]]["duration_ms"] == 10_000
    cancelled = rows[gens["cancelled"]["id"]]
    assert (cancelled["status"], cancelled["credits_charged"], cancelled["model"]) == ("cancelled", 0, None)


def test_events_stream_filters(client, headers):
    gens = seed(client, headers)
    only = {
        "video": get(client, headers, "/v1/usage/events", start_time=DAY_START, type="video"),
        "cancelled": get(client, headers, "/v1/usage/events", start_time=DAY_START, status="cancelled"),
    }
    assert {name: [row["id"] for row in body["data"]] for name, body in only.items()} == {
        name: [gens[name]["id"]] for name in only
    }
    by_model = get(client, headers, "/v1/usage/events", start_time=DAY_START, model="Seedance 1.0 Pro")
    assert [row["id"] for row in by_model["data"]] == [gens["video"]["id"]]
    assert get(client, headers, "/v1/usage/events", start_time=DAY_START, user_id="usr_1")["data"] == []
    key_id = by_model["data"][0]["api_key_id"]
    # The filter takes the stream's own spelling and, as an alias, the `key_` one of /v1/usage.
    for spelled in (key_id, "key_" + key_id.removeprefix("apikey_")):
        assert len(get(client, headers, "/v1/usage/events", start_time=DAY_START, api_key_id=spelled)["data"]) == 3
    assert get(client, headers, "/v1/usage/events", start_time=DAY_START, api_key_id="apikey_other")["data"] == []
    later = get(client, headers, "/v1/usage/events", start_time="2026-06-01T12:00:00.001Z")
    assert later["data"] == []
    # The stream's status filter is free text in the spec: a status outside the vocabulary matches nothing.
    assert get(client, headers, "/v1/usage/events", start_time=DAY_START, status="succeeded")["data"] == []


def test_events_stream_cursor_walk(client, headers):
    for _ in range(5):
        client.post("/v1/images", json={"prompt": "p"}, headers=headers)
        advance(client, headers, 60)
    body = get(client, headers, "/v1/usage/events", start_time=DAY_START, limit=2)
    ids = [row["id"] for row in body["data"]]
    while body["has_more"]:
        body = get(client, headers, "/v1/usage/events", cursor=body["next_cursor"])
        ids += [row["id"] for row in body["data"]]
    assert len(ids) == len(set(ids)) == 5
    assert ids == sorted(ids, reverse=True)


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"start_time": DAY_START, "type": "t2i"}, "invalid_format", "type"),
        ({"start_time": DAY_START, "type": "hold"}, "invalid_format", "type"),
        ({"start_time": DAY_START, "limit": "501"}, "value_out_of_range", "limit"),
        ({"start_time": "2026-06-01 00:00"}, "invalid_format", "start_time"),
        ({"start_time": "2020-01-01T00:00:00Z"}, "value_out_of_range", "start_time"),
        ({"cursor": "garbled"}, "invalid_page_token", "cursor"),
    ],
)
def test_events_stream_bad_params_are_400(client, headers, params, code, param):
    assert_envelope(client.get("/v1/usage/events", params=params, headers=headers), 400, code, param)


def test_events_cursor_is_bound_to_team_and_query(client, headers):
    for _ in range(3):
        client.post("/v1/images", json={"prompt": "p"}, headers=headers)
    advance(client, headers, 60)  # end_time defaults to now and is exclusive
    cursor = get(client, headers, "/v1/usage/events", start_time=DAY_START, limit=1)["next_cursor"]
    assert cursor is not None
    other = client.get("/v1/usage/events", params={"cursor": cursor}, headers=new_headers())
    assert_envelope(other, 400, "invalid_page_token", "cursor")
    changed = client.get("/v1/usage/events", params={"cursor": cursor, "type": "video"}, headers=headers)
    assert_envelope(changed, 400, "invalid_page_token", "cursor")
    as_page_token = client.get("/v1/usage", params={"page_token": cursor}, headers=headers)
    assert_envelope(as_page_token, 400, "invalid_page_token", "page_token")


# --- GET /v1/usage/events: the [R] credit ledger -------------------------------------------------------------------


def test_ledger_rows_hold_charge_and_release(client, headers):
    gens = seed(client, headers)
    body = get(client, headers, "/v1/usage/events")
    assert (body["object"], body["has_more"], body["next_cursor"]) == ("list", False, None)
    rows = body["data"]
    assert all(row["object"] == "usage_event" and row["currency"] == "credit" for row in rows)
    assert all(row["id"].startswith("uev_") for row in rows)
    created = [row["created_at"] for row in rows]
    assert created == sorted(created, reverse=True)
    moves = {(row["generation_id"], row["type"]): row for row in rows}
    for name, settled in (("done", "charge"), ("video", "charge"), ("cancelled", "release")):
        gen_id, amount = gens[name]["id"], gens[name]["cost"]["amount"]
        hold, final = moves[(gen_id, "hold")], moves[(gen_id, settled)]
        assert hold["amount"] == final["amount"] == amount
        assert hold["hold_id"] == final["hold_id"] is not None
    assert len(rows) == 6


def test_ledger_type_filter_and_starting_after(client, headers):
    seed(client, headers)
    holds = get(client, headers, "/v1/usage/events", type="hold")["data"]
    assert [row["type"] for row in holds] == ["hold"] * 3
    first = get(client, headers, "/v1/usage/events", limit=4)
    assert first["has_more"] is True
    assert first["next_cursor"] == first["data"][-1]["id"]
    rest = get(client, headers, "/v1/usage/events", starting_after=first["next_cursor"])
    assert (len(rest["data"]), rest["has_more"], rest["next_cursor"]) == (2, False, None)
    everything = get(client, headers, "/v1/usage/events")["data"]
    assert first["data"] + rest["data"] == everything


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"type": "image"}, "invalid_format", "type"),
        ({"starting_after": "uev_01HXMQ7Z3K8Y2NABCDEFGHJKMN"}, "resource_not_found", "starting_after"),
        ({"limit": "0"}, "value_out_of_range", "limit"),
        ({"limit": "101"}, "value_out_of_range", "limit"),
    ],
)
def test_ledger_bad_params_are_400(client, headers, params, code, param):
    assert_envelope(client.get("/v1/usage/events", params=params, headers=headers), 400, code, param)

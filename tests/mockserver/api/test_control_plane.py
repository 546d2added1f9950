"""The control plane beyond the team clock: global time, firing what is due, snapshots, keys, team settings, journal."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver import create_app
from mockserver.api.control import NEVER_BACKWARDS, TOKEN_HEADER
from mockserver.clock import VirtualClock
from mockserver.core.snapshots import SNAPSHOT_LIMIT
from mockserver.webhooks import RecordingSender
from tests.conftest import BASE_URL, ClientFactory, make_settings, new_api_key
from tests.helpers import assert_envelope

NOW = "2026-06-01T12:00:00Z"
DONE = 120  # seconds: every image is terminal by then (pending ≤ 3 s, processing ≤ 27 s)
DAY_AND_AN_HOUR = 25 * 3600
FINISHED = 30  # seconds: a pinned image (1 s pending, 9 s processing) is done, its first retry (+60 s) not yet due


def key() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def clock(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    return dict(ok(client.get("/_mock/clock", headers=headers, params=params)))


def image(client: TestClient, headers: dict[str, str], prompt: str = "a lighthouse") -> dict[str, Any]:
    return dict(ok(client.post("/v1/images", headers=headers, json={"prompt": prompt}), 201))


def balance(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return dict(ok(client.get("/v1/balance", headers=headers)))


def journal(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    return list(ok(client.get("/_mock/journal", headers=headers, params=params))["data"])


def count(client: TestClient, headers: dict[str, str], **params: Any) -> int:
    return int(ok(client.get("/_mock/journal/count", headers=headers, params=params))["count"])


# --- global time ---------------------------------------------------------------------------------------


def test_global_advance_moves_every_team_and_later_ones(client: TestClient, fake_clock: VirtualClock) -> None:
    first, second = key(), key()
    clock(client, first)
    client.post("/_mock/clock/advance", headers=second, json={"seconds": 60})
    answer = ok(client.post("/_mock/clock/advance", headers=first, params={"global": "true"}, json={"seconds": 3600}))
    assert answer == {"now": "2026-06-01T13:00:00Z", "frozen": False}
    assert clock(client, first)["now"] == "2026-06-01T13:00:00Z"
    assert clock(client, second)["now"] == "2026-06-01T13:01:00Z"  # its own offset stays on top
    assert clock(client, key())["now"] == "2026-06-01T13:00:00Z"  # a team created afterwards inherits it
    assert clock(client, first, **{"global": "true"}) == {"now": "2026-06-01T13:00:00Z", "frozen": False}
    assert fake_clock.now().isoformat() == "2026-06-01T12:00:00+00:00"


def test_team_advance_leaves_other_teams_and_global_time(client: TestClient, headers: dict[str, str]) -> None:
    other = key()
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 600})
    assert clock(client, other)["now"] == NOW
    assert clock(client, headers, **{"global": "true"})["now"] == NOW


def test_global_advance_finishes_other_teams_generations(client: TestClient, headers: dict[str, str]) -> None:
    other = key()
    gen = image(client, other)
    client.post("/_mock/clock/advance", headers=headers, params={"global": "true"}, json={"seconds": DONE})
    assert ok(client.get(f"/v1/images/{gen['id']}", headers=other))["status"] == "succeeded"
    assert balance(client, other)["held_credits"] == 0


def test_global_freeze_stops_every_team_until_unfrozen(
    client: TestClient, headers: dict[str, str], fake_clock: VirtualClock
) -> None:
    assert ok(client.post("/_mock/clock/freeze", headers=headers, params={"global": "true"})) == {
        "now": NOW,
        "frozen": True,
    }
    fake_clock.advance(600)
    assert clock(client, key()) == {"now": NOW, "frozen": False}  # the team is not frozen itself
    client.post("/_mock/clock/unfreeze", headers=headers, params={"global": "true"})
    fake_clock.advance(5)
    assert clock(client, headers)["now"] == "2026-06-01T12:00:05Z"


def test_global_set_moves_every_team_and_never_backwards(client: TestClient, headers: dict[str, str]) -> None:
    answer = client.post(
        "/_mock/clock/set", headers=headers, params={"global": "true"}, json={"now": "2026-07-01T00:00:00Z"}
    )
    assert ok(answer)["now"] == "2026-07-01T00:00:00Z"
    assert clock(client, key())["now"] == "2026-07-01T00:00:00Z"
    back = client.post("/_mock/clock/set", headers=headers, params={"global": "true"}, json={"now": NOW})
    assert_envelope(back, 400, "value_out_of_range", param="now", message=NEVER_BACKWARDS)


def test_team_frozen_on_its_own_stays_put_under_a_global_advance(client: TestClient, headers: dict[str, str]) -> None:
    client.post("/_mock/clock/freeze", headers=headers)
    client.post("/_mock/clock/advance", headers=key(), params={"global": "true"}, json={"seconds": 60})
    assert clock(client, headers) == {"now": NOW, "frozen": True}


@pytest.mark.parametrize("value", ["yes", "1", "TRUE", ""])
def test_global_flag_must_be_true_or_false(client: TestClient, headers: dict[str, str], value: str) -> None:
    response = client.post("/_mock/clock/advance", headers=headers, params={"global": value}, json={"seconds": 1})
    assert_envelope(response, 400, "invalid_format", param="global")
    assert clock(client, headers)["now"] == NOW


# --- advancing fires what is due -------------------------------------------------------------------------


@pytest.fixture
def failing() -> RecordingSender:
    return RecordingSender(default=500)


@pytest.fixture
def hooked(failing: RecordingSender, fake_clock: VirtualClock) -> Iterator[TestClient]:
    """An app whose receivers always answer 500, with no background task: only the control plane delivers."""
    settings = make_settings(webhook_background=False, image_pending_seconds=1, image_processing_seconds=9)
    app = create_app(settings, clock=fake_clock, sender=failing)
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def test_advance_delivers_every_retry_of_a_day_in_order_before_answering(
    hooked: TestClient, headers: dict[str, str], failing: RecordingSender
) -> None:
    ok(
        hooked.post(
            "/v1/webhook_endpoints", headers=headers, json={"url": "https://example.com/hook", "events": ["*"]}
        ),
        201,
    )
    gen = image(hooked, headers)
    ok(hooked.post("/_mock/clock/advance", headers=headers, json={"seconds": DAY_AND_AN_HOUR}))
    attempts = list(reversed(ok(hooked.get("/_mock/webhooks/deliveries", headers=headers))["data"]))
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert {a["event_type"] for a in attempts} == {"image.completed"}
    scheduled = [datetime.fromisoformat(a["scheduled_at"].replace("Z", "+00:00")) for a in attempts]
    gaps = [(later - scheduled[0]).total_seconds() for later in scheduled]
    assert gaps == [0, 60, 300, 1800, 7200, 21600, 43200, 86400]
    assert [a["outcome"] for a in attempts] == ["retrying"] * 7 + ["failed"]
    assert len(failing.requests) == 8
    assert all(gen["id"] in r.body.decode() for r in failing.requests)
    assert ok(hooked.post("/_mock/webhooks/flush", headers=headers)) == {"flushed": 0}


def test_advance_with_wait_false_leaves_deliveries_due(
    hooked: TestClient, headers: dict[str, str], failing: RecordingSender
) -> None:
    ok(
        hooked.post(
            "/v1/webhook_endpoints", headers=headers, json={"url": "https://example.com/hook", "events": ["*"]}
        ),
        201,
    )
    image(hooked, headers)
    ok(hooked.post("/_mock/clock/advance", headers=headers, params={"wait": "false"}, json={"seconds": FINISHED}))
    assert failing.requests == []
    assert ok(hooked.post("/_mock/webhooks/flush", headers=headers)) == {"flushed": 1}


def test_global_advance_delivers_for_every_team(
    hooked: TestClient, headers: dict[str, str], failing: RecordingSender
) -> None:
    teams = [key(), key()]
    for team in teams:
        ok(
            hooked.post("/v1/webhook_endpoints", headers=team, json={"url": "https://example.com/h", "events": ["*"]}),
            201,
        )
        image(hooked, team)
    ok(hooked.post("/_mock/clock/advance", headers=headers, params={"global": "true"}, json={"seconds": FINISHED}))
    assert len(failing.requests) == 2
    for team in teams:
        assert len(ok(hooked.get("/_mock/webhooks/deliveries", headers=team))["data"]) == 1


def test_advance_settles_the_ledger_before_answering(client: TestClient, headers: dict[str, str]) -> None:
    image(client, headers)
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": DONE})
    team, _ = client.app.state.emulator.accounts.authenticate(headers["X-Api-Key"])  # type: ignore[attr-defined]
    assert (team.credits, team.held) == (999.0, 0)  # booked by the advance, not by a later request


# --- snapshots -----------------------------------------------------------------------------------------


def test_snapshot_restore_gives_back_balance_generations_and_clock(client: TestClient, headers: dict[str, str]) -> None:
    other = key()
    first = image(client, headers)
    before = {"balance": balance(client, headers), "clock": clock(client, headers)}
    before["list"] = ok(client.get("/v1/images", headers=headers))
    snap = ok(client.post("/_mock/snapshots", headers=headers), 201)
    assert snap["id"].startswith("snap_")
    assert snap["created_at"] == NOW
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 3600})
    image(client, headers)
    client.patch("/_mock/team", headers=headers, json={"credits": 50})
    image(client, other)
    other_before = balance(client, other)
    restored = ok(client.post(f"/_mock/snapshots/{snap['id']}/restore", headers=headers))
    assert restored["restored"] is True
    assert clock(client, headers) == before["clock"]
    assert balance(client, headers) == before["balance"]
    assert ok(client.get("/v1/images", headers=headers)) == before["list"]
    assert ok(client.get(f"/v1/images/{first['id']}", headers=headers))["status"] == "pending"
    assert balance(client, other) == other_before
    assert len(ok(client.get("/v1/images", headers=other))["data"]) == 1


def test_snapshot_belongs_to_its_team(client: TestClient, headers: dict[str, str]) -> None:
    other = key()
    snap = ok(client.post("/_mock/snapshots", headers=headers), 201)
    assert_envelope(client.post(f"/_mock/snapshots/{snap['id']}/restore", headers=other), 404, "resource_not_found")
    assert_envelope(client.delete(f"/_mock/snapshots/{snap['id']}", headers=other), 404, "resource_not_found")
    assert ok(client.get("/_mock/snapshots", headers=other))["data"] == []
    assert [s["id"] for s in ok(client.get("/_mock/snapshots", headers=headers))["data"]] == [snap["id"]]
    assert ok(client.get("/_mock/snapshots", headers=headers, params={"global": "true"}))["data"] == []


def test_snapshot_delete_forgets_it(client: TestClient, headers: dict[str, str]) -> None:
    snap = ok(client.post("/_mock/snapshots", headers=headers), 201)
    assert ok(client.delete(f"/_mock/snapshots/{snap['id']}", headers=headers))["deleted"] is True
    assert_envelope(client.post(f"/_mock/snapshots/{snap['id']}/restore", headers=headers), 404, "resource_not_found")


def test_snapshot_survives_a_reset_and_restores_over_it(client: TestClient, headers: dict[str, str]) -> None:
    image(client, headers)
    snap = ok(client.post("/_mock/snapshots", headers=headers), 201)
    client.post("/_mock/reset", headers=headers)
    assert balance(client, headers)["held_credits"] == 0
    client.post(f"/_mock/snapshots/{snap['id']}/restore", headers=headers)
    assert balance(client, headers)["held_credits"] == 1.0


def test_snapshot_of_a_frozen_clock_restores_frozen(
    client: TestClient, headers: dict[str, str], fake_clock: VirtualClock
) -> None:
    client.post("/_mock/clock/freeze", headers=headers)
    snap = ok(client.post("/_mock/snapshots", headers=headers), 201)
    client.post("/_mock/clock/unfreeze", headers=headers)
    fake_clock.advance(60)
    client.post(f"/_mock/snapshots/{snap['id']}/restore", headers=headers)
    assert clock(client, headers) == {"now": NOW, "frozen": True}


def test_global_snapshot_restores_every_team_and_global_time(client: TestClient, headers: dict[str, str]) -> None:
    other = key()
    balance(client, other)
    snap = ok(client.post("/_mock/snapshots", headers=headers, params={"global": "true"}), 201)
    assert snap["scope"] == "global"
    assert snap["team_id"] is None
    image(client, headers)
    image(client, other)
    client.post("/_mock/clock/advance", headers=headers, params={"global": "true"}, json={"seconds": 60})
    assert_envelope(client.post(f"/_mock/snapshots/{snap['id']}/restore", headers=headers), 404, "resource_not_found")
    ok(client.post(f"/_mock/snapshots/{snap['id']}/restore", headers=headers, params={"global": "true"}))
    for team in (headers, other):
        assert ok(client.get("/v1/images", headers=team))["data"] == []
        assert clock(client, team)["now"] == NOW


def test_snapshots_are_bounded_per_team(client: TestClient, headers: dict[str, str]) -> None:
    for _ in range(SNAPSHOT_LIMIT):
        ok(client.post("/_mock/snapshots", headers=headers), 201)
    assert_envelope(client.post("/_mock/snapshots", headers=headers), 400, "invalid_request_error")
    ok(client.post("/_mock/snapshots", headers=key()), 201)


# --- reset ---------------------------------------------------------------------------------------------


def test_global_reset_forgets_every_team(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(keys=[{"key": "al_live_reader", "scope": "read", "credits": 7}])
    other, reader = key(), {"X-Api-Key": "al_live_reader"}
    image(client, headers)
    image(client, other)
    client.patch("/_mock/team", headers=reader, json={"credits": 100})
    client.post("/_mock/clock/advance", headers=headers, params={"global": "true"}, json={"seconds": 3600})
    answer = ok(client.post("/_mock/reset", headers=headers, params={"global": "true"}))
    assert answer == {"reset": True, "team_id": None, "at": NOW}
    for team in (headers, other):
        assert ok(client.get("/v1/images", headers=team))["data"] == []
        assert balance(client, team)["credits"] == 1000.0
        assert clock(client, team)["now"] == NOW
    assert balance(client, reader)["credits"] == 7  # configured keys are declared again
    assert_envelope(client.post("/v1/images", headers=reader, json={"prompt": "x"}), 403, "missing_scope")
    assert count(client, headers, operation="createImage") == 1  # history is not data: the journal stays


def test_global_reset_replays_seeded_ids(client: TestClient, headers: dict[str, str]) -> None:
    first = image(client, headers)["id"]
    client.post("/_mock/reset", headers=headers, params={"global": "true"})
    assert image(client, headers)["id"] == first


# --- keys ----------------------------------------------------------------------------------------------


def test_declared_read_only_key_cannot_create(client: TestClient, headers: dict[str, str]) -> None:
    declared = ok(client.post("/_mock/keys", headers=headers, json={"scope": "read"}), 201)
    assert declared["key"].startswith("al_live_")
    assert declared["scope"] == "read"
    assert declared["revoked"] is False
    reader = {"X-Api-Key": declared["key"]}
    assert_envelope(client.post("/v1/images", headers=reader, json={"prompt": "x"}), 403, "missing_scope")
    team = ok(client.get("/v1/team", headers=headers))["id"]
    assert declared["team_id"] == ok(client.get("/v1/team", headers=reader))["id"] == team


def test_declared_revoked_key_is_401_until_unrevoked(client: TestClient, headers: dict[str, str]) -> None:
    raw = f"al_live_{new_api_key()[-20:]}"
    ok(client.post("/_mock/keys", headers=headers, json={"key": raw, "revoked": True}), 201)
    assert_envelope(client.get("/v1/balance", headers={"X-Api-Key": raw}), 401, "revoked_api_key")
    assert ok(client.patch(f"/_mock/keys/{raw}", headers=headers, json={"revoked": False}))["revoked"] is False
    assert client.get("/v1/balance", headers={"X-Api-Key": raw}).status_code == 200


def test_key_patch_changes_scope_of_same_team_only(client: TestClient, headers: dict[str, str]) -> None:
    declared = ok(client.post("/_mock/keys", headers=headers, json={}), 201)
    assert_envelope(
        client.patch(f"/_mock/keys/{declared['key']}", headers=key(), json={"scope": "read"}), 404, "resource_not_found"
    )
    assert (
        ok(client.patch(f"/_mock/keys/{declared['key']}", headers=headers, json={"scope": "read"}))["scope"] == "read"
    )


def test_keys_lists_the_team_keys_in_full(client: TestClient, headers: dict[str, str]) -> None:
    declared = ok(client.post("/_mock/keys", headers=headers, json={"scope": "write"}), 201)
    rows = ok(client.get("/_mock/keys", headers=headers))["data"]
    assert [row["key"] for row in rows] == [headers["X-Api-Key"], declared["key"]]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"key": "sk_live_nope"}, "invalid_format", "key"),
        ({"key": ""}, "invalid_format", "key"),
        ({"key": "al_live_x\n"}, "invalid_format", "key"),
        ({"scope": "admin"}, "invalid_format", "scope"),
        ({"revoked": "yes"}, "invalid_format", "revoked"),
        ({"key": None}, "invalid_format", "key"),
        ({"nickname": "x"}, "invalid_format", "nickname"),
    ],
)
def test_declare_key_validation(client: TestClient, headers: dict[str, str], body: Any, code: str, param: str) -> None:
    assert_envelope(client.post("/_mock/keys", headers=headers, json=body), 400, code, param=param)


def test_declare_existing_key_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    balance(client, headers)  # the key exists once it has been used
    taken = client.post("/_mock/keys", headers=key(), json={"key": headers["X-Api-Key"]})
    assert_envelope(taken, 400, "invalid_request_error", param="key")


# --- team settings -------------------------------------------------------------------------------------


def test_patch_team_answers_the_new_state(client: TestClient, headers: dict[str, str]) -> None:
    state = ok(client.patch("/_mock/team", headers=headers, json={"credits": 50, "default_api_version": "2026-05-15"}))
    assert state["credits"] == state["available_credits"] == 50
    assert state["held_credits"] == 0
    assert state["billing_mode"] == "metered"
    assert state["default_api_version"] == "2026-05-15"
    assert state["scope"] == "full"
    assert state["clock"] == {"now": NOW, "frozen": False}
    assert ok(client.get("/_mock/team", headers=headers)) == state


def test_patch_team_credits_writes_an_adjustment_row(client: TestClient, headers: dict[str, str]) -> None:
    client.patch("/_mock/team", headers=headers, json={"credits": 50})
    [row] = ok(client.get("/v1/usage/events", headers=headers, params={"type": "adjustment"}))["data"]
    assert row["amount"] == -950
    assert row["created_at"] == NOW


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"credits": -1}, "value_out_of_range", "credits"),
        ({"credits": "many"}, "invalid_format", "credits"),
        ({"credits": None}, "invalid_format", "credits"),
        ({"scope": "root"}, "invalid_format", "scope"),
        ({"default_api_version": "2026-13-01"}, "invalid_format", "default_api_version"),
        ({"default_api_version": "yesterday"}, "invalid_format", "default_api_version"),
        ({"default_api_version": "2099-01-01"}, "unknown_version", "default_api_version"),
        ({"credit": 5}, "invalid_format", "credit"),
    ],
)
def test_patch_team_validation(client: TestClient, headers: dict[str, str], body: Any, code: str, param: str) -> None:
    assert_envelope(client.patch("/_mock/team", headers=headers, json=body), 400, code, param=param)
    assert balance(client, headers)["credits"] == 1000


def test_patch_team_credits_not_below_held(client: TestClient, headers: dict[str, str]) -> None:
    image(client, headers)
    response = client.patch("/_mock/team", headers=headers, json={"credits": 0.5, "billing_mode": "exempt"})
    assert_envelope(response, 400, "value_out_of_range", param="credits")
    assert balance(client, headers)["billing_mode"] == "metered"  # all or nothing
    assert ok(client.patch("/_mock/team", headers=headers, json={"credits": 1}))["available_credits"] == 0


@pytest.mark.parametrize("mode", ["exempt", "enterprise"])
def test_patch_team_non_metered_is_never_blocked(client: TestClient, headers: dict[str, str], mode: str) -> None:
    client.patch("/_mock/team", headers=headers, json={"credits": 0, "billing_mode": mode})
    image(client, headers)
    assert balance(client, headers) == {
        "credits": 0,
        "held_credits": 0,
        "available_credits": 0,
        "currency": "credit",
        "billing_mode": mode,
    }


def test_patch_team_metered_with_no_credits_is_blocked(client: TestClient, headers: dict[str, str]) -> None:
    client.patch("/_mock/team", headers=headers, json={"credits": 0})
    assert_envelope(client.post("/v1/images", headers=headers, json={"prompt": "x"}), 402, "balance_too_low")


def test_patch_team_scope_applies_to_the_key_used(client: TestClient, headers: dict[str, str]) -> None:
    spare = ok(client.post("/_mock/keys", headers=headers, json={}), 201)
    assert ok(client.patch("/_mock/team", headers=headers, json={"scope": "read"}))["scope"] == "read"
    assert_envelope(client.post("/v1/images", headers=headers, json={"prompt": "x"}), 403, "missing_scope")
    image(client, {"X-Api-Key": spare["key"]})


def test_patch_team_version_pin_is_applied(client: TestClient, headers: dict[str, str]) -> None:
    state = ok(client.patch("/_mock/team", headers=headers, json={"default_api_version": "2025-01-01"}))
    assert state["default_api_version"] == "2026-05-15"  # "that date or any prior date" resolves to the first


# --- journal -------------------------------------------------------------------------------------------


def test_journal_records_public_and_control_calls_newest_first(client: TestClient, headers: dict[str, str]) -> None:
    gen = image(client, headers, "a red fox")
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 1})
    client.get("/v1/images/img_nope", headers=headers)
    newest, advance, create = journal(client, headers)
    assert (newest["operation"], newest["status"], newest["kind"]) == ("getGeneration", 404, "public")
    assert newest["response_body"]["error"]["code"] == "resource_not_found"
    assert (advance["operation"], advance["kind"], advance["request_body"]) == (
        "mock_advance_clock",
        "control",
        {"seconds": 1},
    )
    assert create["operation"] == "createImage"
    assert create["method"] == "POST"
    assert create["path"] == "/v1/images"
    assert create["at"] == NOW
    assert newest["at"] == "2026-06-01T12:00:01Z"
    assert create["request_body"] == {"prompt": "a red fox"}
    assert create["response_body"] == gen
    assert create["id"] == "jnl_" + create["request_id"].removeprefix("req_")
    assert create["response_headers"]["aurous-request-id"] == create["request_id"]
    assert create["duration_ms"] >= 0


def test_journal_filters_and_counts(client: TestClient, headers: dict[str, str]) -> None:
    image(client, headers)
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 60})
    client.get("/v1/images/img_nope", headers=headers)
    client.get("/v1/balance", headers=headers, params={"x": "1"})
    assert count(client, headers) == 4
    assert count(client, headers, operation="createImage") == 1
    assert count(client, headers, status="404") == count(client, headers, status="4xx") == 1
    assert count(client, headers, status="2xx") == 3
    assert count(client, headers, method="get") == 2
    assert count(client, headers, kind="control") == 1
    assert count(client, headers, since="2026-06-01T12:01:00Z") == 2
    assert count(client, headers, until="2026-06-01T12:01:00Z") == 2
    assert count(client, headers, since="2026-06-01T13:00:00+01:00", until="2026-06-01T12:00:30Z") == 2
    assert [e["operation"] for e in journal(client, headers, limit=2)] == ["getBalance", "getGeneration"]
    assert journal(client, headers, operation="getBalance")[0]["query"] == {"x": "1"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"status": "four"}, "status"),
        ({"status": "4XX"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-06-01T12:00:00"}, "until"),
        ({"kind": "both"}, "kind"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_journal_filter_validation(client: TestClient, headers: dict[str, str], params: Any, param: str) -> None:
    response = client.get("/_mock/journal", headers=headers, params=params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_journal_does_not_record_itself(client: TestClient, headers: dict[str, str]) -> None:
    balance(client, headers)
    journal(client, headers)
    count(client, headers)
    assert count(client, headers) == 1


def test_journal_is_per_team(client: TestClient, headers: dict[str, str]) -> None:
    balance(client, headers)
    assert count(client, key()) == 0


def test_journal_redacts_keys_to_their_first_14_characters(client: TestClient, headers: dict[str, str]) -> None:
    client.get("/v1/balance", headers={"Authorization": f"Bearer {headers['X-Api-Key']}"})
    bearer = journal(client, headers)[0]
    balance(client, headers)
    plain = journal(client, headers)[0]
    preview = headers["X-Api-Key"][:14] + "…"
    assert plain["request_headers"]["x-api-key"] == preview
    assert bearer["request_headers"]["authorization"] == f"Bearer {preview}"
    assert headers["X-Api-Key"] not in str(journal(client, headers))


def test_journal_ring_evicts_the_oldest(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(journal_size=3)
    for index in range(5):
        client.get("/v1/images/img_x", headers=headers, params={"n": str(index)})
    assert [e["query"]["n"] for e in journal(client, headers)] == ["4", "3", "2"]
    assert count(client, headers) == 3


def test_journal_shares_a_kept_poll_body_and_copies_the_others(client: TestClient, headers: dict[str, str]) -> None:
    """A poll's body is cached bytes of their own size (``reply_body``): every poll's entry refers to the one object,
    instead of a copy each (a thousand polls kept ~1 MB of copies); other bodies are still copied once."""
    created = image(client, headers)
    polls = [client.get(f"/v1/images/{created['id']}", headers=headers) for _ in range(3)]
    balances = [client.get("/v1/balance", headers=headers) for _ in range(2)]
    emulator = client.app.state.emulator  # type: ignore[attr-defined]
    team_id = emulator.accounts.authenticate(headers["X-Api-Key"], provision=False)[0].id
    entries = {entry.request_id: entry for entry in emulator.journal.entries(team_id)}
    kept = [entries[reply.headers["aurous-request-id"]].response_body for reply in polls]
    assert kept[0] == polls[0].content
    assert kept[0] is kept[1] is kept[2]
    copied = [entries[reply.headers["aurous-request-id"]].response_body for reply in balances]
    assert copied[0] == balances[0].content
    assert copied[0] is not copied[1]
    rendered = [e["response_body"] for e in journal(client, headers, operation="getGeneration")]
    assert rendered == [reply.json() for reply in reversed(polls)]  # the view renders the shared body as before


def test_journal_entries_leave_no_container_for_the_collector(client: TestClient, headers: dict[str, str]) -> None:
    """An entry outlives a thousand requests: kept as lists, its headers put a list and a tuple per header into the
    collector's young generation for every request (collections of ~8,000 objects, pauses of 3–5 ms under load), and
    an entry object would be walked by every collection while the ring keeps it. Packed headers in a plain tuple:
    the collector looks once, and the journal still shows every header."""
    created = image(client, headers)
    client.get(f"/v1/images/{created['id']}", headers={**headers, "X-Trace": "t-1"})
    emulator = client.app.state.emulator  # type: ignore[attr-defined]
    team_id = emulator.accounts.authenticate(headers["X-Api-Key"], provision=False)[0].id
    entries = emulator.journal.entries(team_id)
    assert len(entries) == 2
    for entry in entries:
        assert not gc.is_tracked(entry.request_headers)
        assert not gc.is_tracked(entry.response_headers)
    gc.collect()  # the first look at a tuple of atomic values stops tracking it: later collections skip the ring
    assert [gc.is_tracked(row) for row in emulator.journal._rings[team_id].entries] == [False, False]
    [poll] = journal(client, headers, operation="getGeneration")
    assert poll["request_headers"]["x-trace"] == "t-1"
    assert poll["response_headers"]["content-type"] == "application/json"
    assert poll["response_headers"]["x-ratelimit-limit"].isdigit()


def test_journal_size_zero_records_nothing(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(journal_size=0)
    balance(client, headers)
    assert count(client, headers) == 0


def test_journal_cuts_bodies_at_64_kib(client: TestClient, headers: dict[str, str]) -> None:
    client.post("/v1/images", headers=headers, json={"prompt": "x" * 70_000})
    [entry] = journal(client, headers)
    assert entry["request_body_truncated"] is True
    assert isinstance(entry["request_body"], str)
    assert len(entry["request_body"].encode()) == 64 * 1024
    assert entry["response_body_truncated"] is False


def test_journal_delete_forgets_history_but_keeps_state(client: TestClient, headers: dict[str, str]) -> None:
    gen = image(client, headers)
    before = balance(client, headers)
    assert ok(client.delete("/_mock/journal", headers=headers)) == {"deleted": 2}
    assert count(client, headers) == 0
    assert balance(client, headers) == before
    assert ok(client.get(f"/v1/images/{gen['id']}", headers=headers))["id"] == gen["id"]


def test_journal_global_delete_forgets_every_team(client: TestClient, headers: dict[str, str]) -> None:
    other = key()
    balance(client, headers)
    balance(client, other)
    ok(client.delete("/_mock/journal", headers=headers, params={"global": "true"}))
    assert count(client, other) == 0


def test_journal_skips_requests_without_a_team(client: TestClient, headers: dict[str, str]) -> None:
    client.get("/v1/balance", headers={"X-Api-Key": "nope"})
    client.get("/v1/balance")
    assert count(client, headers) == 0


# --- the spec route and the guard ------------------------------------------------------------------------


def test_control_spec_is_served_without_a_key(client: TestClient) -> None:
    response = client.get("/_mock/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert "/_mock/journal" in response.text


@pytest.mark.parametrize("overrides", [{"host": "0.0.0.0"}, {"control_plane": False}])
def test_control_spec_is_off_with_the_control_plane(client_for: ClientFactory, overrides: dict[str, Any]) -> None:
    assert_envelope(client_for(**overrides).get("/_mock/openapi.yaml"), 404, "resource_not_found")


def test_control_spec_needs_the_control_token(client_for: ClientFactory) -> None:
    client = client_for(host="0.0.0.0", control_token="s3cret")
    assert_envelope(client.get("/_mock/openapi.yaml"), 401, "missing_api_key")
    assert client.get("/_mock/openapi.yaml", headers={TOKEN_HEADER: "s3cret"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_mock/snapshots"),
        ("GET", "/_mock/keys"),
        ("PATCH", "/_mock/team"),
        ("GET", "/_mock/journal"),
        ("DELETE", "/_mock/journal"),
    ],
)
def test_new_control_routes_are_guarded(client_for: ClientFactory, method: str, path: str) -> None:
    assert_envelope(client_for(control_plane=False).request(method, path, headers=key()), 404, "resource_not_found")


def test_control_path_with_two_methods_lists_both_in_allow(client: TestClient, headers: dict[str, str]) -> None:
    response = client.put("/_mock/team", headers=headers)
    assert_envelope(response, 405, "resource_not_found")
    assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH"}

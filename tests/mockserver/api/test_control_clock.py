"""The control plane ``/_mock/*``: per-team clock, reset, and when the control plane answers at all."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver.api.control import NEVER_BACKWARDS, TEAM_TOO_FAR, TOKEN_HEADER, TOO_FAR
from mockserver.clock import VirtualClock
from mockserver.settings import Settings
from tests.conftest import ClientFactory, new_api_key
from tests.helpers import assert_envelope

NOW = "2026-06-01T12:00:00Z"


def clock_of(client: TestClient, headers: dict[str, str]) -> dict[str, object]:
    response = client.get("/_mock/clock", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_get_clock_shape(client: TestClient, headers: dict[str, str]) -> None:
    assert clock_of(client, headers) == {"now": NOW, "frozen": False}


def test_get_clock_follows_base_clock(client: TestClient, headers: dict[str, str], fake_clock: VirtualClock) -> None:
    fake_clock.advance(30)
    assert clock_of(client, headers)["now"] == "2026-06-01T12:00:30Z"


def test_advance_moves_team_clock(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/_mock/clock/advance", headers=headers, json={"seconds": 90})
    assert response.status_code == 200
    assert response.json() == {"now": "2026-06-01T12:01:30Z", "frozen": False}
    assert clock_of(client, headers)["now"] == "2026-06-01T12:01:30Z"


def test_advance_fractional_seconds_show_milliseconds(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/_mock/clock/advance", headers=headers, json={"seconds": 1.25})
    assert response.json()["now"] == "2026-06-01T12:00:01.250Z"


def test_advance_moves_only_that_team(client: TestClient, headers: dict[str, str], fake_clock: VirtualClock) -> None:
    other = {"X-Api-Key": new_api_key()}
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 3600})
    assert clock_of(client, other)["now"] == NOW
    assert fake_clock.now().isoformat() == "2026-06-01T12:00:00+00:00"


def test_advance_is_seen_by_team_resources(client: TestClient, headers: dict[str, str]) -> None:
    # A team provisioned after its clock moved is created at the moved instant.
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 60})
    created = client.post("/v1/images", headers=headers, json={"prompt": "a red fox"})
    assert created.status_code == 201, created.text
    assert created.json()["created_at"] == "2026-06-01T12:01:00Z"


@pytest.mark.parametrize(("body", "code"), [({"seconds": -1}, "value_out_of_range"), ({}, "missing_field")])
def test_advance_rejects_bad_seconds(client: TestClient, headers: dict[str, str], body: object, code: str) -> None:
    assert_envelope(client.post("/_mock/clock/advance", headers=headers, json=body), 400, code, param="seconds")
    assert clock_of(client, headers)["now"] == NOW


def test_advance_zero_is_allowed(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/_mock/clock/advance", headers=headers, json={"seconds": 0}).json()["now"] == NOW


def test_set_moves_team_clock_forward(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/_mock/clock/set", headers=headers, json={"now": "2026-07-01T00:00:00Z"})
    assert response.status_code == 200
    assert response.json() == {"now": "2026-07-01T00:00:00Z", "frozen": False}


def test_set_accepts_offsets_and_normalises_to_utc(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/_mock/clock/set", headers=headers, json={"now": "2026-06-01T16:00:00+02:00"})
    assert response.json()["now"] == "2026-06-01T14:00:00Z"


def test_set_to_same_instant_is_allowed(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/_mock/clock/set", headers=headers, json={"now": NOW}).status_code == 200


def test_set_backwards_is_value_out_of_range(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/_mock/clock/set", headers=headers, json={"now": "2026-05-31T12:00:00Z"})
    assert_envelope(response, 400, "value_out_of_range", param="now", message=NEVER_BACKWARDS)
    assert clock_of(client, headers)["now"] == NOW


def test_set_backwards_within_a_second_is_rejected(client: TestClient, headers: dict[str, str]) -> None:
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 1.5})
    response = client.post("/_mock/clock/set", headers=headers, json={"now": "2026-06-01T12:00:01Z"})
    assert_envelope(response, 400, "value_out_of_range", param="now", message=NEVER_BACKWARDS)
    assert clock_of(client, headers)["now"] == "2026-06-01T12:00:01.500Z"


def test_clock_cannot_pass_the_horizon(client: TestClient, headers: dict[str, str]) -> None:
    assert_envelope(
        client.post("/_mock/clock/set", headers=headers, json={"now": "9000-01-01T00:00:00Z"}),
        400,
        "value_out_of_range",
        param="now",
    )
    assert client.post("/_mock/clock/set", headers=headers, json={"now": "8999-12-31T00:00:00Z"}).status_code == 200
    response = client.post("/_mock/clock/advance", headers=headers, json={"seconds": 2 * 86_400})
    assert_envelope(response, 400, "value_out_of_range", param="seconds")
    assert clock_of(client, headers)["now"] == "8999-12-31T00:00:00Z"


@pytest.mark.parametrize(
    ("value", "message"),
    [("0001-01-01T00:00:00+01:00", NEVER_BACKWARDS), ("9999-12-31T23:59:59-01:00", TOO_FAR)],
)
def test_set_to_an_instant_beyond_datetime_in_utc_is_value_out_of_range(
    client: TestClient, headers: dict[str, str], value: str, message: str
) -> None:
    """Found by fuzzing the control plane: these parse, but have no UTC equivalent (was a 500)."""
    response = client.post("/_mock/clock/set", headers=headers, json={"now": value})
    assert_envelope(response, 400, "value_out_of_range", param="now", message=message)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/_mock/clock/set", {"now": "7729-07-12T21:08:47.7-19:22"}, "now"),
        ("/_mock/clock/advance", {"seconds": 10 * 365 * 86400}, "seconds"),
    ],
)
def test_a_global_move_never_carries_a_team_past_the_horizon(
    client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any], param: str
) -> None:
    """Found by fuzzing the control plane: a team far ahead was pushed past datetime.max by a global move, and
    every request of that team (this one first) answered 500."""
    ahead = {"X-Api-Key": new_api_key()}
    assert client.post("/_mock/clock/set", headers=ahead, json={"now": "8995-01-01T00:00:00Z"}).status_code == 200
    response = client.post(path, headers=headers, json=body, params={"global": "true"})
    assert_envelope(response, 400, "value_out_of_range", param=param, message=TEAM_TOO_FAR)
    assert client.get("/v1/balance", headers=ahead).status_code == 200
    assert clock_of(client, ahead)["now"] == "8995-01-01T00:00:00Z"
    a_minute = client.post("/_mock/clock/advance", headers=headers, json={"seconds": 60}, params={"global": "true"})
    assert a_minute.status_code == 200, a_minute.text  # moves that leave room still go


@pytest.mark.parametrize("value", ["2026-07-01T00:00:00", "tomorrow", "2026-13-01T00:00:00Z", None])
def test_set_needs_an_aware_timestamp(client: TestClient, headers: dict[str, str], value: object) -> None:
    response = client.post("/_mock/clock/set", headers=headers, json={"now": value})
    assert_envelope(response, 400, "invalid_format", param="now")


def test_freeze_stops_team_clock(client: TestClient, headers: dict[str, str], fake_clock: VirtualClock) -> None:
    assert client.post("/_mock/clock/freeze", headers=headers).json() == {"now": NOW, "frozen": True}
    fake_clock.advance(600)
    assert clock_of(client, headers) == {"now": NOW, "frozen": True}


def test_advance_while_frozen_stays_frozen(client: TestClient, headers: dict[str, str]) -> None:
    client.post("/_mock/clock/freeze", headers=headers)
    response = client.post("/_mock/clock/advance", headers=headers, json={"seconds": 5})
    assert response.json() == {"now": "2026-06-01T12:00:05Z", "frozen": True}


def test_unfreeze_resumes_from_frozen_instant(
    client: TestClient, headers: dict[str, str], fake_clock: VirtualClock
) -> None:
    client.post("/_mock/clock/freeze", headers=headers)
    fake_clock.advance(600)
    assert client.post("/_mock/clock/unfreeze", headers=headers).json() == {"now": NOW, "frozen": False}
    fake_clock.advance(10)
    assert clock_of(client, headers)["now"] == "2026-06-01T12:00:10Z"


def test_freeze_is_per_team(client: TestClient, headers: dict[str, str], fake_clock: VirtualClock) -> None:
    other = {"X-Api-Key": new_api_key()}
    client.post("/_mock/clock/freeze", headers=headers)
    fake_clock.advance(5)
    assert clock_of(client, other) == {"now": "2026-06-01T12:00:05Z", "frozen": False}


def test_reset_restores_balance_and_clock(client: TestClient, headers: dict[str, str], settings: Settings) -> None:
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 3600})
    client.post("/_mock/clock/freeze", headers=headers)
    assert client.post("/v1/images", headers=headers, json={"prompt": "a red fox"}).status_code == 201
    assert client.get("/v1/balance", headers=headers).json()["available_credits"] < settings.default_credits
    team_id = client.get("/v1/team", headers=headers).json()["id"]
    response = client.post("/_mock/reset", headers=headers)
    assert response.status_code == 200
    assert response.json()["reset"] is True
    assert response.json()["team_id"] == team_id
    assert clock_of(client, headers) == {"now": NOW, "frozen": False}
    balance = client.get("/v1/balance", headers=headers).json()
    assert balance["credits"] == balance["available_credits"] == settings.default_credits
    assert balance["held_credits"] == 0
    assert client.get("/v1/team", headers=headers).json()["id"] == team_id


def test_reset_forgets_rate_limit_buckets(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(rate_limits={"get": {"capacity": 2, "per_minute": 1}})
    for _ in range(3):
        client.get("/v1/balance", headers=headers)
    client.post("/_mock/reset", headers=headers)
    assert client.get("/v1/balance", headers=headers).headers["X-RateLimit-Remaining"] == "1"


def test_reset_touches_only_that_team(client: TestClient, headers: dict[str, str]) -> None:
    other = {"X-Api-Key": new_api_key()}
    client.post("/_mock/clock/advance", headers=other, json={"seconds": 120})
    assert client.post("/v1/images", headers=other, json={"prompt": "a red fox"}).status_code == 201
    held = client.get("/v1/balance", headers=other).json()
    client.post("/_mock/reset", headers=headers)
    assert clock_of(client, other)["now"] == "2026-06-01T12:02:00Z"
    assert client.get("/v1/balance", headers=other).json() == held


def test_reset_redeclares_configured_keys(client_for: ClientFactory) -> None:
    client = client_for(keys=[{"key": "al_live_decl", "credits": 7, "scope": "read", "billing_mode": "exempt"}])
    headers = {"X-Api-Key": "al_live_decl"}
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 60})
    client.post("/_mock/reset", headers=headers)
    assert client.get("/v1/balance", headers=headers).json()["credits"] == 7
    assert client.get("/v1/team", headers=headers).json()["billing_mode"] == "exempt"
    assert_envelope(client.post("/v1/images", headers=headers, json={}), 403, "missing_scope")


def test_reset_reports_emulator_time(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/_mock/reset", headers=headers).json()["at"] == NOW


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_mock/clock"),
        ("POST", "/_mock/clock/advance"),
        ("POST", "/_mock/clock/set"),
        ("POST", "/_mock/clock/freeze"),
        ("POST", "/_mock/clock/unfreeze"),
        ("POST", "/_mock/reset"),
    ],
)
def test_control_plane_needs_a_key(client: TestClient, method: str, path: str) -> None:
    assert_envelope(client.request(method, path), 401, "missing_api_key")


@pytest.mark.parametrize("overrides", [{"host": "0.0.0.0"}, {"control_plane": False}])
def test_control_plane_off_is_404(client_for: ClientFactory, headers: dict[str, str], overrides: dict) -> None:
    client = client_for(**overrides)
    assert_envelope(client.get("/_mock/clock", headers=headers), 404, "resource_not_found")
    assert_envelope(client.post("/_mock/reset", headers=headers), 404, "resource_not_found")
    assert client.get("/v1/balance", headers=headers).status_code == 200


@pytest.mark.parametrize("overrides", [{"host": "0.0.0.0"}, {"control_plane": False}])
def test_control_plane_off_is_404_without_key(client_for: ClientFactory, overrides: dict) -> None:
    client = client_for(**overrides)
    assert_envelope(client.get("/_mock/clock"), 404, "resource_not_found")


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_control_token_required_when_set(client_for: ClientFactory, headers: dict[str, str], host: str) -> None:
    client = client_for(host=host, control_token="s3cret")
    assert_envelope(client.get("/_mock/clock", headers=headers), 401, "missing_api_key")
    wrong = client.get("/_mock/clock", headers={**headers, TOKEN_HEADER: "nope"})
    assert_envelope(wrong, 401, "invalid_api_key")
    right = client.get("/_mock/clock", headers={**headers, TOKEN_HEADER: "s3cret"})
    assert right.status_code == 200
    assert right.json() == {"now": NOW, "frozen": False}


def test_control_token_does_not_replace_api_key(client_for: ClientFactory) -> None:
    client = client_for(control_token="s3cret")
    assert_envelope(client.get("/_mock/clock", headers={TOKEN_HEADER: "s3cret"}), 401, "missing_api_key")

"""The control plane's boundaries: off beyond loopback without the token, token-guarded with one, and scoped to the
team of the key sent, so one team's key never reads, resets or rolls back another team's state.

``?global=true`` is the one explicit exception: it is the operator's verb, available to whoever may use the
control plane at all (a loopback client, or the token holder), and never implied.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from mockserver import InMemoryStore, VirtualClock, create_app
from mockserver.api.control import TOKEN_HEADER
from mockserver.api.routes import CONTROL
from mockserver.webhooks import RecordingSender
from tests.conftest import BASE_URL, START, ClientFactory, make_settings, new_api_key
from tests.helpers import assert_envelope

# Every (method, path) of the control plane, from the route table itself: a new route is covered on arrival.
CONTROL_ROUTES = sorted(
    (method, re.sub(r"\{[^}]+\}", "x_1", route.path))
    for route in CONTROL
    if isinstance(route, Route)
    for method in route.methods or ()
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(
        make_settings(rate_limits_enabled=False, image_pending_seconds=1, image_processing_seconds=9),
        clock=VirtualClock(START),
        store=InMemoryStore(),
        sender=RecordingSender(),
    )
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def populate(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """Give a team something of everything the control plane touches; the ids by kind."""
    endpoint = ok(
        client.post("/v1/webhook_endpoints", json={"url": "http://127.0.0.1:9/b", "events": ["*"]}, headers=headers),
        201,
    )
    gen = ok(client.post("/v1/images", json={"prompt": "b's"}, headers=headers), 201)
    chat = {"model": "aurous-grow-2.0-pro", "messages": [{"role": "user", "content": "b's"}], "max_tokens": 8}
    completion = ok(client.post("/v1/chat/completions", json=chat, headers=headers))
    ok(client.post("/_mock/clock/advance", json={"seconds": 30}, headers=headers))
    event = ok(client.get("/_mock/webhooks/deliveries", headers=headers))["data"][0]["event_id"]
    rule = ok(client.post("/_mock/scenarios", json={"then": "fail"}, headers=headers), 201)
    extra = ok(client.post("/_mock/keys", json={"scope": "read"}, headers=headers), 201)
    snapshot = ok(client.post("/_mock/snapshots", headers=headers), 201)
    team = ok(client.get("/_mock/team", headers=headers))
    return {
        "endpoint": endpoint["id"],
        "generation": gen["id"],
        "chat_completion": completion["id"],
        "event": event,
        "scenario": rule["id"],
        "snapshot": snapshot["id"],
        "key": headers["X-Api-Key"],
        "extra_key": extra["key"],
        "team": team["id"],
    }


def observe(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """Everything a team's key can see of its own state (the journal by a filter its own reads do not change)."""
    return {
        "journal": ok(client.get("/_mock/journal/count", params={"operation": "createImage"}, headers=headers)),
        "team": ok(client.get("/_mock/team", headers=headers)),
        "balance": ok(client.get("/v1/balance", headers=headers)),
        "generations": ok(client.get("/v1/images", headers=headers))["data"],
        "endpoints": ok(client.get("/v1/webhook_endpoints", headers=headers))["data"],
        "keys": ok(client.get("/_mock/keys", headers=headers))["data"],
        "scenarios": ok(client.get("/_mock/scenarios", headers=headers))["data"],
        "snapshots": ok(client.get("/_mock/snapshots", headers=headers))["data"],
        "deliveries": ok(client.get("/_mock/webhooks/deliveries", headers=headers))["data"],
        "ledger": ok(client.get("/v1/usage/events", headers=headers))["data"],
    }


# Every control route in its team-scoped form, with a body that makes it succeed; ids of the caller's own records.
BATTERY: list[tuple[str, str, Any]] = [
    ("GET", "/_mock/clock", None),
    ("POST", "/_mock/clock/advance", {"seconds": 3600}),
    ("POST", "/_mock/clock/set", {"now": "2030-01-01T00:00:00Z"}),
    ("POST", "/_mock/clock/freeze", None),
    ("POST", "/_mock/clock/unfreeze", None),
    ("GET", "/_mock/webhooks/deliveries", None),
    ("POST", "/_mock/webhooks/flush", None),
    ("POST", "/_mock/webhooks/events/{event}/redeliver", None),
    ("POST", "/_mock/scenarios", {"then": "block"}),
    ("GET", "/_mock/scenarios", None),
    ("DELETE", "/_mock/scenarios/{scenario}", None),
    ("DELETE", "/_mock/scenarios", None),
    ("POST", "/_mock/snapshots", None),
    ("GET", "/_mock/snapshots", None),
    ("POST", "/_mock/snapshots/{snapshot}/restore", None),
    ("DELETE", "/_mock/snapshots/{snapshot}", None),
    ("POST", "/_mock/keys", {"scope": "write"}),
    ("GET", "/_mock/keys", None),
    ("PATCH", "/_mock/keys/{extra_key}", {"revoked": True}),
    ("GET", "/_mock/team", None),
    ("PATCH", "/_mock/team", {"credits": 1, "billing_mode": "exempt", "default_api_version": "2026-05-15"}),
    ("GET", "/_mock/journal", None),
    ("GET", "/_mock/journal/count", None),
    ("DELETE", "/_mock/journal", None),
    ("GET", "/_mock/teams", None),
    ("GET", "/_mock/generations", None),
    ("GET", "/_mock/characters", None),
    ("GET", "/_mock/ledger", None),
    ("GET", "/_mock/chat/completions", None),
    ("GET", "/_mock/usage/llm", None),
    ("GET", "/_mock/webhooks/endpoints", None),
    ("GET", "/_mock/changes", None),
    ("POST", "/_mock/reset", None),
]
# Routes without a team: the spec, the dashboard's shell and files (no data; tests/mockserver/api/test_ui.py)
SPEC = {("GET", "/_mock/openapi.yaml")}
UNSCOPED = SPEC | {("GET", "/_mock/ui"), ("GET", "/_mock/ui/static/x_1")}


def every_team_scoped_operation(client: TestClient, headers: dict[str, str]) -> list[str]:
    """A team runs every control route in its team-scoped form (each succeeds); the answers it got."""
    mine = populate(client, headers)
    answers = []
    for method, path, body in BATTERY:
        response = client.request(method, path.format(**mine), json=body, headers=headers)
        assert response.status_code < 300, (method, path, response.text)
        answers.append(response.text)
    return answers


def test_the_battery_runs_every_control_route() -> None:
    shapes = {(method, re.sub(r"\{[^}]+\}", "x_1", path)) for method, path, _ in BATTERY}
    assert set(CONTROL_ROUTES) == shapes | UNSCOPED


def test_one_teams_control_operations_never_touch_or_show_another_team(client: TestClient) -> None:
    team_b = {"X-Api-Key": new_api_key()}
    b_ids = populate(client, team_b)
    before = observe(client, team_b)
    answers = every_team_scoped_operation(client, {"X-Api-Key": new_api_key()})
    assert observe(client, team_b) == before
    for text in answers:
        for kind, value in b_ids.items():
            assert value not in text, f"team A saw team B's {kind}"


def test_global_reads_show_no_teams_data(client: TestClient) -> None:
    team_b = {"X-Api-Key": new_api_key()}
    b_ids = populate(client, team_b)
    a = {"X-Api-Key": new_api_key()}
    for path in ("/_mock/clock", "/_mock/snapshots"):
        text = client.get(path, params={"global": "true"}, headers=a).text
        assert not [kind for kind, value in b_ids.items() if value in text], text


def test_another_teams_ids_are_not_found_through_the_control_plane(client: TestClient) -> None:
    team_b = {"X-Api-Key": new_api_key()}
    b = populate(client, team_b)
    before = observe(client, team_b)
    a = {"X-Api-Key": new_api_key()}
    ok(client.get("/v1/balance", headers=a))
    for method, path in [
        ("POST", f"/_mock/snapshots/{b['snapshot']}/restore"),
        ("DELETE", f"/_mock/snapshots/{b['snapshot']}"),
        ("DELETE", f"/_mock/scenarios/{b['scenario']}"),
        ("POST", f"/_mock/webhooks/events/{b['event']}/redeliver"),
    ]:
        assert_envelope(client.request(method, path, headers=a), 404, "resource_not_found")
    for key in (b["key"], b["extra_key"]):
        response = client.patch(f"/_mock/keys/{key}", json={"revoked": True, "scope": "read"}, headers=a)
        assert_envelope(response, 404, "resource_not_found")
        assert_envelope(client.post("/_mock/keys", json={"key": key}, headers=a), 400, "invalid_request_error", "key")
    assert ok(client.get("/_mock/webhooks/deliveries", params={"event_id": b["event"]}, headers=a))["data"] == []
    assert observe(client, team_b) == before


def test_a_reset_teams_key_cannot_be_claimed_by_another_team(client: TestClient) -> None:
    """A reset forgets the team's keys; its own key must still lead back to it, never to whoever declared it first."""
    team_b = {"X-Api-Key": new_api_key()}
    b_team = ok(client.get("/_mock/team", headers=team_b))["id"]
    ok(client.post("/_mock/reset", headers=team_b))
    a = {"X-Api-Key": new_api_key()}
    response = client.post("/_mock/keys", json={"key": team_b["X-Api-Key"]}, headers=a)
    assert_envelope(response, 400, "invalid_request_error", "key")
    assert ok(client.get("/_mock/team", headers=team_b))["id"] == b_team


def test_a_key_never_used_can_be_declared_by_a_team() -> None:
    """Declaring a fresh string is the documented way to give a team more keys; only used ones are protected."""
    app = create_app(make_settings(), clock=VirtualClock(START), store=InMemoryStore(), sender=RecordingSender())
    with TestClient(app, base_url=BASE_URL) as client:
        a = {"X-Api-Key": new_api_key()}
        fresh = new_api_key()
        ok(client.post("/_mock/keys", json={"key": fresh}, headers=a), 201)
        assert (
            ok(client.get("/_mock/team", headers={"X-Api-Key": fresh}))["id"]
            == ok(client.get("/_mock/team", headers=a))["id"]
        )


# --- beyond loopback -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), CONTROL_ROUTES)
def test_every_control_route_is_off_beyond_loopback_without_a_token(
    client_for: ClientFactory, method: str, path: str
) -> None:
    client = client_for(host="0.0.0.0")
    for params in ({}, {"global": "true"}):
        response = client.request(method, path, params=params, headers={"X-Api-Key": new_api_key()})
        assert_envelope(response, 404, "resource_not_found")
    assert client.get("/v1/balance", headers={"X-Api-Key": new_api_key()}).status_code == 200


@pytest.mark.parametrize(("method", "path"), [route for route in CONTROL_ROUTES if route not in UNSCOPED - SPEC])
def test_every_control_route_needs_the_token_when_one_is_set(client_for: ClientFactory, method: str, path: str) -> None:
    client = client_for(host="0.0.0.0", control_token="s3cret")
    headers = {"X-Api-Key": new_api_key()}
    for params in ({}, {"global": "true"}):
        assert_envelope(client.request(method, path, params=params, headers=headers), 401, "missing_api_key")
        wrong = {**headers, TOKEN_HEADER: "s3cret!"}
        assert_envelope(client.request(method, path, params=params, headers=wrong), 401, "invalid_api_key")


def test_the_token_opens_team_and_global_forms(client_for: ClientFactory) -> None:
    client = client_for(host="0.0.0.0", control_token="s3cret")
    headers = {"X-Api-Key": new_api_key(), TOKEN_HEADER: "s3cret"}
    assert ok(client.get("/_mock/team", headers=headers))["credits"] == 1000.0
    assert ok(client.post("/_mock/reset", params={"global": "true"}, headers=headers))["team_id"] is None


@pytest.mark.parametrize(
    ("peer", "open_"),
    [
        (("10.9.8.7", 4000), False),
        (("192.168.1.20", 4000), False),
        (("2001:db8::1", 4000), False),
        (("127.0.0.1", 4000), True),
        (("127.8.9.10", 4000), True),
        (("::1", 4000), True),
        (("::ffff:127.0.0.1", 4000), True),
    ],
)
def test_control_plane_answers_only_loopback_peers_without_a_token(peer: tuple[str, int], open_: bool) -> None:
    """The settings say loopback but the app is reachable some other way (``uvicorn --factory --host 0.0.0.0``)."""
    app = create_app(make_settings(), clock=VirtualClock(START), store=InMemoryStore(), sender=RecordingSender())
    headers = {"X-Api-Key": new_api_key()}
    with TestClient(app, base_url=BASE_URL, client=peer) as client:
        response = client.get("/_mock/team", headers=headers)
        if open_:
            assert response.status_code == 200, response.text
        else:
            assert_envelope(response, 404, "resource_not_found")
            assert_envelope(client.get("/_mock/openapi.yaml"), 404, "resource_not_found")
        assert client.get("/v1/balance", headers=headers).status_code == 200  # the public API answers everyone


def test_a_token_lets_remote_peers_in(client_for: ClientFactory) -> None:
    app = create_app(make_settings(control_token="s3cret"), clock=VirtualClock(START), store=InMemoryStore())
    with TestClient(app, base_url=BASE_URL, client=("10.9.8.7", 4000)) as client:
        headers = {"X-Api-Key": new_api_key(), TOKEN_HEADER: "s3cret"}
        assert client.get("/_mock/team", headers=headers).status_code == 200

"""``/v1/webhook_endpoints`` over HTTP: create, list, get, delete, rotate, test fire, validation, scopes.

Reference §2.7, §5, §8.11–8.13. Every success body is checked against its ``openapi.yaml`` schema, and every
test-fire delivery against the spec's ``webhooks:`` entry for its event type. Deliveries go to a
``RecordingSender`` and are sent by ``POST /_mock/webhooks/flush`` (the background task is off).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from starlette.testclient import TestClient

from mockserver import Store, create_app
from mockserver.clock import VirtualClock
from mockserver.core.webhooks import EVENT_TYPES, V1_EVENT_TYPES
from mockserver.settings import KeyConfig
from mockserver.webhooks import RecordingSender
from tests.conftest import BASE_URL, START, make_settings, new_api_key
from tests.helpers import assert_envelope

# Endpoints, events and the scheduled attempts: the same tests against memory, sqlite and redis.
pytestmark = pytest.mark.every_store

SPEC_PATH = Path(__file__).resolve().parents[3] / "openapi.yaml"
BASE_URI = "urn:aurous-mock:openapi"
SECRET = re.compile(r"^whsec_[A-Za-z0-9]{32}$")
SIGNATURE = re.compile(r"^t=(\d{10}),v1=([0-9a-f]{64})$")
READ_ONLY = "al_live_webhooks_read_only"
HOOK = "https://example.com/webhooks/aurous"


# --- the spec as a validator ----------------------------------------------------------------------------


@functools.cache
def _registry() -> Registry[Any]:
    spec = yaml.safe_load(SPEC_PATH.read_text())
    return Registry().with_resource(BASE_URI, DRAFT202012.create_resource(spec))


def conforms(pointer: str, instance: Any) -> None:
    """Assert ``instance`` is valid against the schema at ``pointer`` in openapi.yaml (formats checked)."""
    validator = Draft202012Validator(
        {"$ref": f"{BASE_URI}#{pointer}"}, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, errors


def conforms_to_webhook(event_type: str, body: Any) -> None:
    conforms(f"/webhooks/{event_type}/post/requestBody/content/application~1json/schema", body)


def verify(header: str, body: bytes, secret: str) -> bool:
    match = SIGNATURE.match(header)
    assert match, header
    expected = hmac.new(secret.encode(), f"{match[1]}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match[2])


# --- fixtures and helpers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture(scope="module")
def client(sender: RecordingSender, module_store: Store) -> Iterator[TestClient]:
    settings = make_settings(
        rate_limits_enabled=False, webhook_background=False, keys=[KeyConfig(key=READ_ONLY, scope="read")]
    )
    app = create_app(settings, clock=VirtualClock(START), store=module_store, sender=sender)
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def headers() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/webhook_endpoints", json={"url": HOOK, "events": ["*"], **body}, headers=headers)
    assert response.status_code == 201, response.text
    conforms("/components/schemas/WebhookEndpoint", response.json())
    return dict(response.json())


def flush(client: TestClient, headers: dict[str, str]) -> int:
    response = client.post("/_mock/webhooks/flush", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["flushed"])


def sent_to(sender: RecordingSender, endpoint_id: str) -> list[Any]:
    return [r for r in sender.requests if r.headers.get("Aurous-Webhook-Id") == endpoint_id]


# --- create ---------------------------------------------------------------------------------------------


def test_create_endpoint_returns_201_with_the_secret_shown_once(client, headers):
    body = create(client, headers, description="Production webhook", metadata={"env": "prod"})
    assert body["object"] == "webhook_endpoint"
    assert re.fullmatch(r"we_[0-9A-Z]{26}", body["id"])
    assert SECRET.match(body["secret"])
    assert body["secret_preview"] == f"{body['secret'][:9]}...{body['secret'][-4:]}"
    assert body["events"] == list(V1_EVENT_TYPES)
    assert body["is_active"] is True
    assert body["consecutive_failures"] == 0
    assert body["last_success_at"] is None
    assert body["last_failure_at"] is None
    assert body["metadata"] == {"env": "prod"}
    assert body["description"] == "Production webhook"
    assert body["created_at"] == body["updated_at"] == "2026-06-01T12:00:00Z"
    again = client.get(f"/v1/webhook_endpoints/{body['id']}", headers=headers).json()
    assert again["secret"] is None
    assert again == {**body, "secret": None}


def test_create_endpoint_defaults_description_null_and_metadata_empty(client, headers):
    body = create(client, headers)
    assert body["description"] is None
    assert body["metadata"] == {}


def test_create_endpoint_accepts_http_loopback_for_local_receivers(client, headers):
    assert create(client, headers, url="http://127.0.0.1:9/hook")["url"] == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"url": "http://example.com/hook"}, 400, "invalid_format", "url"),
        ({"url": "https://10.1.2.3/hook"}, 400, "invalid_format", "url"),
        ({"url": "https://[::1]/hook"}, 201, None, None),  # loopback is allowed (setting on by default)
        ({"url": "https://169.254.169.254/"}, 400, "invalid_format", "url"),
        ({"url": "https://" + "a" * 2048}, 400, "value_out_of_range", "url"),
        ({"url": None}, 400, "invalid_format", "url"),
        ({"url": 5}, 400, "invalid_format", "url"),
        ({"events": []}, 400, "value_out_of_range", "events"),
        ({"events": ["image.completed", "image.done"]}, 400, "invalid_format", "events[1]"),
        ({"events": [3]}, 400, "invalid_format", "events[0]"),
        ({"events": "*"}, 400, "invalid_format", "events"),
        ({"description": None}, 400, "invalid_format", "description"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, 400, "value_out_of_range", "metadata"),
        ({"metadata": {"k": "v" * 501}}, 400, "value_out_of_range", "metadata"),
        ({"metadata": {"k": 1}}, 400, "invalid_format", "metadata.k"),
    ],
)
def test_create_endpoint_validation(client, headers, body, status, code, param):
    response = client.post("/v1/webhook_endpoints", json={"url": HOOK, "events": ["*"], **body}, headers=headers)
    if status == 201:
        assert response.status_code == 201, response.text
        return
    assert_envelope(response, status, code, param)


def test_create_endpoint_requires_url_and_events(client, headers):
    assert_envelope(client.post("/v1/webhook_endpoints", json={}, headers=headers), 400, "missing_field", "url")
    response = client.post("/v1/webhook_endpoints", json={"url": HOOK}, headers=headers)
    assert_envelope(response, 400, "missing_field", "events")


def test_create_endpoint_needs_write_scope(client):
    response = client.post(
        "/v1/webhook_endpoints", json={"url": HOOK, "events": ["*"]}, headers={"X-Api-Key": READ_ONLY}
    )
    assert_envelope(response, 403, "missing_scope")
    assert client.get("/v1/webhook_endpoints", headers={"X-Api-Key": READ_ONLY}).status_code == 200


# --- read, list, delete ------------------------------------------------------------------------------------


def test_get_endpoint_of_another_team_is_not_found(client, headers):
    endpoint = create(client, headers)
    response = client.get(f"/v1/webhook_endpoints/{endpoint['id']}", headers={"X-Api-Key": new_api_key()})
    assert_envelope(response, 404, "resource_not_found")


def test_list_endpoints_is_newest_first_and_paginates(client, headers):
    ids = [create(client, headers)["id"] for _ in range(3)][::-1]
    page = client.get("/v1/webhook_endpoints", params={"limit": 2}, headers=headers).json()
    conforms("/components/schemas/WebhookEndpointList", page)
    assert [e["id"] for e in page["data"]] == ids[:2]
    assert all(e["secret"] is None for e in page["data"])
    assert page["has_more"] is True
    assert page["next_cursor"] == ids[1]
    rest = client.get("/v1/webhook_endpoints", params={"starting_after": page["next_cursor"]}, headers=headers).json()
    assert [e["id"] for e in rest["data"]] == ids[2:]
    assert rest["has_more"] is False
    assert rest["next_cursor"] is None


def test_list_endpoints_is_empty_for_a_new_team(client, headers):
    body = client.get("/v1/webhook_endpoints", headers=headers).json()
    assert body == {"object": "list", "data": [], "has_more": False, "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"limit": 0}, "value_out_of_range", "limit"),
        ({"limit": 101}, "value_out_of_range", "limit"),
        ({"limit": "x"}, "invalid_format", "limit"),
        ({"starting_after": "we_unknown"}, "resource_not_found", "starting_after"),
    ],
)
def test_list_endpoints_rejects_bad_parameters(client, headers, params, code, param):
    assert_envelope(client.get("/v1/webhook_endpoints", params=params, headers=headers), 400, code, param)


def test_delete_endpoint_is_always_200_and_reports_whether_it_deleted(client, headers):
    endpoint_id = create(client, headers)["id"]
    first = client.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=headers)
    second = client.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=headers)
    unknown = client.delete("/v1/webhook_endpoints/we_nothing", headers=headers)
    for response, deleted in ((first, True), (second, False), (unknown, False)):
        assert response.status_code == 200
        conforms("/components/schemas/WebhookEndpointDeleted", response.json())
        assert response.json()["deleted"] is deleted
    assert first.json() == {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}
    assert_envelope(client.get(f"/v1/webhook_endpoints/{endpoint_id}", headers=headers), 404, "resource_not_found")


def test_delete_endpoint_of_another_team_deletes_nothing(client, headers):
    endpoint_id = create(client, headers)["id"]
    response = client.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers={"X-Api-Key": new_api_key()})
    assert response.json()["deleted"] is False
    assert client.get(f"/v1/webhook_endpoints/{endpoint_id}", headers=headers).status_code == 200


# --- rotate and test fire ----------------------------------------------------------------------------------


def test_rotate_secret_returns_a_new_secret_and_the_old_one_stops_signing(client, headers, sender):
    endpoint = create(client, headers)
    response = client.post(f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret", headers=headers)
    assert response.status_code == 200
    conforms("/components/schemas/WebhookEndpoint", response.json())
    rotated = response.json()
    assert SECRET.match(rotated["secret"])
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["secret_preview"] != endpoint["secret_preview"]
    fired = client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/test", json={"event_type": "image.completed"}, headers=headers
    )
    assert fired.status_code == 200
    flush(client, headers)
    [request] = sent_to(sender, endpoint["id"])
    assert verify(request.headers["Aurous-Webhook-Signature"], request.body, rotated["secret"])
    assert not verify(request.headers["Aurous-Webhook-Signature"], request.body, endpoint["secret"])


def test_rotate_secret_of_unknown_endpoint_is_not_found(client, headers):
    response = client.post("/v1/webhook_endpoints/we_nope/rotate_secret", headers=headers)
    assert_envelope(response, 404, "resource_not_found")


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_test_fire_delivers_a_signed_synthetic_event_matching_the_spec(client, headers, sender, event_type):
    endpoint = create(client, headers, events=list(EVENT_TYPES))
    response = client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/test", json={"event_type": event_type}, headers=headers
    )
    assert response.status_code == 200, response.text
    conforms("/components/schemas/WebhookTestFire", response.json())
    fire = response.json()
    assert fire["endpoint_id"] == endpoint["id"]
    assert fire["enqueued"] is True
    assert flush(client, headers) == 1
    [request] = sent_to(sender, endpoint["id"])
    envelope = orjson.loads(request.body)
    conforms_to_webhook(event_type, envelope)
    assert envelope["id"] == fire["event_id"] == request.headers["Aurous-Event-Id"]
    assert envelope["event"] == event_type
    assert envelope["synthetic"] is True
    assert verify(request.headers["Aurous-Webhook-Signature"], request.body, endpoint["secret"])


def test_test_fire_requires_a_subscribed_type(client, headers):
    endpoint = create(client, headers, events=["image.completed"])
    path = f"/v1/webhook_endpoints/{endpoint['id']}/test"
    assert_envelope(
        client.post(path, json={"event_type": "video.completed"}, headers=headers), 400, "invalid_format", "event_type"
    )
    assert_envelope(
        client.post(path, json={"event_type": "image.done"}, headers=headers), 400, "invalid_format", "event_type"
    )
    assert_envelope(client.post(path, json={}, headers=headers), 400, "missing_field", "event_type")


def test_test_fire_on_unknown_endpoint_is_not_found(client, headers):
    response = client.post(
        "/v1/webhook_endpoints/we_nope/test", json={"event_type": "image.completed"}, headers=headers
    )
    assert_envelope(response, 404, "resource_not_found")


def test_star_does_not_subscribe_to_character_events(client, headers):
    endpoint = create(client, headers)
    response = client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/test", json={"event_type": "character.completed"}, headers=headers
    )
    assert_envelope(response, 400, "invalid_format", "event_type")


# --- the control plane's delivery log ------------------------------------------------------------------------


def test_deliveries_log_lists_attempts_newest_first_and_filters_by_event(client, headers):
    endpoint = create(client, headers)
    path = f"/v1/webhook_endpoints/{endpoint['id']}/test"
    first = client.post(path, json={"event_type": "image.completed"}, headers=headers).json()["event_id"]
    second = client.post(path, json={"event_type": "video.failed"}, headers=headers).json()["event_id"]
    assert flush(client, headers) == 2
    rows = client.get("/_mock/webhooks/deliveries", headers=headers).json()
    assert rows["object"] == "list"
    assert [row["event_id"] for row in rows["data"]] == [second, first]
    row = rows["data"][0]
    assert row["endpoint_id"] == endpoint["id"]
    assert row["url"] == HOOK
    assert row["attempt"] == 1
    assert row["outcome"] == "succeeded"
    assert row["response_status"] == 200
    assert row["error"] is None
    assert row["next_retry_at"] is None
    assert row["request_headers"]["Aurous-Event-Id"] == second
    assert orjson.loads(row["request_body"])["id"] == second
    only = client.get("/_mock/webhooks/deliveries", params={"event_id": first}, headers=headers).json()["data"]
    assert [r["event_id"] for r in only] == [first]


def test_deliveries_log_is_per_team(client, headers):
    endpoint = create(client, headers)
    client.post(f"/v1/webhook_endpoints/{endpoint['id']}/test", json={"event_type": "image.failed"}, headers=headers)
    flush(client, headers)
    assert client.get("/_mock/webhooks/deliveries", headers={"X-Api-Key": new_api_key()}).json()["data"] == []


def test_redeliver_unknown_event_is_not_found(client, headers):
    response = client.post("/_mock/webhooks/events/evt_nope/redeliver", headers=headers)
    assert_envelope(response, 404, "resource_not_found")

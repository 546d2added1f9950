"""``/v1/characters`` over HTTP: uploads (init, signed PUT, classify), create, the synthesis lifecycle on the clock,
credits, list/get/patch/delete/save, resynthesize/regenerate with idempotency, ref images, ``character.*`` events,
and ``character_id`` on image generations.

Reference §1.8, §1.9, §2.6, §5.2, §8.14. Success bodies are checked against their ``openapi.yaml`` schemas; time
moves with ``POST /_mock/clock/advance``; events go to a ``RecordingSender`` and leave on ``/_mock/webhooks/flush``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import orjson
import pytest
from PIL import Image
from starlette.testclient import TestClient

from mockserver import InMemoryStore, create_app
from mockserver.clock import VirtualClock
from mockserver.core._character_records import CharacterStatus, Synthesis
from mockserver.webhooks import RecordingSender
from tests.conftest import BASE_URL, START, make_settings, new_api_key
from tests.helpers import assert_envelope
from tests.mockserver.api.test_webhook_endpoints import conforms, conforms_to_webhook

SYNTH_SECONDS = 60
PINNED = {"character_synthesis_seconds": SYNTH_SECONDS, "webhook_background": False, "image_processing_seconds": 10}
CHARACTER = "/components/schemas/Character"
UNKNOWN = "char_01HXMQ7Z3K8Y2NABCDEFGHJKMR"
POSES = ["portrait", "front", "side", "back"]
EVENTS = ["character.completed", "character.failed", "character.cancelled"]


def image_bytes(
    colour: tuple[int, int, int] = (200, 10, 10), kind: str = "PNG", size: tuple[int, int] = (64, 80)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, kind)
    return buffer.getvalue()


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def build(sender: RecordingSender) -> Iterator[Callable[..., TestClient]]:
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            settings = make_settings(**{**PINNED, **overrides})
            app = create_app(settings, clock=VirtualClock(START), store=InMemoryStore(), sender=sender)
            return stack.enter_context(TestClient(app, base_url=BASE_URL))

        yield make


@pytest.fixture
def client(build: Callable[..., TestClient]) -> TestClient:
    return build()


@pytest.fixture
def headers() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def call(client: TestClient, method: str, path: str, headers: dict[str, str], status: int = 200, **kw: Any) -> Any:
    response = client.request(method, path, headers=headers, **kw)
    assert response.status_code == status, response.text
    return response.json()


def advance(client: TestClient, headers: dict[str, str], seconds: float) -> None:
    call(client, "POST", "/_mock/clock/advance", headers, json={"seconds": seconds})


def balance(client: TestClient, headers: dict[str, str]) -> tuple[float, float]:
    body = call(client, "GET", "/v1/balance", headers)
    return body["credits"], body["held_credits"]


def ticket(client: TestClient, headers: dict[str, str], content_type: str = "image/png", **body: Any) -> Any:
    extension = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[content_type]
    json = {"filename": "me." + extension, "extension": extension, "content_type": content_type, **body}
    return call(client, "POST", "/v1/characters/uploads/init", headers, json=json)


def uploaded(client: TestClient, headers: dict[str, str], data: bytes | None = None, classify: bool = False) -> str:
    made = ticket(client, headers)
    response = client.put(made["upload_url"], content=data or image_bytes(), headers=made["upload_headers"])
    assert response.status_code == 200, response.text
    if classify:
        call(client, "POST", "/v1/characters/uploads/classify", headers, json={"upload_id": made["upload_id"]})
    return str(made["upload_id"])


def from_uploads(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    json = {"name": "Aurora", "upload_ids": [uploaded(client, headers)], **body}
    created = call(client, "POST", "/v1/characters", headers, 201, json=json)
    conforms(CHARACTER, created)
    return created


def synthesized(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    json = {"name": "Aurora", "generate": True, "attributes": {"hair_color": "black", "age": 28}, **body}
    created = call(client, "POST", "/v1/characters", headers, 201, json=json)
    conforms(CHARACTER, created)
    return created


def get(client: TestClient, headers: dict[str, str], character_id: str) -> Any:
    body = call(client, "GET", f"/v1/characters/{character_id}", headers)
    conforms(CHARACTER, body)
    return body


def script(client: TestClient, **changes: Any) -> None:
    """The scenario hook: every next run of this app ends as ``changes`` say."""

    def apply(team: Any, character: Any, run: Synthesis) -> None:
        for name, value in changes.items():
            setattr(run, name, value)

    client.app.state.emulator.characters.on_synthesis.append(apply)  # type: ignore[attr-defined]


# --- uploads ----------------------------------------------------------------------------------------------


def test_init_upload_returns_a_signed_ticket(client, headers):
    response = client.post(
        "/v1/characters/uploads/init",
        json={"filename": "aurora.jpg", "extension": "jpg", "content_type": "image/jpeg"},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.json()
    conforms("/components/schemas/CharacterUploadTicket", body)
    assert body["upload_id"].startswith("upl_")
    assert body["upload_url"].startswith(f"{BASE_URL}/_storage/uploads/{body['upload_id']}?signature=")
    assert body["upload_headers"] == {"Content-Type": "image/jpeg"}
    assert body["expires_at"] == "2026-06-02T12:00:00Z"
    assert response.headers["X-RateLimit-Limit"] == "60"  # characters_post


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"extension": "png", "content_type": "image/jpeg"}, "parameter_invalid_combination", "content_type"),
        ({"extension": "gif", "content_type": "image/png"}, "invalid_format", "extension"),
        ({"extension": "png", "content_type": "image/gif"}, "invalid_format", "content_type"),
        ({"filename": "x" * 121, "extension": "png", "content_type": "image/png"}, "value_out_of_range", "filename"),
        ({"filename": "", "extension": "png", "content_type": "image/png"}, "value_out_of_range", "filename"),
        ({"extension": "png"}, "missing_field", "content_type"),
    ],
)
def test_init_upload_validation(client, headers, body, code, param):
    response = client.post("/v1/characters/uploads/init", json={"filename": "a", **body}, headers=headers)
    assert_envelope(response, 400, code, param)


def test_upload_put_needs_no_key_and_answers_json(client, headers):
    made = ticket(client, headers)
    data = image_bytes()
    response = client.put(made["upload_url"], content=data, headers={"Content-Type": "image/png"})
    assert response.status_code == 200
    assert response.json() == {"upload_id": made["upload_id"], "content_type": "image/png", "size_bytes": len(data)}
    assert response.headers["Aurous-Request-Id"].startswith("req_")


def test_upload_put_with_a_bad_or_expired_signature_is_refused(client, headers):
    made = ticket(client, headers)
    forged = made["upload_url"].split("signature=")[0] + "signature=1.deadbeef"
    assert_envelope(client.put(forged, content=image_bytes(), headers=made["upload_headers"]), 401, "invalid_api_key")
    advance(client, headers, 15 * 60)
    response = client.put(made["upload_url"], content=image_bytes(), headers=made["upload_headers"])
    assert_envelope(response, 401, "invalid_api_key")


@pytest.mark.parametrize(
    "sent",
    [{}, {"Content-Type": "application/octet-stream"}, {"Content-Type": "application/x-www-form-urlencoded"}],
    ids=["no-content-type", "octet-stream", "curl-data-binary"],
)
def test_upload_put_is_any_well_formed_put(client, headers, sent):
    """The upload-init page: "any well-formed PUT, no extra headers required"; the type comes from the bytes."""
    made = ticket(client, headers)
    data = image_bytes()
    response = client.put(made["upload_url"], content=data, headers=sent)
    assert response.status_code == 200, response.text
    assert response.json() == {"upload_id": made["upload_id"], "content_type": "image/png", "size_bytes": len(data)}
    call(client, "POST", "/v1/characters/uploads/classify", headers, json={"upload_id": made["upload_id"]})


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("image/png", b"not an image"),
        (None, b"GIF89a" + bytes(32)),
        ("image/png", image_bytes(kind="JPEG")),
        (None, image_bytes(kind="JPEG")),
        ("image/png", b""),
    ],
    ids=["garbage", "gif-no-header", "jpeg-bytes", "jpeg-bytes-no-header", "empty"],
)
def test_upload_put_checks_the_bytes(client, headers, content_type, data):
    made = ticket(client, headers)
    sent = {} if content_type is None else {"Content-Type": content_type}
    response = client.put(made["upload_url"], content=data, headers=sent)
    assert_envelope(response, 400, "invalid_format", "body")


def test_upload_put_to_an_unknown_ticket_is_not_found(client):
    response = client.put("/_storage/uploads/upl_01HXMQ7Z3K8Y2NABCDEFGHJKMR?signature=1.x", content=b"x")
    assert_envelope(response, 404, "resource_not_found")


def test_classify_is_deterministic(client, headers):
    data = image_bytes((12, 34, 56))
    first = call(
        client, "POST", "/v1/characters/uploads/classify", headers, json={"upload_id": uploaded(client, headers, data)}
    )
    second_id = uploaded(client, headers, data)
    second = call(client, "POST", "/v1/characters/uploads/classify", headers, json={"upload_id": second_id})
    conforms("/components/schemas/CharacterClassification", first)
    assert (first["pose"], first["confidence"]) == (second["pose"], second["confidence"])
    assert second["upload_id"] == second_id
    assert 0.5 <= first["confidence"] <= 0.99


def test_classify_refuses_unknown_empty_expired_and_consumed_tickets(client, headers):
    def classify(upload_id: str) -> Any:
        return client.post("/v1/characters/uploads/classify", json={"upload_id": upload_id}, headers=headers)

    assert_envelope(classify("upl_01HXMQ7Z3K8Y2NABCDEFGHJKMR"), 400, "upload_invalid", "upload_id")
    assert_envelope(classify(ticket(client, headers)["upload_id"]), 400, "upload_invalid", "upload_id")
    used = uploaded(client, headers)
    call(client, "POST", "/v1/characters", headers, 201, json={"name": "A", "upload_ids": [used]})
    assert_envelope(classify(used), 400, "upload_invalid", "upload_id")
    stale = uploaded(client, headers)
    advance(client, headers, 24 * 3600)
    assert_envelope(classify(stale), 400, "upload_invalid", "upload_id")


def test_classify_another_teams_ticket_is_not_found(client, headers):
    theirs = uploaded(client, {"X-Api-Key": new_api_key()})
    response = client.post("/v1/characters/uploads/classify", json={"upload_id": theirs}, headers=headers)
    assert_envelope(response, 404, "resource_not_found", "upload_id")


# --- create ------------------------------------------------------------------------------------------------


def test_create_from_uploads_is_ready_with_the_uploaded_images(client, headers):
    first, second = image_bytes((1, 2, 3)), image_bytes((4, 5, 6), kind="PNG", size=(70, 90))
    classified = uploaded(client, headers, first, classify=True)
    plain = uploaded(client, headers, second)
    pose = call(client, "POST", "/v1/characters/uploads/classify", headers, json={"upload_id": classified})["pose"]
    response = client.post(
        "/v1/characters",
        json={"name": "Aurora", "upload_ids": [classified, plain], "attributes": {"gender": "female", "mood": "calm"}},
        headers=headers,
    )
    assert response.status_code == 201
    assert response.headers["X-RateLimit-Limit"] == "60"  # characters_post
    body = response.json()
    conforms(CHARACTER, body)
    assert body["status"] == "ready"
    assert [ref["pose"] for ref in body["refs"]] == [pose, "other"]
    assert body["attributes"] == {"gender": "female", "mood": "calm"}
    assert (body["error_message"], body["client_reference_id"], body["aurous_version"]) == (None, None, "2026-05-15")
    assert body["created_at"] == body["updated_at"] == "2026-06-01T12:00:00Z"
    served = [client.get(ref["url"]) for ref in body["refs"]]  # no key: the signed URL suffices
    assert [(r.status_code, r.headers["content-type"], r.content) for r in served] == [
        (200, "image/png", first),
        (200, "image/png", second),
    ]
    assert balance(client, headers) == (1000, 0)


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "parameter_invalid_combination", "upload_ids"),
        ({"generate": False}, "parameter_invalid_combination", "upload_ids"),
        ({"generate": True, "upload_ids": ["upl_X"]}, "parameter_invalid_combination", "upload_ids"),
        ({"upload_ids": []}, "value_out_of_range", "upload_ids"),
        ({"upload_ids": ["upl_A"] * 7}, "value_out_of_range", "upload_ids"),
        ({"upload_ids": ["upl_01HXMQ7Z3K8Y2NABCDEFGHJKMR"]}, "upload_invalid", "upload_ids[0]"),
        ({"generate": True, "client_reference_id": "x" * 257}, "value_out_of_range", "client_reference_id"),
        ({"generate": True, "attributes": {"age": "old"}}, "invalid_format", "attributes.age"),
        ({"generate": True, "attributes": {"gender": None}}, "invalid_format", "attributes.gender"),
        ({"generate": True, "attributes": ["tall"]}, "invalid_format", "attributes"),
        ({"generate": "yes"}, "invalid_format", "generate"),
        ({"generate": True, "name": ""}, "value_out_of_range", "name"),
    ],
)
def test_create_validation(client, headers, body, code, param):
    response = client.post("/v1/characters", json={"name": "Aurora", **body}, headers=headers)
    assert_envelope(response, 400, code, param)


def test_create_without_a_name_is_missing_field(client, headers):
    assert_envelope(
        client.post("/v1/characters", json={"generate": True}, headers=headers), 400, "missing_field", "name"
    )


def test_create_with_another_teams_upload_is_not_found(client, headers):
    theirs = uploaded(client, {"X-Api-Key": new_api_key()})
    response = client.post("/v1/characters", json={"name": "A", "upload_ids": [theirs]}, headers=headers)
    assert_envelope(response, 404, "resource_not_found", "upload_ids[0]")


def test_create_refuses_a_repeated_or_reused_upload(client, headers):
    upload_id = uploaded(client, headers)
    response = client.post("/v1/characters", json={"name": "A", "upload_ids": [upload_id, upload_id]}, headers=headers)
    assert_envelope(response, 400, "upload_invalid", "upload_ids[1]")
    call(client, "POST", "/v1/characters", headers, 201, json={"name": "A", "upload_ids": [upload_id]})
    response = client.post("/v1/characters", json={"name": "B", "upload_ids": [upload_id]}, headers=headers)
    assert_envelope(response, 400, "upload_invalid", "upload_ids[0]")


def test_create_draws_its_bucket_from_the_body(build, headers):
    client = build(rate_limits={"characters_synthesize": {"capacity": 1, "per_minute": 1}})
    created = client.post("/v1/characters", json={"name": "A", "generate": True}, headers=headers)
    assert created.headers["X-RateLimit-Limit"] == "1"
    limited = client.post("/v1/characters", json={"name": "A", "generate": True}, headers=headers)
    error = assert_envelope(limited, 429, "too_many_requests")
    assert "characters_synthesize" in error["message"]
    assert limited.headers["Retry-After"] == "60"
    refused = client.post("/v1/characters", json={"name": "A"}, headers=headers)  # characters_post still has tokens
    assert_envelope(refused, 400, "parameter_invalid_combination", "upload_ids")
    assert refused.headers["X-RateLimit-Limit"] == "60"


# --- synthesis on the clock ----------------------------------------------------------------------------------


def test_synthesis_lifecycle_on_the_clock(client, headers):
    created = synthesized(client, headers, client_reference_id="crm-4711")
    assert (created["status"], created["refs"], created["client_reference_id"]) == ("synthesizing", [], "crm-4711")
    assert created["attributes"] == {"hair_color": "black", "age": 28}
    assert balance(client, headers) == (1000, 4)
    advance(client, headers, SYNTH_SECONDS - 1)
    assert get(client, headers, created["id"])["status"] == "synthesizing"
    advance(client, headers, 1)
    ready = get(client, headers, created["id"])
    assert ready["status"] == "ready"
    assert [ref["pose"] for ref in ready["refs"]] == POSES
    assert ready["updated_at"] == "2026-06-01T12:01:00Z"
    assert balance(client, headers) == (996, 0)
    first = client.get(ready["refs"][1]["url"])
    again = client.get(get(client, headers, created["id"])["refs"][1]["url"])
    assert (first.status_code, first.headers["content-type"]) == (200, "image/png")
    assert first.content == again.content
    assert Image.open(io.BytesIO(first.content)).size == (1024, 1024)


def test_synthesis_refs_expire_after_24_hours(client, headers):
    created = synthesized(client, headers)
    advance(client, headers, SYNTH_SECONDS)
    url = get(client, headers, created["id"])["refs"][0]["url"]
    advance(client, headers, 24 * 3600)
    assert_envelope(client.get(url), 404, "resource_not_found")
    assert client.get(get(client, headers, created["id"])["refs"][0]["url"]).status_code == 200  # re-signed


def test_synthesis_needs_4_credits(build):
    client = build(default_credits=3.5)
    headers = {"X-Api-Key": new_api_key()}
    response = client.post("/v1/characters", json={"name": "A", "generate": True}, headers=headers)
    error = assert_envelope(response, 402, "insufficient_credits")
    assert error["message"] == "Team available balance is 3.5 credits, this operation requires 4.0."
    assert call(client, "GET", "/v1/characters", headers)["data"] == []


def test_a_scripted_failure_is_failed_with_its_message_and_refunded(client, headers):
    script(client, outcome=CharacterStatus.FAILED, error_message="moderation_rejected")
    created = synthesized(client, headers)
    advance(client, headers, SYNTH_SECONDS)
    failed = get(client, headers, created["id"])
    assert (failed["status"], failed["error_message"], failed["refs"]) == ("failed", "moderation_rejected", [])
    assert balance(client, headers) == (1000, 0)


# --- list and get --------------------------------------------------------------------------------------------


def test_list_is_newest_first_with_a_cursor_and_a_status_filter(client, headers):
    oldest = from_uploads(client, headers)
    middle = synthesized(client, headers)
    newest = from_uploads(client, headers)
    gone = from_uploads(client, headers)
    call(client, "DELETE", f"/v1/characters/{gone['id']}", headers)
    page = call(client, "GET", "/v1/characters?limit=2", headers)
    conforms("/components/schemas/CharacterList", page)
    assert [c["id"] for c in page["data"]] == [newest["id"], middle["id"]]
    assert (page["has_more"], page["next_cursor"]) == (True, middle["id"])
    rest = call(client, "GET", f"/v1/characters?limit=2&starting_after={middle['id']}", headers)
    assert ([c["id"] for c in rest["data"]], rest["has_more"], rest["next_cursor"]) == ([oldest["id"]], False, None)
    ready = call(client, "GET", "/v1/characters?status=ready", headers)
    assert [c["id"] for c in ready["data"]] == [newest["id"], oldest["id"]]
    assert [c["id"] for c in call(client, "GET", "/v1/characters?status=synthesizing", headers)["data"]] == [
        middle["id"]
    ]
    assert call(client, "GET", "/v1/characters?status=deleted", headers)["data"] == []
    assert call(client, "GET", "/v1/characters", {"X-Api-Key": new_api_key()})["data"] == []


@pytest.mark.parametrize(
    ("query", "code", "param"),
    [
        ("status=cancelled", "invalid_format", "status"),
        ("status=READY", "invalid_format", "status"),
        ("limit=0", "value_out_of_range", "limit"),
        ("limit=101", "value_out_of_range", "limit"),
        ("limit=x", "invalid_format", "limit"),
        (f"starting_after={UNKNOWN}", "resource_not_found", "starting_after"),
    ],
)
def test_list_validation(client, headers, query, code, param):
    assert_envelope(client.get(f"/v1/characters?{query}", headers=headers), 400, code, param)


def test_list_and_get_draw_from_characters_get(client, headers):
    assert client.get("/v1/characters", headers=headers).headers["X-RateLimit-Limit"] == "240"


def test_get_unknown_other_teams_and_deleted_characters_are_not_found(client, headers):
    mine = from_uploads(client, headers)
    assert_envelope(client.get(f"/v1/characters/{UNKNOWN}", headers=headers), 404, "resource_not_found")
    response = client.get(f"/v1/characters/{mine['id']}", headers={"X-Api-Key": new_api_key()})
    assert_envelope(response, 404, "resource_not_found")
    call(client, "DELETE", f"/v1/characters/{mine['id']}", headers)
    assert_envelope(client.get(f"/v1/characters/{mine['id']}", headers=headers), 404, "resource_not_found")


# --- patch ---------------------------------------------------------------------------------------------------


def test_patch_renames_and_replaces_attributes_wholesale(client, headers):
    created = from_uploads(client, headers, attributes={"gender": "female", "hair_color": "black"})
    advance(client, headers, 5)
    path = f"/v1/characters/{created['id']}"
    renamed = call(client, "PATCH", path, headers, json={"name": "Nova"})
    conforms(CHARACTER, renamed)
    assert (renamed["name"], renamed["attributes"]) == ("Nova", {"gender": "female", "hair_color": "black"})
    assert renamed["updated_at"] == "2026-06-01T12:00:05Z"
    replaced = call(client, "PATCH", path, headers, json={"attributes": {"eye_color": "brown"}})
    assert (replaced["name"], replaced["attributes"]) == ("Nova", {"eye_color": "brown"})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "status": "ready", "refs": []}, "status"),
        ({"refs": [], "id": "char_X"}, "refs"),
        ({"aurous_version": "2026-05-15"}, "aurous_version"),
        ({"team_id": "team_X", "name": "x"}, "team_id"),
    ],
)
def test_patch_of_any_other_key_names_the_first_one(client, headers, body, param):
    created = from_uploads(client, headers)
    response = client.patch(f"/v1/characters/{created['id']}", json=body, headers=headers)
    assert_envelope(response, 400, "invalid_request_error", param)
    assert get(client, headers, created["id"])["name"] == "Aurora"


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"name": ""}, "value_out_of_range", "name"),
        ({"name": 5}, "invalid_format", "name"),
        ({"attributes": {"age": 1.5}}, "invalid_format", "attributes.age"),
        ({"attributes": None}, "invalid_format", "attributes"),
    ],
)
def test_patch_validation(client, headers, body, code, param):
    created = from_uploads(client, headers)
    assert_envelope(client.patch(f"/v1/characters/{created['id']}", json=body, headers=headers), 400, code, param)


def test_patch_of_a_deleted_or_unknown_character_names_character_id(client, headers):
    created = from_uploads(client, headers)
    call(client, "DELETE", f"/v1/characters/{created['id']}", headers)
    for character_id in (created["id"], UNKNOWN):
        response = client.patch(f"/v1/characters/{character_id}", json={"name": "x"}, headers=headers)
        assert_envelope(response, 404, "resource_not_found", "character_id")


# --- delete and save -----------------------------------------------------------------------------------------


def test_delete_soft_deletes(client, headers):
    created = from_uploads(client, headers)
    response = client.delete(f"/v1/characters/{created['id']}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    conforms("/components/schemas/CharacterDeleted", body)
    assert body == {"id": created["id"], "object": "character", "deleted": True}
    assert_envelope(client.delete(f"/v1/characters/{created['id']}", headers=headers), 404, "resource_not_found")
    assert_envelope(client.get(created["refs"][0]["url"]), 404, "resource_not_found")


def test_delete_during_synthesis_releases_the_hold(client, headers):
    created = synthesized(client, headers)
    advance(client, headers, 10)
    call(client, "DELETE", f"/v1/characters/{created['id']}", headers)
    assert balance(client, headers) == (1000, 0)
    advance(client, headers, SYNTH_SECONDS)
    assert balance(client, headers) == (1000, 0)


def test_delete_of_a_reviewing_character_is_a_hard_delete(client, headers):
    script(client, outcome=CharacterStatus.REVIEWING)
    created = synthesized(client, headers)
    advance(client, headers, SYNTH_SECONDS)
    assert get(client, headers, created["id"])["status"] == "reviewing"
    call(client, "DELETE", f"/v1/characters/{created['id']}", headers)
    assert client.app.state.emulator.store.get("character", created["id"]) is None


def test_save_approves_a_reviewing_character_and_is_idempotent_on_ready(client, headers):
    script(client, outcome=CharacterStatus.REVIEWING)
    created = synthesized(client, headers)
    advance(client, headers, SYNTH_SECONDS)
    saved = call(client, "POST", f"/v1/characters/{created['id']}/save", headers)
    conforms(CHARACTER, saved)
    assert saved["status"] == "ready"
    assert call(client, "POST", f"/v1/characters/{created['id']}/save", headers) == saved


def test_save_refuses_synthesizing_failed_and_unknown(client, headers):
    running = synthesized(client, headers)
    assert_envelope(client.post(f"/v1/characters/{running['id']}/save", headers=headers), 400, "invalid_request_error")
    script(client, outcome=CharacterStatus.FAILED)
    failing = synthesized(client, headers)
    advance(client, headers, SYNTH_SECONDS)
    assert_envelope(client.post(f"/v1/characters/{failing['id']}/save", headers=headers), 400, "invalid_request_error")
    assert_envelope(client.post(f"/v1/characters/{UNKNOWN}/save", headers=headers), 404, "resource_not_found")


# --- resynthesize and regenerate -----------------------------------------------------------------------------


def test_resynthesize_reruns_every_pose_for_4_credits(client, headers):
    created = from_uploads(client, headers)
    response = client.post(f"/v1/characters/{created['id']}/resynthesize", json={"force_all": True}, headers=headers)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "12"  # characters_synthesize
    body = response.json()
    conforms(CHARACTER, body)
    assert body["status"] == "synthesizing"
    assert [ref["pose"] for ref in body["refs"]] == ["other"]
    assert balance(client, headers) == (1000, 4)
    again = client.post(f"/v1/characters/{created['id']}/resynthesize", headers=headers)
    assert_envelope(again, 400, "invalid_request_error")
    advance(client, headers, SYNTH_SECONDS)
    assert [ref["pose"] for ref in get(client, headers, created["id"])["refs"]] == POSES
    assert balance(client, headers) == (996, 0)


def test_resynthesize_replays_with_the_same_key_and_charges_once(client, headers):
    created = from_uploads(client, headers)
    path = f"/v1/characters/{created['id']}/resynthesize"
    keyed = {**headers, "Idempotency-Key": "resynth-1"}
    first = client.post(path, json={"force_all": False}, headers=keyed)
    # While the synthesis runs, a retry is 409 without Retry-After (the idempotency page); once it is done, the replay.
    early = client.post(path, json={"force_all": False}, headers=keyed)
    assert_envelope(early, 409, "idempotency_key_in_use")
    assert "Retry-After" not in early.headers
    advance(client, headers, SYNTH_SECONDS)
    replay = client.post(path, json={"force_all": False}, headers=keyed)
    assert (first.status_code, replay.status_code) == (200, 200)
    assert "Aurous-Idempotent-Replayed" not in first.headers
    assert replay.headers["Aurous-Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert balance(client, headers) == (996, 0)  # charged once
    assert_envelope(client.post(path, json={"force_all": True}, headers=keyed), 409, "idempotency_key_in_use")


def test_resynthesize_needs_credits_and_a_known_character(build):
    client = build(default_credits=3)
    headers = {"X-Api-Key": new_api_key()}
    created = from_uploads(client, headers)
    response = client.post(f"/v1/characters/{created['id']}/resynthesize", headers=headers)
    assert_envelope(response, 402, "insufficient_credits")
    assert get(client, headers, created["id"])["status"] == "ready"
    assert_envelope(client.post(f"/v1/characters/{UNKNOWN}/resynthesize", headers=headers), 404, "resource_not_found")
    response = client.post(f"/v1/characters/{created['id']}/resynthesize", json={"force_all": 1}, headers=headers)
    assert_envelope(response, 400, "invalid_format", "force_all")


def test_regenerate_one_pose_for_1_credit(client, headers):
    created = synthesized(client, headers)
    advance(client, headers, SYNTH_SECONDS)

    def pictures() -> list[bytes]:
        return [client.get(ref["url"]).content for ref in get(client, headers, created["id"])["refs"]]

    before = pictures()
    path = f"/v1/characters/{created['id']}/refs/regenerate"
    body = call(client, "POST", path, headers, json={"pose": "side", "prompt_override": "looking left"})
    conforms(CHARACTER, body)
    assert body["status"] == "synthesizing"
    assert balance(client, headers) == (996, 1)
    advance(client, headers, SYNTH_SECONDS)
    after = get(client, headers, created["id"])
    assert (after["status"], [ref["pose"] for ref in after["refs"]]) == ("ready", POSES)
    assert balance(client, headers) == (995, 0)
    changed = [old != new for old, new in zip(before, pictures(), strict=True)]
    assert changed == [False, False, True, False]  # only the side pose was drawn again


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"pose": "left"}, "invalid_request_error", "pose"),
        ({"pose": 5}, "invalid_request_error", "pose"),
        ({}, "missing_field", "pose"),
        ({"pose": "front", "prompt_override": 5}, "invalid_format", "prompt_override"),
    ],
)
def test_regenerate_validation(client, headers, body, code, param):
    created = from_uploads(client, headers)
    response = client.post(f"/v1/characters/{created['id']}/refs/regenerate", json=body, headers=headers)
    assert_envelope(response, 400, code, param)


def test_regenerate_is_refused_while_synthesizing_and_without_credits(build):
    client = build(default_credits=4.5)
    headers = {"X-Api-Key": new_api_key()}
    created = synthesized(client, headers)
    path = f"/v1/characters/{created['id']}/refs/regenerate"
    assert_envelope(client.post(path, json={"pose": "front"}, headers=headers), 400, "invalid_request_error")
    advance(client, headers, SYNTH_SECONDS)
    assert_envelope(client.post(path, json={"pose": "front"}, headers=headers), 402, "insufficient_credits")


def test_regenerate_replays_with_the_same_key(client, headers):
    created = from_uploads(client, headers)
    path = f"/v1/characters/{created['id']}/refs/regenerate"
    keyed = {**headers, "Aurous-Idempotent-Key": "regen-1"}
    first = client.post(path, json={"pose": "front"}, headers=keyed)
    assert_envelope(client.post(path, json={"pose": "front"}, headers=keyed), 409, "idempotency_key_in_use")
    advance(client, headers, SYNTH_SECONDS)
    replay = client.post(path, json={"pose": "front"}, headers=keyed)
    assert replay.headers["Aurous-Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert balance(client, headers) == (999, 0)
    assert_envelope(client.post(path, json={"pose": "back"}, headers=keyed), 409, "idempotency_key_in_use")


# --- scopes --------------------------------------------------------------------------------------------------


def test_a_read_key_lists_but_cannot_create(build):
    client = build(keys=[{"key": "al_live_characters_read", "scope": "read"}])
    headers = {"X-Api-Key": "al_live_characters_read"}
    assert call(client, "GET", "/v1/characters", headers)["data"] == []
    response = client.post("/v1/characters", json={"name": "A", "generate": True}, headers=headers)
    assert_envelope(response, 403, "missing_scope")


# --- use in image generations --------------------------------------------------------------------------------


def test_generation_with_a_ready_character_is_image_to_image_from_its_refs(client, headers):
    created = from_uploads(client, headers)
    gen = call(
        client, "POST", "/v1/images", headers, 201, json={"prompt": "at the beach", "character_id": created["id"]}
    )
    conforms("/components/schemas/Generation", gen)
    assert (gen["character_id"], gen["inference_type"]) == (created["id"], "i2i")
    refs = get(client, headers, created["id"])["refs"]
    assert [url.split("?")[0] for url in gen["reference_image_urls"]] == [ref["url"].split("?")[0] for ref in refs]
    assert client.get(gen["reference_image_urls"][0]).status_code == 200
    estimate = call(client, "POST", "/v1/images/estimate", headers, json={"prompt": "x", "character_id": created["id"]})
    assert estimate["estimated_cost"]["amount"] == 1


def test_generation_with_a_character_that_is_not_ready_is_refused(client, headers):
    running = synthesized(client, headers)
    for path in ("/v1/images", "/v1/images/estimate"):
        response = client.post(path, json={"prompt": "x", "character_id": running["id"]}, headers=headers)
        assert_envelope(response, 400, "character_not_ready", "character_id")
    ready = from_uploads(client, headers)
    call(client, "DELETE", f"/v1/characters/{ready['id']}", headers)
    response = client.post("/v1/images", json={"prompt": "x", "character_id": ready["id"]}, headers=headers)
    assert_envelope(response, 400, "character_not_ready", "character_id")


def test_generation_with_another_teams_or_an_unknown_character_is_not_found(client, headers):
    theirs = from_uploads(client, {"X-Api-Key": new_api_key()})
    for character_id in (theirs["id"], UNKNOWN):
        response = client.post("/v1/images", json={"prompt": "x", "character_id": character_id}, headers=headers)
        assert_envelope(response, 404, "resource_not_found", "character_id")


def test_generation_with_a_character_and_references_is_mutually_exclusive(client, headers):
    created = from_uploads(client, headers)
    body = {"prompt": "x", "character_id": created["id"], "reference_image_urls": ["https://example.com/a.png"]}
    assert_envelope(
        client.post("/v1/images", json=body, headers=headers), 400, "mutually_exclusive_input", "character_id"
    )


# --- character.* events --------------------------------------------------------------------------------------


def subscribe(client: TestClient, headers: dict[str, str]) -> None:
    body = {"url": "https://example.com/hooks", "events": EVENTS}
    call(client, "POST", "/v1/webhook_endpoints", headers, 201, json=body)


def delivered(client: TestClient, headers: dict[str, str], sender: RecordingSender) -> list[dict[str, Any]]:
    call(client, "POST", "/_mock/webhooks/flush", headers)
    bodies = [orjson.loads(request.body) for request in sender.requests]
    for body in bodies:
        conforms_to_webhook(body["event"], body)
    return bodies


def test_synthesis_emits_character_completed_with_the_character(client, headers, sender):
    subscribe(client, headers)
    created = synthesized(client, headers)
    assert delivered(client, headers, sender) == []
    advance(client, headers, SYNTH_SECONDS)
    [event] = delivered(client, headers, sender)
    assert event["event"] == "character.completed"
    assert event["data"]["id"] == created["id"]
    assert (event["data"]["status"], [r["pose"] for r in event["data"]["refs"]]) == ("ready", POSES)
    assert event["created_at"] == "2026-06-01T12:01:00Z"


def test_a_failed_synthesis_emits_character_failed(client, headers, sender):
    subscribe(client, headers)
    script(client, outcome=CharacterStatus.FAILED, error_message="provider_timeout")
    synthesized(client, headers)
    advance(client, headers, SYNTH_SECONDS)
    [event] = delivered(client, headers, sender)
    assert (event["event"], event["data"]["status"], event["data"]["error_message"]) == (
        "character.failed",
        "failed",
        "provider_timeout",
    )


def test_deleting_during_synthesis_emits_character_cancelled(client, headers, sender):
    subscribe(client, headers)
    created = synthesized(client, headers)
    call(client, "DELETE", f"/v1/characters/{created['id']}", headers)
    from_uploads(client, headers)  # nothing in flight: no event
    advance(client, headers, SYNTH_SECONDS)
    [event] = delivered(client, headers, sender)
    assert (event["event"], event["data"]["id"], event["data"]["status"]) == (
        "character.cancelled",
        created["id"],
        "deleted",
    )


def test_completion_is_delivered_without_a_request_of_the_team(client, headers, sender):
    """The dispatcher settles character runs itself (``Emulator.settle_due``) before claiming deliveries."""
    subscribe(client, headers)
    synthesized(client, headers)
    emulator = client.app.state.emulator
    team = emulator.accounts.authenticate(headers["X-Api-Key"])[0]
    team.time.advance(emulator.clock, SYNTH_SECONDS)
    client.portal.call(client.app.state.dispatcher.flush)
    assert [orjson.loads(r.body)["event"] for r in sender.requests] == ["character.completed"]

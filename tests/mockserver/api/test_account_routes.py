"""The account and catalogue reads: balance, team, pricing, LoRAs and video LoRAs (reference §2.4, §2.8)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from starlette.testclient import TestClient

from mockserver.settings import Settings
from tests.conftest import ClientFactory
from tests.helpers import assert_envelope

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
GOLDEN_HOUR = "lora_01HXMQ7Z3K8Y2ABCDEFGHJKM"
LEGACY_UUID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
LORA_REQUIRED = {"id": str, "name": str, "is_public": bool, "created_at": str}
LORA_OPTIONAL = {
    "slug": (str, type(None)),
    "description": str,
    "preview_image_url": str,
    "default_denoise_strength": (int, float),
    "default_guidance_scale": (int, float),
    "default_steps": (int, float),
    "has_template": bool,
}
VIDEO_LORA_REQUIRED = {
    "id": str,
    "name": str,
    "is_public": bool,
    "default_resolution": str,
    "default_ratio": str,
    "default_duration": int,
    "created_at": str,
}
VIDEO_LORA_OPTIONAL = {"slug": (str, type(None)), "description": str, "preview_video_url": str}


def assert_shape(row: dict[str, object], required: dict[str, object], optional: dict[str, object]) -> None:
    assert set(required) <= set(row), row
    assert set(row) <= set(required) | set(optional), set(row) - set(required) - set(optional)
    for name, kind in {**required, **optional}.items():
        if name in row:
            assert isinstance(row[name], kind), (name, row[name])  # type: ignore[arg-type]
    assert re.match(r"^lora_[0-9A-Z]+$", str(row["id"]))
    assert RFC3339.match(str(row["created_at"]))


def test_balance_exact_shape(client: TestClient, headers: dict[str, str], settings: Settings) -> None:
    response = client.get("/v1/balance", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "credits": settings.default_credits,
        "held_credits": 0,
        "available_credits": settings.default_credits,
        "currency": "credit",
        "billing_mode": "metered",
    }


def test_balance_available_is_credits_minus_held(client: TestClient, headers: dict[str, str]) -> None:
    # A generation holds credits; the trio stays consistent whatever it costs.
    created = client.post("/v1/images", headers=headers, json={"prompt": "a lighthouse at dusk"})
    assert created.status_code == 201, created.text
    body = client.get("/v1/balance", headers=headers).json()
    assert body["held_credits"] > 0
    assert body["available_credits"] == pytest.approx(body["credits"] - body["held_credits"])


def test_balance_declared_credits(client_for: ClientFactory) -> None:
    client = client_for(keys=[{"key": "al_live_rich", "credits": 1023.49}])
    body = client.get("/v1/balance", headers={"X-Api-Key": "al_live_rich"}).json()
    assert body["credits"] == 1023.49
    assert body["available_credits"] == 1023.49


def test_team_shape(client: TestClient, headers: dict[str, str], settings: Settings) -> None:
    body = client.get("/v1/team", headers=headers).json()
    assert set(body) == {"id", "name", "credits", "created_at", "billing_email", "billing_mode"}
    assert re.match(r"^team_[0-9A-HJKMNP-TV-Z]{26}$", body["id"])
    assert isinstance(body["name"], str)
    assert body["name"]
    assert body["credits"] == settings.default_credits
    assert RFC3339.match(body["created_at"])
    assert body["created_at"] == "2026-06-01T12:00:00Z"  # provisioned on first use, on the clock
    assert body["billing_email"] is None
    assert body["billing_mode"] == "metered"


def test_team_created_at_parses(client: TestClient, headers: dict[str, str]) -> None:
    created = client.get("/v1/team", headers=headers).json()["created_at"]
    assert datetime.fromisoformat(created).utcoffset().total_seconds() == 0


def test_pricing_is_the_2026_05_15_rate_card(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/pricing", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "pricing"
    assert body["version"] == "2026-05-15"
    assert body["currency"] == "credit"
    assert body["description"].startswith("Baseline rate card per Aurous-Version.")
    assert body["image"] == {"base": 1, "enhance_prompt_multiplier": 2, "reference_image_per_image": 0}
    assert body["video"] == {"base_per_second": 0.5, "resolution_factor": {"480p": 1, "720p": 1.5, "1080p": 2.5}}
    assert set(body) == {"object", "version", "currency", "description", "image", "video"}


@pytest.mark.parametrize("sent", [None, "2026-05-15", "2025-01-01"])
def test_pricing_version_equals_response_header(client: TestClient, headers: dict[str, str], sent: str | None) -> None:
    response = client.get("/v1/pricing", headers={**headers, **({"Aurous-Version": sent} if sent else {})})
    assert response.json()["version"] == response.headers["Aurous-Version"]


def test_pricing_unknown_version(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/pricing", headers={**headers, "Aurous-Version": "2027-01-01"})
    assert_envelope(response, 400, "unknown_version", param="Aurous-Version")


def test_loras_is_array_of_documented_shape(client: TestClient, headers: dict[str, str]) -> None:
    body = client.get("/v1/loras", headers=headers).json()
    assert isinstance(body, list)
    assert body
    for row in body:
        assert_shape(row, LORA_REQUIRED, LORA_OPTIONAL)
    assert len({row["id"] for row in body}) == len(body)


def test_loras_contains_reference_example(client: TestClient, headers: dict[str, str]) -> None:
    rows = {row["id"]: row for row in client.get("/v1/loras", headers=headers).json()}
    golden = rows[GOLDEN_HOUR]
    assert golden["name"] == "Golden Hour Photography"
    assert golden["slug"] == "golden-hour-photography"
    assert golden["is_public"] is True
    assert golden["created_at"] == "2026-03-01T00:00:00Z"
    assert golden["preview_image_url"] == "https://cdn.aurous-labs.com/previews/golden-hour.jpg"
    assert golden["default_denoise_strength"] == 0.8
    assert golden["default_guidance_scale"] == 7.5
    assert golden["default_steps"] == 30
    assert golden["has_template"] is True


@pytest.mark.parametrize("ref", [GOLDEN_HOUR, "golden-hour-photography", LEGACY_UUID])
def test_lora_by_id_slug_or_legacy_uuid(client: TestClient, headers: dict[str, str], ref: str) -> None:
    response = client.get(f"/v1/loras/{ref}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == GOLDEN_HOUR
    assert_shape(body, LORA_REQUIRED, LORA_OPTIONAL)
    listed = {row["id"]: row for row in client.get("/v1/loras", headers=headers).json()}
    assert body == listed[GOLDEN_HOUR]


@pytest.mark.parametrize("ref", ["lora_01HXMQ7Z3K8Y2ABCDEFGHJKX", "no-such-style", "seedance-1-pro"])
def test_lora_unknown_is_404(client: TestClient, headers: dict[str, str], ref: str) -> None:
    assert_envelope(client.get(f"/v1/loras/{ref}", headers=headers), 404, "resource_not_found")


def test_video_loras_list(client: TestClient, headers: dict[str, str]) -> None:
    body = client.get("/v1/video_loras", headers=headers).json()
    assert body["object"] == "list"
    assert body["has_more"] is False
    assert body["next_cursor"] is None
    assert body["data"]
    for row in body["data"]:
        assert_shape(row, VIDEO_LORA_REQUIRED, VIDEO_LORA_OPTIONAL)
    assert "seedance-1-pro" in {row["slug"] for row in body["data"]}


def test_video_lora_by_slug_matches_reference(client: TestClient, headers: dict[str, str]) -> None:
    body = client.get("/v1/video_loras/seedance-1-pro", headers=headers).json()
    assert body["name"] == "Seedance 1.0 Pro"
    assert body["default_resolution"] == "1080p"
    assert body["default_ratio"] == "16:9"
    assert body["default_duration"] == 5
    assert body["slug"] == "seedance-1-pro"
    assert_shape(body, VIDEO_LORA_REQUIRED, VIDEO_LORA_OPTIONAL)


def test_video_lora_by_id_equals_by_slug(client: TestClient, headers: dict[str, str]) -> None:
    by_slug = client.get("/v1/video_loras/seedance-1-pro", headers=headers).json()
    by_id = client.get(f"/v1/video_loras/{by_slug['id']}", headers=headers)
    assert by_id.status_code == 200
    assert by_id.json() == by_slug


@pytest.mark.parametrize("ref", ["seedance-9", GOLDEN_HOUR, "golden-hour-photography"])
def test_video_lora_unknown_is_404(client: TestClient, headers: dict[str, str], ref: str) -> None:
    assert_envelope(client.get(f"/v1/video_loras/{ref}", headers=headers), 404, "resource_not_found")


@pytest.mark.parametrize("path", ["/v1/balance", "/v1/team", "/v1/pricing", "/v1/loras", "/v1/video_loras"])
def test_account_reads_need_a_key(client: TestClient, path: str) -> None:
    assert_envelope(client.get(path), 401, "missing_api_key")


@pytest.mark.parametrize("path", ["/v1/balance", "/v1/team", "/v1/pricing", "/v1/loras"])
def test_account_reads_carry_rate_limit_headers(client: TestClient, headers: dict[str, str], path: str) -> None:
    response = client.get(path, headers=headers)
    assert response.headers["X-RateLimit-Limit"] == "1200"
    assert int(response.headers["X-RateLimit-Remaining"]) < 1200

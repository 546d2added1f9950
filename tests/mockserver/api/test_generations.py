"""Image and video generations over HTTP: create, validate, estimate, lifecycle, cancel, credits, list, idempotency.

Reference §2.1, §2.2, §3, §4, §6.1 and §1.9/§1.10. Each test uses a fresh key (its own team, 1000 credits)
and moves that team's virtual clock with ``POST /_mock/clock/advance``; timings are pinned so that every
status change happens at a known instant.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from PIL import Image
from starlette.testclient import TestClient
from ulid import ULID

from mockserver import InMemoryStore, Store, create_app
from mockserver.clock import VirtualClock
from tests.conftest import BASE_URL, START, ClientFactory, make_settings, new_api_key
from tests.helpers import assert_envelope

# Creation, settlement, the ledger and idempotency: the same tests against memory, sqlite and redis.
pytestmark = pytest.mark.every_store

IMAGE_PENDING, IMAGE_PROCESSING = 2, 10
VIDEO_PENDING, VIDEO_PROCESSING = 3, 30
PINNED = {
    "rate_limits_enabled": False,
    "image_pending_seconds": IMAGE_PENDING,
    "image_processing_seconds": IMAGE_PROCESSING,
    "video_pending_seconds": VIDEO_PENDING,
    "video_processing_seconds": VIDEO_PROCESSING,
}
IMAGE_DONE = IMAGE_PENDING + IMAGE_PROCESSING
VIDEO_DONE = VIDEO_PENDING + VIDEO_PROCESSING

ULID_TAIL = r"[0-9A-HJKMNP-TV-Z]{26}"
IMG_ID = re.compile(rf"^img_{ULID_TAIL}$")
VID_ID = re.compile(rf"^vid_{ULID_TAIL}$")
SEEDANCE_PRO = "lora_01JD4S7E3D1A2B3C4D5E6F7G8H"
SEEDANCE_PRO_UUID = "6c1f0b9e-2a3d-4c5e-8f70-91a2b3c4d5e6"
GOLDEN_HOUR = {"id": "lora_01HXMQ7Z3K8Y2ABCDEFGHJKM", "name": "Golden Hour Photography"}
VIDEO = {"video_lora_id": "seedance-1-pro"}
UNKNOWN_FILE = "file_01HXMQ7Z3K8Y2NABCDEFGHJKMN"

# Every field of the GenerationResponse (reference §3); `bundle_name` is dropped in the newer examples.
GENERATION_FIELDS = {
    "object", "id", "status", "prompt", "created_at", "media_type", "negative_prompt", "output_urls",
    "output_video_url", "reference_image_urls", "error_message", "duration_ms", "cost", "width", "height",
    "image_count", "size_preset", "inference_type", "cfg_rescale", "denoise_strength", "seed", "video_duration",
    "video_resolution", "video_ratio", "video_camera_fixed", "character_id", "loras", "aurous_version",
    "creation_request_id", "completed_at",
}  # fmt: skip

SSRF_URLS = [
    "http://example.com/a.png",
    "https://127.0.0.1/x",
    "https://169.254.169.254/",
    "https://[::1]/",
    "https://0x7f000001/",
]


@pytest.fixture(scope="module")
def client(module_store: Store) -> Iterator[TestClient]:
    """One app for the module (rate limits off, every status change at a pinned instant), on each store backend.

    Tests stay isolated because each uses a fresh key: its own team, balance, clock and idempotency keys.
    """
    app = create_app(make_settings(**PINNED), clock=VirtualClock(START), store=module_store)
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def other() -> dict[str, str]:
    """The key of a second team."""
    return {"X-Api-Key": new_api_key()}


# --- helpers ---------------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def create(client: TestClient, headers: dict[str, str], path: str = "/v1/images", **body: Any) -> dict[str, Any]:
    response = client.post(path, json=body or {"prompt": "a lighthouse at dusk"}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_video(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    return create(client, headers, "/v1/videos", **{**VIDEO, **body})


def advance(client: TestClient, headers: dict[str, str], seconds: float) -> None:
    response = client.post("/_mock/clock/advance", json={"seconds": seconds}, headers=headers)
    assert response.status_code == 200, response.text


def get(client: TestClient, headers: dict[str, str], gen_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/images/{gen_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def balance(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/v1/balance", headers=headers)
    assert response.status_code == 200
    return dict(response.json())


def listing(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/v1/images", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def stored_state(client: TestClient, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the team has stored: its generations and its balance."""
    return listing(client, headers, limit=100), balance(client, headers)


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def upload(client: TestClient, headers: dict[str, str], purpose: str = "reference") -> str:
    files = {"file": ("ref.png", png_bytes(), "image/png")}
    response = client.post("/v1/files", files=files, data={"purpose": purpose}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- create: images ----------------------------------------------------------------------------------


def test_create_image_returns_201_pending_inference(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/images", json={"prompt": "a red fox"}, headers=headers)
    assert response.status_code == 201
    body = response.json()
    assert IMG_ID.match(body["id"]), body["id"]
    assert body["object"] == "inference"
    assert body["status"] == "pending"
    assert body["media_type"] == "image"
    assert body["inference_type"] == "t2i"
    assert body["prompt"] == "a red fox"


def test_create_image_response_has_every_generation_field(client: TestClient, headers: dict[str, str]) -> None:
    body = create(client, headers)
    assert GENERATION_FIELDS <= set(body), GENERATION_FIELDS - set(body)
    for field in ("output_urls", "output_video_url", "completed_at", "duration_ms", "error_message"):
        assert body[field] is None, field


def test_create_image_id_ulid_encodes_creation_instant(client: TestClient, headers: dict[str, str]) -> None:
    body = create(client, headers)
    assert ULID.from_str(body["id"].removeprefix("img_")).datetime == parse_time(body["created_at"])


def test_create_image_creation_request_id_is_the_response_request_id(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/v1/images", json={"prompt": "x"}, headers=headers)
    assert response.json()["creation_request_id"] == response.headers["Aurous-Request-Id"]
    # ...and it stays the creating request's id on later reads.
    later = client.get(f"/v1/images/{response.json()['id']}", headers=headers)
    assert later.json()["creation_request_id"] == response.headers["Aurous-Request-Id"]
    assert later.headers["Aurous-Request-Id"] != response.headers["Aurous-Request-Id"]


@pytest.mark.parametrize("pinned", [None, "2026-05-15", "2026-01-01"])
def test_create_image_records_applied_aurous_version(
    client: TestClient, headers: dict[str, str], pinned: str | None
) -> None:
    extra = {"Aurous-Version": pinned} if pinned else {}
    response = client.post("/v1/images", json={"prompt": "x"}, headers={**headers, **extra})
    assert response.status_code == 201
    assert response.json()["aurous_version"] == response.headers["Aurous-Version"] == "2026-05-15"


@pytest.mark.parametrize(
    ("size", "width", "height"),
    [("2k_1_1", 2048, 2048), ("square", 1024, 1024), ("hd_square", 2048, 2048)],
)
def test_create_image_size_preset_dimensions(
    client: TestClient, headers: dict[str, str], size: str, width: int, height: int
) -> None:
    body = create(client, headers, prompt="x", size=size)
    assert (body["width"], body["height"], body["size_preset"]) == (width, height, size)


@pytest.mark.parametrize(
    ("width", "height", "snapped"),
    [(1050, 1100, (1056, 1088)), (4090, 1030, (4096, 1024)), (1024, 4096, (1024, 4096)), (2010, 1500, (2016, 1504))],
)
def test_create_image_custom_dimensions_snap_to_multiple_of_32(
    client: TestClient, headers: dict[str, str], width: int, height: int, snapped: tuple[int, int]
) -> None:
    body = create(client, headers, prompt="x", width=width, height=height)
    assert (body["width"], body["height"]) == snapped
    assert body["size_preset"] is None


def test_create_image_echoes_request_parameters(client: TestClient, headers: dict[str, str]) -> None:
    body = create(
        client, headers, prompt="p", negative_prompt="blurry", count=3, seed=42, cfg_rescale=0.7, denoise_strength=0.6
    )
    assert body["negative_prompt"] == "blurry"
    assert body["image_count"] == 3
    assert body["seed"] == 42
    assert body["cfg_rescale"] == 0.7
    assert body["denoise_strength"] == 0.6


def test_create_image_omitted_cfg_rescale_is_zero(client: TestClient, headers: dict[str, str]) -> None:
    # Changelog 2026-06-03: omitted cfg_rescale ⇒ 0.
    body = create(client, headers, prompt="p")
    assert body["cfg_rescale"] == 0
    assert body["image_count"] == 1


def test_create_image_without_lora_has_null_loras(client: TestClient, headers: dict[str, str]) -> None:
    assert create(client, headers, prompt="p")["loras"] is None


@pytest.mark.parametrize(
    "lora_id", [GOLDEN_HOUR["id"], "golden-hour-photography", "a1b2c3d4-e5f6-7890-abcd-ef1234567890"]
)
def test_create_image_lora_by_id_slug_or_legacy_uuid_is_one_loras_entry(
    client: TestClient, headers: dict[str, str], lora_id: str
) -> None:
    assert create(client, headers, prompt="p", lora_id=lora_id)["loras"] == [GOLDEN_HOUR]


def test_create_image_with_references_is_i2i(client: TestClient, headers: dict[str, str]) -> None:
    file_id = upload(client, headers)
    refs = ["https://cdn.example.com/ref.png", file_id]
    body = create(client, headers, prompt="p", reference_image_urls=refs)
    assert body["inference_type"] == "i2i"
    assert body["reference_image_urls"] == refs


def test_create_image_references_are_free(client: TestClient, headers: dict[str, str]) -> None:
    plain = create(client, headers, prompt="p")
    with_refs = create(client, headers, prompt="p", reference_image_urls=["https://cdn.example.com/ref.png"])
    assert with_refs["cost"] == plain["cost"]


# --- create: videos ----------------------------------------------------------------------------------


def test_create_video_defaults_from_lora(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/videos", json={"video_lora_id": "seedance-1-pro"}, headers=headers)
    assert response.status_code == 201
    body = response.json()
    assert GENERATION_FIELDS <= set(body)
    assert VID_ID.match(body["id"]), body["id"]
    assert body["object"] == "inference"
    assert body["status"] == "pending"
    assert body["media_type"] == "video"
    assert body["inference_type"] == "t2v"
    assert body["prompt"] == ""
    assert (body["video_resolution"], body["video_ratio"], body["video_duration"]) == ("1080p", "16:9", 5)
    assert body["loras"] == [{"id": SEEDANCE_PRO, "name": "Seedance 1.0 Pro"}]
    assert body["creation_request_id"] == response.headers["Aurous-Request-Id"]
    assert body["cost"]["amount"] == 6.25
    assert body["width"] is None
    assert body["height"] is None


def test_create_video_echoes_explicit_values(client: TestClient, headers: dict[str, str]) -> None:
    body = create_video(
        client, headers, prompt="waves", resolution="480p", ratio="9:16", duration=8, camera_fixed=True, seed=123
    )
    assert body["prompt"] == "waves"
    assert (body["video_resolution"], body["video_ratio"], body["video_duration"]) == ("480p", "9:16", 8)
    assert body["video_camera_fixed"] is True
    assert body["seed"] == 123
    assert body["cost"]["amount"] == 4  # 0.5 × 1 × 8


@pytest.mark.parametrize("lora_ref", [SEEDANCE_PRO, "seedance-1-pro", SEEDANCE_PRO_UUID])
def test_create_video_lora_by_id_slug_or_legacy_uuid(
    client: TestClient, headers: dict[str, str], lora_ref: str
) -> None:
    body = create(client, headers, "/v1/videos", video_lora_id=lora_ref)
    assert body["loras"] == [{"id": SEEDANCE_PRO, "name": "Seedance 1.0 Pro"}]


def test_create_video_with_first_frame_is_i2v(client: TestClient, headers: dict[str, str]) -> None:
    body = create_video(client, headers, first_frame_url="https://cdn.example.com/first.png")
    assert body["inference_type"] == "i2v"


def test_create_video_with_first_and_last_frame_files_is_i2v(client: TestClient, headers: dict[str, str]) -> None:
    first, last = upload(client, headers, "first_frame"), upload(client, headers, "last_frame")
    body = create_video(client, headers, first_frame_url=first, last_frame_url=last)
    assert body["inference_type"] == "i2v"


def test_video_ids_are_listed_with_images(client: TestClient, headers: dict[str, str]) -> None:
    image, video = create(client, headers), create_video(client, headers)
    assert [row["id"] for row in listing(client, headers)["data"]] == [video["id"], image["id"]]


# --- validation ----------------------------------------------------------------------------------------

IMAGE_INVALID = [
    pytest.param({"size": "square"}, "missing_field", "prompt", id="prompt-missing"),
    pytest.param({"prompt": ""}, "value_out_of_range", "prompt", id="prompt-empty"),
    pytest.param({"prompt": " \t\n "}, "invalid_format", "prompt", id="prompt-whitespace"),
    pytest.param({"prompt": "x" * 4001}, "value_out_of_range", "prompt", id="prompt-4001"),
    pytest.param({"prompt": 5}, "invalid_format", "prompt", id="prompt-number"),
    pytest.param({"prompt": "x", "negative_prompt": ""}, "value_out_of_range", "negative_prompt", id="negative-empty"),
    pytest.param({"prompt": "x", "steps": 0}, "value_out_of_range", "steps", id="steps-0"),
    pytest.param({"prompt": "x", "steps": 101}, "value_out_of_range", "steps", id="steps-101"),
    pytest.param({"prompt": "x", "steps": "5"}, "invalid_format", "steps", id="steps-string"),
    pytest.param({"prompt": "x", "guidance_scale": 0.05}, "value_out_of_range", "guidance_scale", id="guidance-0.05"),
    pytest.param({"prompt": "x", "guidance_scale": 31}, "value_out_of_range", "guidance_scale", id="guidance-31"),
    pytest.param({"prompt": "x", "count": 0}, "value_out_of_range", "count", id="count-0"),
    pytest.param({"prompt": "x", "count": 5}, "value_out_of_range", "count", id="count-5"),
    pytest.param({"prompt": "x", "seed": -2}, "value_out_of_range", "seed", id="seed-minus-2"),
    pytest.param({"prompt": "x", "seed": 2**32}, "value_out_of_range", "seed", id="seed-2^32"),
    pytest.param({"prompt": "x", "enhance_prompt": "yes"}, "invalid_format", "enhance_prompt", id="enhance-string"),
    pytest.param({"prompt": "x", "size": "huge"}, "invalid_format", "size", id="size-huge"),
    pytest.param(
        {"prompt": "x", "size": "square", "width": 1024}, "parameter_invalid_combination", "size", id="size+width"
    ),
    pytest.param(
        {"prompt": "x", "size": "square", "height": 1024}, "parameter_invalid_combination", "size", id="size+height"
    ),
    pytest.param({"prompt": "x", "width": 1024}, "missing_field", "height", id="width-alone"),
    pytest.param({"prompt": "x", "height": 1024}, "missing_field", "width", id="height-alone"),
    pytest.param({"prompt": "x", "width": 1000, "height": 1024}, "value_out_of_range", "width", id="width-1000"),
    pytest.param({"prompt": "x", "width": 1024, "height": 4097}, "value_out_of_range", "height", id="height-4097"),
    pytest.param(
        {"prompt": "x", "character_id": "char_01HXMQ7Z3K8Y2NABCDEFGHJKMR", "reference_image_urls": ["https://a.com/x"]},
        "mutually_exclusive_input",
        "character_id",
        id="character+references",
    ),
    pytest.param({"prompt": "x", "lora_id": "lora_NOPE"}, "resource_not_found", "lora_id", id="lora-unknown"),
    pytest.param(
        {"prompt": "x", "lora_id": "seedance-1-pro"}, "resource_not_found", "lora_id", id="lora-is-a-video-lora"
    ),
    pytest.param(
        {"prompt": "x", "reference_image_urls": ["https://a.com/x.png", UNKNOWN_FILE]},
        "resource_not_found",
        "reference_image_urls[1]",
        id="reference-unknown-file",
    ),
    pytest.param(
        {"prompt": "x", "reference_image_urls": ["https://a.com/x.png"] * 5},
        "value_out_of_range",
        "reference_image_urls",
        id="references-5",
    ),
    pytest.param(
        {"prompt": "x", "reference_image_urls": "https://a.com/x.png"},
        "invalid_format",
        "reference_image_urls",
        id="references-not-a-list",
    ),
]

VIDEO_INVALID = [
    pytest.param({"prompt": "x"}, "missing_field", "video_lora_id", id="lora-missing"),
    pytest.param({"video_lora_id": "lora_NOPE"}, "resource_not_found", "video_lora_id", id="lora-unknown"),
    pytest.param(
        {"video_lora_id": "golden-hour-photography"}, "resource_not_found", "video_lora_id", id="lora-is-an-image-lora"
    ),
    pytest.param({**VIDEO, "duration": 1}, "value_out_of_range", "duration", id="duration-1"),
    pytest.param({**VIDEO, "duration": 13}, "value_out_of_range", "duration", id="duration-13"),
    pytest.param({**VIDEO, "resolution": "4k"}, "invalid_format", "resolution", id="resolution-4k"),
    pytest.param({**VIDEO, "ratio": "2:1"}, "invalid_format", "ratio", id="ratio-2:1"),
    pytest.param({**VIDEO, "seed": -2}, "value_out_of_range", "seed", id="seed-minus-2"),
    pytest.param({**VIDEO, "seed": 2**32}, "value_out_of_range", "seed", id="seed-2^32"),
    pytest.param({**VIDEO, "prompt": "x" * 4001}, "value_out_of_range", "prompt", id="prompt-4001"),
    pytest.param({**VIDEO, "camera_fixed": "yes"}, "invalid_format", "camera_fixed", id="camera-fixed-string"),
    pytest.param(
        {**VIDEO, "last_frame_url": "https://cdn.example.com/last.png"},
        "missing_field",
        "first_frame_url",
        id="last-without-first",
    ),
    pytest.param(
        {**VIDEO, "first_frame_url": UNKNOWN_FILE}, "resource_not_found", "first_frame_url", id="first-unknown-file"
    ),
    pytest.param(
        {**VIDEO, "first_frame_url": "https://a.com/" + "x" * 2048},
        "value_out_of_range",
        "first_frame_url",
        id="first-over-2048",
    ),
]


@pytest.mark.parametrize(("body", "code", "param"), IMAGE_INVALID)
def test_create_image_rejects_invalid_body(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], code: str, param: str
) -> None:
    create(client, headers)
    before = stored_state(client, headers)
    assert_envelope(client.post("/v1/images", json=body, headers=headers), 400, code, param)
    assert stored_state(client, headers) == before


@pytest.mark.parametrize(("body", "code", "param"), IMAGE_INVALID)
def test_estimate_image_rejects_like_create(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], code: str, param: str
) -> None:
    assert_envelope(client.post("/v1/images/estimate", json=body, headers=headers), 400, code, param)


@pytest.mark.parametrize(("body", "code", "param"), VIDEO_INVALID)
def test_create_video_rejects_invalid_body(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], code: str, param: str
) -> None:
    create(client, headers)
    before = stored_state(client, headers)
    assert_envelope(client.post("/v1/videos", json=body, headers=headers), 400, code, param)
    assert stored_state(client, headers) == before


@pytest.mark.parametrize(("body", "code", "param"), VIDEO_INVALID)
def test_estimate_video_rejects_like_create(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], code: str, param: str
) -> None:
    assert_envelope(client.post("/v1/videos/estimate", json=body, headers=headers), 400, code, param)


def test_generation_routes_reject_ssrf_urls_with_the_field_param(client: TestClient, headers: dict[str, str]) -> None:
    create(client, headers)
    before = stored_state(client, headers)
    ok = "https://cdn.example.com/ok.png"
    for url in SSRF_URLS:
        cases = [
            ("/v1/images", {"prompt": "x", "reference_image_urls": [url]}, "reference_image_urls[0]"),
            ("/v1/images", {"prompt": "x", "reference_image_urls": [ok, url]}, "reference_image_urls[1]"),
            ("/v1/videos", {**VIDEO, "first_frame_url": url}, "first_frame_url"),
            ("/v1/videos", {**VIDEO, "first_frame_url": ok, "last_frame_url": url}, "last_frame_url"),
        ]
        for path, body, param in cases:
            for route in (path, f"{path}/estimate"):
                assert_envelope(client.post(route, json=body, headers=headers), 400, "invalid_format", param)
    assert stored_state(client, headers) == before


@pytest.mark.parametrize("path", ["/v1/images", "/v1/images/estimate"])
def test_create_image_rejects_another_teams_file(
    client: TestClient, headers: dict[str, str], other: dict[str, str], path: str
) -> None:
    foreign = upload(client, other)
    before = stored_state(client, headers)
    body = {"prompt": "x", "reference_image_urls": ["https://cdn.example.com/ok.png", foreign]}
    assert_envelope(client.post(path, json=body, headers=headers), 400, "resource_not_found", "reference_image_urls[1]")
    assert stored_state(client, headers) == before


def test_create_video_rejects_another_teams_first_frame(
    client: TestClient, headers: dict[str, str], other: dict[str, str]
) -> None:
    body = {**VIDEO, "first_frame_url": upload(client, other, "first_frame")}
    assert_envelope(client.post("/v1/videos", json=body, headers=headers), 400, "resource_not_found", "first_frame_url")


@pytest.mark.parametrize("path", ["/v1/images", "/v1/videos", "/v1/images/estimate", "/v1/videos/estimate"])
@pytest.mark.parametrize("raw", [b'{"prompt": "x"', b"[1, 2]", b"not json"])
def test_generation_routes_reject_malformed_json(
    client: TestClient, headers: dict[str, str], path: str, raw: bytes
) -> None:
    create(client, headers)
    before = stored_state(client, headers)
    response = client.post(path, content=raw, headers={**headers, "Content-Type": "application/json"})
    assert_envelope(response, 400, "invalid_format")
    assert stored_state(client, headers) == before


# --- estimates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "amount", "breakdown"),
    [
        ({"prompt": "x", "enhance_prompt": True}, 2, {"base": 1, "enhance": 1}),
        ({"prompt": "x", "enhance_prompt": False}, 1, {"base": 1, "enhance": 0}),
        ({"prompt": "x"}, 1, {"base": 1, "enhance": 0}),
        ({"prompt": "x", "count": 3}, 3, {"base": 3, "enhance": 0}),
        ({"prompt": "x", "count": 4, "enhance_prompt": True}, 8, {"base": 4, "enhance": 4}),
    ],
)
def test_estimate_image_amount_and_breakdown(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], amount: float, breakdown: dict[str, float]
) -> None:
    response = client.post("/v1/images/estimate", json=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "object": "estimate",
        "estimated_cost": {"amount": amount, "breakdown": breakdown},
        "currency": "credit",
    }


@pytest.mark.parametrize(
    ("resolution", "duration", "amount"),
    [("480p", 5, 2.5), ("720p", 5, 3.75), ("1080p", 5, 6.25), ("1080p", 12, 15), ("480p", 2, 1)],
)
def test_estimate_video_amount_follows_rate_card(
    client: TestClient, headers: dict[str, str], resolution: str, duration: int, amount: float
) -> None:
    body = {**VIDEO, "resolution": resolution, "duration": duration}
    response = client.post("/v1/videos/estimate", json=body, headers=headers)
    assert response.status_code == 200
    estimate = response.json()
    assert estimate["object"] == "estimate"
    assert estimate["currency"] == "credit"
    assert estimate["estimated_cost"]["amount"] == amount
    # Video breakdown: reference §8.4 default {base: amount, enhance: 0}; no enhance surcharge.
    assert estimate["estimated_cost"]["breakdown"] == {"base": amount, "enhance": 0}


def test_estimate_video_uses_lora_defaults(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/videos/estimate", json=VIDEO, headers=headers)
    assert response.json()["estimated_cost"]["amount"] == 6.25  # 1080p, 5 s


def test_estimates_create_nothing_and_hold_nothing(client: TestClient, headers: dict[str, str]) -> None:
    before = stored_state(client, headers)
    assert client.post("/v1/images/estimate", json={"prompt": "x", "count": 4}, headers=headers).status_code == 200
    assert client.post("/v1/videos/estimate", json=VIDEO, headers=headers).status_code == 200
    assert stored_state(client, headers) == before
    assert before[0]["data"] == []
    assert before[1]["held_credits"] == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/images", {"prompt": "x", "count": 3, "enhance_prompt": True}),
        ("/v1/videos", {**VIDEO, "resolution": "720p", "duration": 7}),
    ],
)
def test_estimate_equals_created_cost(client: TestClient, headers: dict[str, str], path: str, body: dict) -> None:
    estimate = client.post(f"{path}/estimate", json=body, headers=headers).json()["estimated_cost"]
    cost = create(client, headers, path, **body)["cost"]
    assert cost == {**estimate, "currency": "credit"}


# --- lifecycle on the clock ------------------------------------------------------------------------------


def test_image_lifecycle_at_pinned_instants(client: TestClient, headers: dict[str, str]) -> None:
    gen = create(client, headers, prompt="p", count=2)
    created = parse_time(gen["created_at"])
    seen = []
    for step, expected in [(1, "pending"), (1, "processing"), (IMAGE_PROCESSING - 1, "processing")]:
        advance(client, headers, step)
        body = get(client, headers, gen["id"])
        seen.append(body["status"])
        assert body["status"] == expected
        for field in ("completed_at", "duration_ms", "output_urls", "output_video_url"):
            assert body[field] is None, (expected, field)
    advance(client, headers, 1)
    done = get(client, headers, gen["id"])
    assert done["status"] == "succeeded"
    assert parse_time(done["completed_at"]) == created + timedelta(seconds=IMAGE_DONE)
    assert done["duration_ms"] == IMAGE_PROCESSING * 1000
    assert done["output_video_url"] is None
    assert len(done["output_urls"]) == 2
    for index, url in enumerate(done["output_urls"]):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == BASE_URL
        assert parts.path == f"/v1/images/{gen['id']}/output/{index}"
        assert parse_qs(parts.query)["token"][0]


def test_video_lifecycle_at_pinned_instants(client: TestClient, headers: dict[str, str]) -> None:
    gen = create_video(client, headers, resolution="480p", duration=2)
    created = parse_time(gen["created_at"])
    advance(client, headers, VIDEO_PENDING - 0.5)
    assert get(client, headers, gen["id"])["status"] == "pending"
    advance(client, headers, 0.5)
    processing = get(client, headers, gen["id"])
    assert processing["status"] == "processing"
    assert processing["output_video_url"] is None
    assert processing["completed_at"] is None
    advance(client, headers, VIDEO_PROCESSING - 0.001)
    assert get(client, headers, gen["id"])["status"] == "processing"
    advance(client, headers, 0.001)
    done = get(client, headers, gen["id"])
    assert done["status"] == "succeeded"
    assert parse_time(done["completed_at"]) == created + timedelta(seconds=VIDEO_DONE)
    assert done["duration_ms"] == VIDEO_PROCESSING * 1000
    parts = urlsplit(done["output_video_url"])
    assert parts.path == f"/v1/videos/{gen['id']}/output"
    assert parse_qs(parts.query)["token"][0]


def test_get_video_alias_returns_the_generation(client: TestClient, headers: dict[str, str]) -> None:
    gen = create_video(client, headers)
    response = client.get(f"/v1/videos/{gen['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json() == get(client, headers, gen["id"])


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/images/{id}"), ("GET", "/v1/videos/{id}"), ("POST", "/v1/images/{id}/cancel")],
)
@pytest.mark.parametrize("kind", ["image", "video"])
def test_another_teams_generation_is_404_never_403(
    client: TestClient, headers: dict[str, str], other: dict[str, str], method: str, path: str, kind: str
) -> None:
    gen = create(client, headers) if kind == "image" else create_video(client, headers)
    response = client.request(method, path.format(id=gen["id"]), headers=other)
    assert_envelope(response, 404, "resource_not_found")
    assert get(client, headers, gen["id"])["status"] == "pending"  # the owner's generation is untouched


@pytest.mark.parametrize("gen_id", ["img_01HXMQ7Z3K8Y2ABCDEFGHJKMNP", "vid_01HXMQ7Z3K8Y2ABCDEFGHJKMNP", "nope"])
def test_unknown_generation_is_404(client: TestClient, headers: dict[str, str], gen_id: str) -> None:
    assert_envelope(client.get(f"/v1/images/{gen_id}", headers=headers), 404, "resource_not_found")


@pytest.mark.slow
def test_one_clock_advance_of_an_hour_settles_two_thousand_generations(fake_clock: VirtualClock) -> None:
    total = 2000
    app = create_app(
        make_settings(rate_limits_enabled=False, default_credits=total), clock=fake_clock, store=InMemoryStore()
    )
    headers = {"X-Api-Key": new_api_key()}

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as http:
            for index in range(total):  # one request per generation, nothing else
                assert (await http.post("/v1/images", json={"prompt": f"#{index}"})).status_code == 201
            assert (await http.post("/_mock/clock/advance", json={"seconds": 3600})).status_code == 200
            rows: list[dict[str, Any]] = []
            params: dict[str, Any] = {"limit": 100}
            for _ in range(total // 100 + 1):
                page = (await http.get("/v1/images", params=params)).json()
                rows.extend(page["data"])
                if not page["has_more"]:
                    break
                params["starting_after"] = page["next_cursor"]
            return rows, (await http.get("/v1/balance")).json()

    try:
        rows, money = asyncio.run(scenario())
    finally:
        app.state.emulator.close()
    assert len({row["id"] for row in rows}) == len(rows) == total
    assert {row["status"] for row in rows} == {"succeeded"}
    assert (money["credits"], money["held_credits"], money["available_credits"]) == (0, 0, 0)


# --- cancel ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("wait", "status_before"), [(0, "pending"), (IMAGE_PENDING + 1, "processing")])
def test_cancel_pending_or_processing_releases_the_hold(
    client: TestClient, headers: dict[str, str], wait: float, status_before: str
) -> None:
    gen = create(client, headers, prompt="p", count=2)
    advance(client, headers, wait)
    assert get(client, headers, gen["id"])["status"] == status_before
    assert balance(client, headers)["held_credits"] == 2
    response = client.post(f"/v1/images/{gen['id']}/cancel", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == gen["id"]
    assert body["status"] == "cancelled"
    assert parse_time(body["completed_at"]) == parse_time(gen["created_at"]) + timedelta(seconds=wait)
    assert body["output_urls"] is None
    money = balance(client, headers)
    assert (money["credits"], money["held_credits"], money["available_credits"]) == (1000, 0, 1000)


def test_cancel_video_through_images_path(client: TestClient, headers: dict[str, str]) -> None:
    gen = create_video(client, headers)
    response = client.post(f"/v1/images/{gen['id']}/cancel", headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert balance(client, headers)["available_credits"] == 1000


def test_cancel_twice_returns_same_resource(client: TestClient, headers: dict[str, str]) -> None:
    gen = create(client, headers)
    first = client.post(f"/v1/images/{gen['id']}/cancel", headers=headers)
    advance(client, headers, 1)
    second = client.post(f"/v1/images/{gen['id']}/cancel", headers=headers)
    assert second.status_code == 200
    assert second.json() == first.json()
    assert balance(client, headers)["credits"] == 1000


@pytest.mark.parametrize("kind", ["image", "video"])
def test_cancel_succeeded_is_generation_not_cancellable(client: TestClient, headers: dict[str, str], kind: str) -> None:
    gen = create(client, headers) if kind == "image" else create_video(client, headers)
    advance(client, headers, max(IMAGE_DONE, VIDEO_DONE))
    money = balance(client, headers)
    response = client.post(f"/v1/images/{gen['id']}/cancel", headers=headers)
    assert_envelope(response, 400, "generation_not_cancellable")
    assert get(client, headers, gen["id"])["status"] == "succeeded"
    assert balance(client, headers) == money


def test_cancelled_stays_cancelled_after_its_finish_time(client: TestClient, headers: dict[str, str]) -> None:
    gen = create(client, headers)
    cancelled = client.post(f"/v1/images/{gen['id']}/cancel", headers=headers).json()
    advance(client, headers, IMAGE_DONE + 3600)
    later = get(client, headers, gen["id"])
    assert later["status"] == "cancelled"
    assert later["completed_at"] == cancelled["completed_at"]
    assert later["output_urls"] is None
    assert later["cost"]["amount"] == 0  # charged amount when terminal: nothing
    money = balance(client, headers)
    assert (money["credits"], money["held_credits"]) == (1000, 0)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_output_of_cancelled_generation_is_not_available(
    client: TestClient, headers: dict[str, str], kind: str
) -> None:
    gen = create(client, headers) if kind == "image" else create_video(client, headers)
    client.post(f"/v1/images/{gen['id']}/cancel", headers=headers)
    advance(client, headers, VIDEO_DONE)
    path = f"/v1/images/{gen['id']}/output/0" if kind == "image" else f"/v1/videos/{gen['id']}/output"
    assert_envelope(client.get(path, headers=headers), 422, "output_not_available")


# --- credits --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "cost"),
    [
        ("/v1/images", {"prompt": "x", "count": 2, "enhance_prompt": True}, 4),
        ("/v1/videos", {**VIDEO, "resolution": "720p", "duration": 5}, 3.75),
    ],
)
def test_credits_held_at_create_and_committed_on_success(
    client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any], cost: float
) -> None:
    gen = create(client, headers, path, **body)
    assert gen["cost"]["amount"] == cost
    held = balance(client, headers)
    assert (held["credits"], held["held_credits"], held["available_credits"]) == (1000, cost, 1000 - cost)
    advance(client, headers, VIDEO_DONE)
    assert get(client, headers, gen["id"])["status"] == "succeeded"
    done = balance(client, headers)
    assert (done["credits"], done["held_credits"], done["available_credits"]) == (1000 - cost, 0, 1000 - cost)
    assert get(client, headers, gen["id"])["cost"]["amount"] == cost


def test_balance_too_low_is_402_and_creates_nothing(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(**PINNED, default_credits=3)
    before = stored_state(client, headers)
    response = client.post("/v1/videos", json=VIDEO, headers=headers)  # 1080p 5 s = 6.25
    assert_envelope(
        response, 402, "balance_too_low", message="Team available balance is 3.0 credits, generation requires 6.25."
    )
    assert stored_state(client, headers) == before
    assert before[0]["data"] == []


def test_balance_check_uses_available_not_total_credits(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(**PINNED, default_credits=3)
    for _ in range(3):
        create(client, headers, prompt="x")
    money = balance(client, headers)
    assert (money["credits"], money["held_credits"], money["available_credits"]) == (3, 3, 0)
    response = client.post("/v1/images", json={"prompt": "x"}, headers=headers)
    error = assert_envelope(response, 402, "balance_too_low")
    assert re.fullmatch(r"Team available balance is [0-9.]+ credits, generation requires [0-9.]+\.", error["message"])
    assert error["message"] == "Team available balance is 0.0 credits, generation requires 1.0."
    assert len(listing(client, headers)["data"]) == 3


def test_balance_too_low_for_count_times_enhance(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(**PINNED, default_credits=3)
    response = client.post("/v1/images", json={"prompt": "x", "count": 2, "enhance_prompt": True}, headers=headers)
    assert_envelope(response, 402, "balance_too_low")
    assert create(client, headers, prompt="x", count=3)["cost"]["amount"] == 3  # exactly the available balance


@pytest.mark.parametrize("mode", ["exempt", "some_future_mode"])
def test_non_metered_team_is_never_blocked_nor_charged(client_for: ClientFactory, mode: str) -> None:
    client = client_for(**PINNED, keys=[{"key": "al_live_exempt1", "billing_mode": mode, "credits": 0}])
    headers = {"X-Api-Key": "al_live_exempt1"}
    gen = create_video(client, headers)
    assert gen["cost"]["amount"] == 6.25
    assert balance(client, headers) == {
        "credits": 0,
        "held_credits": 0,
        "available_credits": 0,
        "currency": "credit",
        "billing_mode": mode,
    }
    advance(client, headers, VIDEO_DONE)
    assert get(client, headers, gen["id"])["status"] == "succeeded"
    money = balance(client, headers)
    assert (money["credits"], money["held_credits"], money["available_credits"]) == (0, 0, 0)


def test_credits_are_per_team(client: TestClient, headers: dict[str, str], other: dict[str, str]) -> None:
    create_video(client, headers)
    assert balance(client, other)["held_credits"] == 0


# --- list -----------------------------------------------------------------------------------------------


def make_many(client: TestClient, headers: dict[str, str], n: int) -> list[str]:
    """``n`` generations, one clock tick apart; returned newest first."""
    ids = []
    for index in range(n):
        ids.append(create(client, headers, prompt=f"#{index}")["id"])
        advance(client, headers, 0.25)
    return ids[::-1]


def test_list_is_newest_first(client: TestClient, headers: dict[str, str]) -> None:
    ids = make_many(client, headers, 4)
    page = listing(client, headers)
    assert page["object"] == "list"
    assert [row["id"] for row in page["data"]] == ids
    assert page["has_more"] is False
    assert page["next_cursor"] is None
    created = [parse_time(row["created_at"]) for row in page["data"]]
    assert created == sorted(created, reverse=True)


def test_list_limit_and_next_cursor(client: TestClient, headers: dict[str, str]) -> None:
    ids = make_many(client, headers, 3)
    page = listing(client, headers, limit=2)
    assert [row["id"] for row in page["data"]] == ids[:2]
    assert page["has_more"] is True
    assert page["next_cursor"] == ids[1]
    rest = listing(client, headers, limit=2, starting_after=page["next_cursor"])
    assert [row["id"] for row in rest["data"]] == ids[2:]
    assert rest["has_more"] is False
    assert rest["next_cursor"] is None


def test_list_walk_with_next_cursor_yields_every_id_once(client: TestClient, headers: dict[str, str]) -> None:
    ids = make_many(client, headers, 7)
    seen: list[str] = []
    page = listing(client, headers, limit=3)
    pages = 1
    while True:
        seen.extend(row["id"] for row in page["data"])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        page = listing(client, headers, limit=3, starting_after=page["next_cursor"])
        pages += 1
    assert seen == ids
    assert pages == 3


def test_list_ending_before_returns_newer_rows(client: TestClient, headers: dict[str, str]) -> None:
    ids = make_many(client, headers, 5)
    page = listing(client, headers, limit=2, ending_before=ids[-1])
    assert [row["id"] for row in page["data"]] == ids[-3:-1]  # the two rows just newer than the cursor
    assert page["has_more"] is True
    everything = listing(client, headers, ending_before=ids[2])
    assert [row["id"] for row in everything["data"]] == ids[:2]
    assert everything["has_more"] is False


def test_list_default_limit_is_20(client: TestClient, headers: dict[str, str]) -> None:
    for _ in range(21):
        create(client, headers)
    page = listing(client, headers)
    assert len(page["data"]) == 20
    assert page["has_more"] is True


def test_list_is_team_scoped(client: TestClient, headers: dict[str, str], other: dict[str, str]) -> None:
    create(client, headers)
    assert listing(client, other)["data"] == []


@pytest.mark.parametrize(
    ("value", "code"), [("0", "value_out_of_range"), ("101", "value_out_of_range"), ("x", "invalid_format")]
)
def test_list_rejects_bad_limit(client: TestClient, headers: dict[str, str], value: str, code: str) -> None:
    assert_envelope(client.get("/v1/images", params={"limit": value}, headers=headers), 400, code, "limit")


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
def test_list_rejects_unknown_cursor(
    client: TestClient, headers: dict[str, str], other: dict[str, str], cursor: str
) -> None:
    foreign = create(client, other)["id"]
    for value in ("img_01HXMQ7Z3K8Y2ABCDEFGHJKMNP", foreign):
        response = client.get("/v1/images", params={cursor: value}, headers=headers)
        error = assert_envelope(response, 400, "resource_not_found", cursor)
        assert error["type"] == "invalid_request"


# --- idempotency ------------------------------------------------------------------------------------------

REPLAYED = "Aurous-Idempotent-Replayed"


def raw_post(client: TestClient, headers: dict[str, str], path: str, raw: bytes, **extra: str) -> Any:
    return client.post(path, content=raw, headers={**headers, "Content-Type": "application/json", **extra})


def assert_still_running(response: Any) -> None:
    """The idempotency page: 409 idempotency_key_in_use, no Retry-After, nothing echoing the original's id."""
    assert_envelope(response, 409, "idempotency_key_in_use")
    assert "Retry-After" not in response.headers
    assert REPLAYED not in response.headers
    assert "img_" not in response.text
    assert "vid_" not in response.text


def test_idempotent_retry_is_409_while_running_then_replays_billed_once(
    client: TestClient, headers: dict[str, str]
) -> None:
    first = raw_post(client, headers, "/v1/images", b'{"prompt": "p", "count": 2}', **{"Idempotency-Key": "k-1"})
    early = raw_post(client, headers, "/v1/images", b'{"prompt": "p", "count": 2}', **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    assert REPLAYED not in first.headers
    assert_still_running(early)
    assert len(listing(client, headers)["data"]) == 1
    assert balance(client, headers)["held_credits"] == 2
    advance(client, headers, IMAGE_PENDING)  # processing: still running
    assert_still_running(
        raw_post(client, headers, "/v1/images", b'{"prompt":"p","count":2}', **{"Idempotency-Key": "k-1"})
    )
    advance(client, headers, IMAGE_PROCESSING)  # the team's clock reaches the terminal state
    second = raw_post(client, headers, "/v1/images", b'{"prompt": "p", "count": 2}', **{"Idempotency-Key": "k-1"})
    assert second.status_code == 201
    assert second.headers[REPLAYED] == "true"
    assert second.content == first.content  # the original response, read the id from it
    assert len(listing(client, headers)["data"]) == 1
    assert balance(client, headers)["credits"] == 998  # charged once


def test_idempotent_retry_replays_once_cancelled(client: TestClient, headers: dict[str, str]) -> None:
    key = {**headers, "Idempotency-Key": "k-cancel"}
    first = client.post("/v1/images", json={"prompt": "p"}, headers=key)
    assert_still_running(client.post("/v1/images", json={"prompt": "p"}, headers=key))
    assert client.post(f"/v1/images/{first.json()['id']}/cancel", headers=headers).status_code == 200
    replay = client.post("/v1/images", json={"prompt": "p"}, headers=key)
    assert (replay.status_code, replay.headers[REPLAYED], replay.json()["id"]) == (201, "true", first.json()["id"])


def test_idempotent_replay_at_once_is_a_setting(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(**PINNED, idempotency_replay="immediate")
    key = {**headers, "Idempotency-Key": "k-now"}
    first = client.post("/v1/images", json={"prompt": "p"}, headers=key)
    second = client.post("/v1/images", json={"prompt": "p"}, headers=key)
    assert (first.status_code, second.status_code, second.headers[REPLAYED]) == (201, 201, "true")
    assert second.content == first.content
    assert get(client, headers, first.json()["id"])["status"] == "pending"


def test_idempotent_replay_ignores_json_key_order(client: TestClient, headers: dict[str, str]) -> None:
    key = {"Idempotency-Key": "order"}
    first = raw_post(client, headers, "/v1/images", b'{"prompt":"p","count":2,"seed":7}', **key)
    advance(client, headers, IMAGE_DONE)
    second = raw_post(client, headers, "/v1/images", b'{ "seed": 7, "count": 2, "prompt": "p" }', **key)
    assert second.status_code == 201
    assert second.headers[REPLAYED] == "true"
    assert second.json()["id"] == first.json()["id"]


def test_idempotency_key_with_different_body_is_409(client: TestClient, headers: dict[str, str]) -> None:
    key = {"Idempotency-Key": "k-2"}
    client.post("/v1/images", json={"prompt": "one"}, headers={**headers, **key})
    before = stored_state(client, headers)
    response = client.post("/v1/images", json={"prompt": "two"}, headers={**headers, **key})
    assert_envelope(response, 409, "idempotency_key_in_use")
    assert stored_state(client, headers) == before


def test_idempotency_key_reused_on_videos_is_409(client: TestClient, headers: dict[str, str]) -> None:
    key = {"Idempotency-Key": "k-3"}
    client.post("/v1/images", json={"prompt": "one"}, headers={**headers, **key})
    response = client.post("/v1/videos", json=VIDEO, headers={**headers, **key})
    assert_envelope(response, 409, "idempotency_key_in_use")
    assert len(listing(client, headers)["data"]) == 1


def test_idempotency_failed_validation_is_not_cached(client: TestClient, headers: dict[str, str]) -> None:
    key = {"Idempotency-Key": "k-4"}
    assert_envelope(
        client.post("/v1/images", json={"prompt": ""}, headers={**headers, **key}), 400, "value_out_of_range", "prompt"
    )
    retry = client.post("/v1/images", json={"prompt": "fixed"}, headers={**headers, **key})
    assert retry.status_code == 201
    assert REPLAYED not in retry.headers


def test_idempotency_balance_too_low_is_not_cached(client_for: ClientFactory, headers: dict[str, str]) -> None:
    client = client_for(**PINNED, default_credits=1)
    key = {"Idempotency-Key": "k-402"}
    body = {"prompt": "x", "count": 2}
    assert_envelope(client.post("/v1/images", json=body, headers={**headers, **key}), 402, "balance_too_low")
    assert_envelope(client.post("/v1/images", json=body, headers={**headers, **key}), 402, "balance_too_low")


@pytest.mark.parametrize("header", ["Idempotency-Key", "Aurous-Idempotent-Key", "Aurous-Idempotency-Key"])
def test_idempotency_key_header_spellings(client: TestClient, headers: dict[str, str], header: str) -> None:
    first = client.post("/v1/images", json={"prompt": "p"}, headers={**headers, header: "alias"})
    assert_still_running(client.post("/v1/images", json={"prompt": "p"}, headers={**headers, header: "alias"}))
    advance(client, headers, IMAGE_DONE)
    second = client.post("/v1/images", json={"prompt": "p"}, headers={**headers, header: "alias"})
    assert second.status_code == 201
    assert second.headers[REPLAYED] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert len(listing(client, headers)["data"]) == 1


def test_idempotency_key_is_fresh_after_24_hours(client: TestClient, headers: dict[str, str]) -> None:
    key = {"Idempotency-Key": "k-5"}
    first = client.post("/v1/images", json={"prompt": "p"}, headers={**headers, **key})
    advance(client, headers, 86400)
    again = client.post("/v1/images", json={"prompt": "p"}, headers={**headers, **key})
    assert again.status_code == 201
    assert REPLAYED not in again.headers
    assert again.json()["id"] != first.json()["id"]
    other_body = client.post("/v1/images", json={"prompt": "other"}, headers={**headers, "Idempotency-Key": "k-6"})
    assert other_body.status_code == 201


def test_idempotency_key_is_scoped_per_team(client: TestClient, headers: dict[str, str], other: dict[str, str]) -> None:
    key = {"Idempotency-Key": "shared"}
    mine = client.post("/v1/images", json={"prompt": "p"}, headers={**headers, **key})
    theirs = client.post("/v1/images", json={"prompt": "p"}, headers={**other, **key})
    assert theirs.status_code == 201
    assert REPLAYED not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]


def test_idempotent_video_replay(client: TestClient, headers: dict[str, str]) -> None:
    key = {"Idempotency-Key": "vid-1"}
    first = client.post("/v1/videos", json=VIDEO, headers={**headers, **key})
    assert_still_running(client.post("/v1/videos", json=VIDEO, headers={**headers, **key}))
    assert balance(client, headers)["held_credits"] == 6.25  # the 409 held nothing more
    advance(client, headers, VIDEO_DONE)
    second = client.post("/v1/videos", json=VIDEO, headers={**headers, **key})
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers[REPLAYED] == "true"
    assert second.content == first.content
    assert balance(client, headers)["credits"] == 1000 - 6.25


@pytest.mark.parametrize(("length", "status"), [(256, 201), (257, 400)])
def test_idempotency_key_length_is_1_to_256(
    client: TestClient, headers: dict[str, str], length: int, status: int
) -> None:
    response = client.post("/v1/images", json={"prompt": "p"}, headers={**headers, "Idempotency-Key": "k" * length})
    assert response.status_code == status
    if status == 400:
        assert_envelope(response, 400, "invalid_format", "Idempotency-Key")
        assert listing(client, headers)["data"] == []


@pytest.mark.parametrize("limit", [1, 100])
def test_list_accepts_limit_bounds(client: TestClient, headers: dict[str, str], limit: int) -> None:
    make_many(client, headers, 2)
    assert len(listing(client, headers, limit=limit)["data"]) == min(limit, 2)

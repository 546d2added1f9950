"""Reference files: multipart upload, read with a re-minted signed URL, purge, 24 h TTL (reference §2.5, §6.2, §1.9)."""

from __future__ import annotations

import gc
import io
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from starlette.testclient import TestClient

from mockserver import InMemoryStore, VirtualClock, create_app
from tests.conftest import BASE_URL, START, make_settings, new_api_key
from tests.helpers import assert_envelope

FILE_ID = re.compile(r"^file_[0-9A-HJKMNP-TV-Z]{26}$")
TTL = timedelta(hours=24)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """One app for the module; every test isolates itself with a fresh key (team, clock, files)."""
    app = create_app(make_settings(rate_limits_enabled=False), clock=VirtualClock(START), store=InMemoryStore())
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def other() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), **options: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 140, 220)).save(buffer, fmt, **options)
    return buffer.getvalue()


def post_file(
    client: TestClient,
    headers: dict[str, str],
    data: bytes | None = None,
    purpose: str | None = "reference",
    metadata: str | None = None,
    filename: str = "ref.png",
    mime: str = "image/png",
    with_file: bool = True,
) -> Any:
    """``POST /v1/files`` as multipart; ``None`` leaves a form field out."""
    form = {name: value for name, value in (("purpose", purpose), ("metadata", metadata)) if value is not None}
    if not with_file:
        # A multipart body without a file part (httpx sends url-encoded forms when there are no files).
        return client.post("/v1/files", files={"other": ("x.txt", b"x", "text/plain")}, data=form, headers=headers)
    files = {"file": (filename, image_bytes("PNG") if data is None else data, mime)}
    return client.post("/v1/files", files=files, data=form, headers=headers)


def upload(client: TestClient, headers: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    response = post_file(client, headers, **kwargs)
    assert response.status_code == 201, response.text
    return dict(response.json())


def advance(client: TestClient, headers: dict[str, str], seconds: float) -> None:
    assert client.post("/_mock/clock/advance", json={"seconds": seconds}, headers=headers).status_code == 200


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def local(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE_URL
    return f"{parts.path}?{parts.query}"


# --- upload ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime", "options"),
    [("PNG", "image/png", {}), ("JPEG", "image/jpeg", {"quality": 80}), ("WEBP", "image/webp", {})],
)
def test_upload_accepts_png_jpeg_webp(
    client: TestClient, headers: dict[str, str], fmt: str, mime: str, options: dict[str, Any]
) -> None:
    data = image_bytes(fmt, (320, 200), **options)
    response = post_file(client, headers, data=data, metadata='{"campaign": "launch-2026"}', mime=mime)
    assert response.status_code == 201, response.text
    body = response.json()
    assert FILE_ID.match(body["id"]), body["id"]
    assert body["object"] == "file"
    assert body["purpose"] == "reference"
    assert body["mime_type"] == mime
    assert body["size_bytes"] == len(data)
    assert (body["width_px"], body["height_px"]) == (320, 200)
    assert body["metadata"] == {"campaign": "launch-2026"}
    assert parse_time(body["created_at"]) == START
    assert parse_time(body["expires_at"]) == parse_time(body["created_at"]) + TTL
    assert parse_qs(urlsplit(body["url"]).query)["token"][0]


def test_upload_mime_type_comes_from_bytes_not_declared_type(client: TestClient, headers: dict[str, str]) -> None:
    body = upload(client, headers, data=image_bytes("JPEG"), filename="photo.png", mime="image/png")
    assert body["mime_type"] == "image/jpeg"


@pytest.mark.parametrize("purpose", ["reference", "first_frame", "last_frame"])
def test_upload_purposes(client: TestClient, headers: dict[str, str], purpose: str) -> None:
    assert upload(client, headers, purpose=purpose)["purpose"] == purpose


def test_upload_max_side_4096_is_accepted(client: TestClient, headers: dict[str, str]) -> None:
    body = upload(client, headers, data=image_bytes("PNG", (4096, 2)))
    assert (body["width_px"], body["height_px"]) == (4096, 2)


@pytest.mark.parametrize("size", [(4097, 2), (2, 4097)])
def test_upload_side_over_4096_is_value_out_of_range(
    client: TestClient, headers: dict[str, str], size: tuple[int, int]
) -> None:
    response = post_file(client, headers, data=image_bytes("PNG", size))
    assert_envelope(response, 400, "value_out_of_range", "file")


def test_upload_over_10_mb_is_rejected(client: TestClient, headers: dict[str, str]) -> None:
    side = 1880  # 1880² RGB of noise, stored uncompressed: just over 10 MB
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    assert 10 * 1024 * 1024 < len(buffer.getvalue()) < 11 * 1024 * 1024
    assert_envelope(post_file(client, headers, data=buffer.getvalue()), 400, "value_out_of_range", "file")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(image_bytes("GIF"), id="gif"),
        pytest.param(image_bytes("BMP"), id="bmp"),
        pytest.param(b"definitely not an image", id="garbage"),
        pytest.param(image_bytes("PNG", (300, 300))[:200], id="truncated-png"),
        pytest.param(b"", id="empty"),
    ],
)
def test_upload_rejects_other_formats(client: TestClient, headers: dict[str, str], data: bytes) -> None:
    assert_envelope(post_file(client, headers, data=data), 400, "invalid_format", "file")


def test_upload_without_file_is_missing_field(client: TestClient, headers: dict[str, str]) -> None:
    assert_envelope(post_file(client, headers, with_file=False), 400, "missing_field", "file")


def test_upload_without_purpose_is_missing_field(client: TestClient, headers: dict[str, str]) -> None:
    assert_envelope(post_file(client, headers, purpose=None), 400, "missing_field", "purpose")


@pytest.mark.parametrize("purpose", ["avatar", "", "REFERENCE"])
def test_upload_bad_purpose_is_invalid_format(client: TestClient, headers: dict[str, str], purpose: str) -> None:
    assert_envelope(post_file(client, headers, purpose=purpose), 400, "invalid_format", "purpose")


@pytest.mark.parametrize("metadata", ["[1, 2]", '"text"', "42", "{not json", "null"])
def test_upload_metadata_must_be_a_json_object(client: TestClient, headers: dict[str, str], metadata: str) -> None:
    assert_envelope(post_file(client, headers, metadata=metadata), 400, "invalid_format", "metadata")


def test_rejected_upload_stores_nothing(client: TestClient, headers: dict[str, str]) -> None:
    kept = upload(client, headers)
    assert post_file(client, headers, data=image_bytes("GIF")).status_code == 400
    assert client.get(f"/v1/files/{kept['id']}", headers=headers).status_code == 200
    # No idempotency record is kept for a failed upload either: the same key then succeeds.
    key = {"Idempotency-Key": "retry-after-400"}
    assert post_file(client, {**headers, **key}, data=image_bytes("GIF")).status_code == 400
    assert post_file(client, {**headers, **key}).status_code == 201


# --- read, signed url, delete, TTL ---------------------------------------------------------------------------


def test_get_file_returns_metadata_and_re_minted_url(client: TestClient, headers: dict[str, str]) -> None:
    created = upload(client, headers, metadata='{"k": "v"}')
    advance(client, headers, 60)
    response = client.get(f"/v1/files/{created['id']}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert {k: v for k, v in body.items() if k != "url"} == {k: v for k, v in created.items() if k != "url"}
    assert body["url"] != created["url"]


def test_signed_url_serves_the_exact_bytes(client: TestClient, headers: dict[str, str]) -> None:
    data = image_bytes("WEBP", (90, 30))
    created = upload(client, headers, data=data, mime="image/webp")
    response = client.get(local(created["url"]))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/webp"


def test_signed_url_requires_its_token(client: TestClient, headers: dict[str, str]) -> None:
    created = upload(client, headers)
    path = urlsplit(created["url"]).path
    assert client.get(path, headers=headers).status_code == 404
    token = parse_qs(urlsplit(created["url"]).query)["token"][0]
    tampered = token[:-1] + ("1" if token[-1] == "0" else "0")
    assert client.get(f"{path}?token={tampered}").status_code == 404
    assert client.get(local(created["url"])).status_code == 200


def test_signed_url_lives_about_an_hour_and_get_re_mints_it(client: TestClient, headers: dict[str, str]) -> None:
    created = upload(client, headers)
    advance(client, headers, 3599)
    assert client.get(local(created["url"])).status_code == 200
    advance(client, headers, 2)
    assert client.get(local(created["url"])).status_code == 404
    fresh = client.get(f"/v1/files/{created['id']}", headers=headers).json()["url"]
    assert client.get(local(fresh)).status_code == 200


def test_delete_file_purges_immediately(client: TestClient, headers: dict[str, str]) -> None:
    created = upload(client, headers)
    response = client.delete(f"/v1/files/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"deleted": True, "id": created["id"], "object": "file"}
    assert_envelope(client.get(f"/v1/files/{created['id']}", headers=headers), 404, "resource_not_found")
    assert client.get(local(created["url"])).status_code == 404


def test_delete_file_is_always_200(client: TestClient, headers: dict[str, str]) -> None:
    created = upload(client, headers)
    for file_id in (created["id"], created["id"], "file_01HXMQ7Z3K8Y2NABCDEFGHJKMN"):
        response = client.delete(f"/v1/files/{file_id}", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"deleted": True, "id": file_id, "object": "file"}


def test_file_expires_after_24_hours(client: TestClient, headers: dict[str, str]) -> None:
    created = upload(client, headers)
    advance(client, headers, TTL.total_seconds() - 1)
    assert client.get(f"/v1/files/{created['id']}", headers=headers).status_code == 200
    advance(client, headers, 1)
    assert_envelope(client.get(f"/v1/files/{created['id']}", headers=headers), 404, "resource_not_found")


def test_expired_file_can_no_longer_be_referenced(client: TestClient, headers: dict[str, str]) -> None:
    created = upload(client, headers)
    body = {"prompt": "x", "reference_image_urls": [created["id"]]}
    assert client.post("/v1/images/estimate", json=body, headers=headers).status_code == 200
    advance(client, headers, TTL.total_seconds())
    response = client.post("/v1/images", json=body, headers=headers)
    assert_envelope(response, 400, "resource_not_found", "reference_image_urls[0]")


def test_deleted_file_can_no_longer_be_referenced(client: TestClient, headers: dict[str, str]) -> None:
    created = upload(client, headers, purpose="first_frame")
    client.delete(f"/v1/files/{created['id']}", headers=headers)
    body = {"video_lora_id": "seedance-1-pro", "first_frame_url": created["id"]}
    assert_envelope(client.post("/v1/videos", json=body, headers=headers), 400, "resource_not_found", "first_frame_url")


def test_another_teams_file_is_404_and_not_deletable(
    client: TestClient, headers: dict[str, str], other: dict[str, str]
) -> None:
    created = upload(client, headers)
    assert_envelope(client.get(f"/v1/files/{created['id']}", headers=other), 404, "resource_not_found")
    assert client.delete(f"/v1/files/{created['id']}", headers=other).status_code == 200
    assert client.get(f"/v1/files/{created['id']}", headers=headers).status_code == 200


# --- idempotency --------------------------------------------------------------------------------------------


def test_idempotent_upload_replays_on_same_purpose_and_metadata(client: TestClient, headers: dict[str, str]) -> None:
    keyed = {**headers, "Idempotency-Key": "upload-1"}
    first = post_file(client, keyed, metadata='{"a": 1}')
    second = post_file(client, keyed, data=image_bytes("PNG", (10, 10)), metadata='{"a": 1}')
    assert first.status_code == second.status_code == 201
    assert "Aurous-Idempotent-Replayed" not in first.headers
    assert second.headers["Aurous-Idempotent-Replayed"] == "true"
    assert second.json() == first.json()


@pytest.mark.parametrize(("purpose", "metadata"), [("first_frame", '{"a": 1}'), ("reference", '{"a": 2}')])
def test_idempotent_upload_with_other_purpose_or_metadata_is_409(
    client: TestClient, headers: dict[str, str], purpose: str, metadata: str
) -> None:
    keyed = {**headers, "Idempotency-Key": "upload-2"}
    assert post_file(client, keyed, metadata='{"a": 1}').status_code == 201
    assert_envelope(post_file(client, keyed, purpose=purpose, metadata=metadata), 409, "idempotency_key_in_use")


def test_idempotency_key_of_upload_reused_on_images_is_409(client: TestClient, headers: dict[str, str]) -> None:
    keyed = {**headers, "Idempotency-Key": "upload-3"}
    assert post_file(client, keyed).status_code == 201
    response = client.post("/v1/images", json={"prompt": "x"}, headers=keyed)
    assert_envelope(response, 409, "idempotency_key_in_use")


def test_idempotent_upload_metadata_key_order_does_not_matter(client: TestClient, headers: dict[str, str]) -> None:
    keyed = {**headers, "Idempotency-Key": "upload-4"}
    first = post_file(client, keyed, metadata=json.dumps({"a": 1, "b": 2}))
    second = post_file(client, keyed, metadata=json.dumps({"b": 2, "a": 1}))
    assert second.status_code == 201
    assert second.headers["Aurous-Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]


def test_upload_releases_multipart_temporary_files(client: TestClient, headers: dict[str, str]) -> None:
    leaked: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: leaked.append(repr(unraisable.exc_value))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for _ in range(3):
                assert post_file(client, headers).status_code == 201
            assert post_file(client, headers, data=image_bytes("GIF")).status_code == 400
            gc.collect()
    finally:
        sys.unraisablehook = previous
    assert leaked == []
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []

"""The character journey of a new user over a real uvicorn on 127.0.0.1 (issue 9).

Upload two photos (init → PUT real JPEG and PNG bytes to the signed URL, without a key → classify), create a
character from them, generate an image with it (image-to-image, its refs in ``reference_image_urls``), delete it,
and see the next generation rejected with ``400 character_not_ready``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import new_api_key

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(live_server: str) -> Iterator[httpx.Client]:
    """An HTTP client of the live server, authenticated as a fresh team."""
    with httpx.Client(base_url=live_server, headers={"X-Api-Key": new_api_key()}, timeout=60) as client:
        yield client


def photo(kind: str, colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, kind)
    return buffer.getvalue()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def upload(api: httpx.Client, filename: str, extension: str, content_type: str, data: bytes) -> dict[str, Any]:
    ticket = ok(
        api.post(
            "/v1/characters/uploads/init",
            json={"filename": filename, "extension": extension, "content_type": content_type},
        )
    )
    assert ticket["upload_headers"] == {"Content-Type": content_type}
    with httpx.Client(timeout=60) as storage:  # the signed URL is the only credential
        ok(storage.put(ticket["upload_url"], content=data, headers=ticket["upload_headers"]))
    classified = ok(api.post("/v1/characters/uploads/classify", json={"upload_id": ticket["upload_id"]}))
    assert classified["upload_id"] == ticket["upload_id"]
    assert 0.5 <= classified["confidence"] <= 0.99
    return dict(classified)


def test_character_journey(api: httpx.Client) -> None:
    front = photo("JPEG", (180, 120, 90), (640, 800))
    side = photo("PNG", (90, 120, 180), (600, 800))
    uploads = [
        upload(api, "aurora-front.jpg", "jpg", "image/jpeg", front),
        upload(api, "aurora-side.png", "png", "image/png", side),
    ]

    character = ok(
        api.post(
            "/v1/characters",
            json={
                "name": "Aurora the Adventurer",
                "upload_ids": [u["upload_id"] for u in uploads],
                "attributes": {"gender": "female", "age": 28, "hair_color": "black"},
                "client_reference_id": "crm-4711",
            },
        ),
        201,
    )
    assert character["id"].startswith("char_")
    assert character["status"] == "ready"
    assert [ref["pose"] for ref in character["refs"]] == [u["pose"] for u in uploads]
    assert character["client_reference_id"] == "crm-4711"

    generation = ok(
        api.post("/v1/images", json={"prompt": "Aurora on a cliff at dusk", "character_id": character["id"]}), 201
    )
    assert generation["character_id"] == character["id"]
    assert generation["inference_type"] == "i2i"
    refs = generation["reference_image_urls"]
    assert [url.split("?")[0] for url in refs] == [ref["url"].split("?")[0] for ref in character["refs"]]
    with httpx.Client(timeout=60) as anonymous:  # the refs the generation was dispatched with are the uploads
        assert [anonymous.get(url).content for url in refs] == [front, side]

    deleted = ok(api.delete(f"/v1/characters/{character['id']}"))
    assert deleted == {"id": character["id"], "object": "character", "deleted": True}
    assert api.get(f"/v1/characters/{character['id']}").status_code == 404
    assert ok(api.get("/v1/characters"))["data"] == []

    refused = api.post("/v1/images", json={"prompt": "Aurora again", "character_id": character["id"]})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request", "character_not_ready", "character_id")
    assert error["request_id"] == refused.headers["Aurous-Request-Id"]

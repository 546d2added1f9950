"""The acceptance journey over a real uvicorn on 127.0.0.1: a 5 s 720p video from create to expiry.

Create → advance the virtual clock → poll until succeeded → download the MP4 (and a Range) → probe it with PyAV
(5 s at 24 fps, 1248×704, H.264) → the balance dropped by exactly 3.75 credits → 24 h later the URL is 410.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest

from tests.conftest import new_api_key

pytestmark = pytest.mark.e2e

FPS = 24
DURATION_S = 5
WIDTH, HEIGHT = 1248, 704  # Seedance 720p 16:9
COST = 3.75  # 0.5 credit/s × 1.5 (720p) × 5 s


@pytest.fixture
def api(live_server: str) -> Iterator[httpx.Client]:
    """An HTTP client of the live server, authenticated as a fresh team."""
    with httpx.Client(base_url=live_server, headers={"X-Api-Key": new_api_key()}, timeout=60) as client:
        yield client


def advance(api: httpx.Client, seconds: float) -> None:
    response = api.post("/_mock/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text


def balance(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/v1/balance")
    assert response.status_code == 200, response.text
    return dict(response.json())


def probe(data: bytes) -> dict[str, Any]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert stream.duration is not None
        assert stream.time_base is not None
        return {
            "codec": stream.codec_context.name,
            "width": stream.width,
            "height": stream.height,
            "fps": stream.average_rate,
            "frames": frames,
            "seconds": float(stream.duration * stream.time_base),
        }


def test_video_journey(api: httpx.Client) -> None:
    before = balance(api)

    created = api.post(
        "/v1/videos", json={"video_lora_id": "seedance-1-pro", "prompt": "surf at dawn", "resolution": "720p"}
    )
    assert created.status_code == 201, created.text
    gen = created.json()
    assert gen["id"].startswith("vid_")
    assert (gen["status"], gen["video_resolution"], gen["video_ratio"], gen["video_duration"]) == (
        "pending",
        "720p",
        "16:9",
        DURATION_S,
    )
    assert gen["cost"]["amount"] == COST
    held = balance(api)
    assert held["held_credits"] == before["held_credits"] + COST
    assert held["credits"] == before["credits"]

    # Advance the clock in steps and poll, as a client would, until the video is done (bounded).
    statuses = []
    for _ in range(60):
        polled = api.get(f"/v1/images/{gen['id']}")
        assert polled.status_code == 200
        gen = polled.json()
        statuses.append(gen["status"])
        if gen["status"] == "succeeded":
            break
        assert gen["status"] in ("pending", "processing")
        advance(api, 5)
    assert statuses[-1] == "succeeded", statuses
    assert statuses == sorted(statuses, key=["pending", "processing", "succeeded"].index)
    assert api.get(f"/v1/videos/{gen['id']}").json()["status"] == "succeeded"

    url = gen["output_video_url"]
    assert url.startswith(f"{api.base_url}".rstrip("/") + f"/v1/videos/{gen['id']}/output?token=")
    with httpx.Client(timeout=60) as anonymous:  # the signed URL needs no key
        full = anonymous.get(url)
        assert full.status_code == 200
        assert full.headers["content-type"] == "video/mp4"
        assert full.headers["accept-ranges"] == "bytes"
        size = len(full.content)
        assert int(full.headers["content-length"]) == size

        part = anonymous.get(url, headers={"Range": "bytes=0-1023"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 0-1023/{size}"
        assert part.content == full.content[:1024]

    info = probe(full.content)
    assert info["codec"] == "h264"
    assert (info["width"], info["height"]) == (WIDTH, HEIGHT)
    assert info["fps"] == FPS
    assert abs(info["frames"] - DURATION_S * FPS) <= 1
    assert abs(info["seconds"] - DURATION_S) <= 1 / FPS

    after = balance(api)
    assert before["credits"] - after["credits"] == COST
    assert after["held_credits"] == before["held_credits"]
    assert after["available_credits"] == after["credits"] - after["held_credits"]

    advance(api, 24 * 3600)
    with httpx.Client(timeout=60) as anonymous:
        expired = anonymous.get(url)
    assert expired.status_code == 410
    error = expired.json()["error"]
    assert (error["type"], error["code"]) == ("not_found", "output_expired")
    assert error["request_id"] == expired.headers["Aurous-Request-Id"]

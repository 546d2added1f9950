"""Output proxies: PNG and MP4 bytes behind signed URLs, auth, Range requests, retention (reference §2.1-§2.3, §7)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import av
import pytest
from PIL import Image
from starlette.testclient import TestClient

from mockserver import InMemoryStore, VirtualClock, create_app
from tests.conftest import BASE_URL, START, make_settings, new_api_key
from tests.helpers import REQUEST_ID, assert_envelope

IMAGE_DONE = 2 + 10
VIDEO_DONE = 3 + 30
RETENTION = 86400
PINNED = {
    "rate_limits_enabled": False,
    "image_pending_seconds": 2,
    "image_processing_seconds": 10,
    "video_pending_seconds": 3,
    "video_processing_seconds": 30,
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """One app for the module; every test isolates itself with a fresh key (team, clock, balance)."""
    app = create_app(make_settings(**PINNED), clock=VirtualClock(START), store=InMemoryStore())
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def other() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def advance(client: TestClient, headers: dict[str, str], seconds: float) -> None:
    assert client.post("/_mock/clock/advance", json={"seconds": seconds}, headers=headers).status_code == 200


def finished(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any], wait: float) -> dict:
    """Create a generation, move the clock to its finish instant and read it (which mints fresh tokens)."""
    created = client.post(path, json=body, headers=headers)
    assert created.status_code == 201, created.text
    advance(client, headers, wait)
    read = client.get(f"/v1/images/{created.json()['id']}", headers=headers).json()
    assert read["status"] == "succeeded"
    return dict(read)


def finished_image(client: TestClient, headers: dict[str, str], **body: Any) -> dict:
    return finished(client, headers, "/v1/images", {"prompt": "a quiet harbour", **body}, IMAGE_DONE)


def finished_video(client: TestClient, headers: dict[str, str], **body: Any) -> dict:
    video = {"video_lora_id": "seedance-1-pro", "resolution": "480p", "duration": 2, **body}
    return finished(client, headers, "/v1/videos", video, VIDEO_DONE)


def local(url: str) -> str:
    """The path and query of an output URL (the client already targets the test server)."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE_URL
    return f"{parts.path}?{parts.query}"


def without_token(url: str) -> str:
    return urlsplit(url).path


def with_token(url: str, token: str) -> str:
    return f"{urlsplit(url).path}?{urlencode({'token': token})}"


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


# --- images -------------------------------------------------------------------------------------------------


def test_image_output_is_png_of_exact_size(client: TestClient, headers: dict[str, str]) -> None:
    gen = finished_image(client, headers, width=1088, height=1024, count=2)
    for url in gen["output_urls"]:
        response = client.get(local(url))
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.format == "PNG"
            assert image.size == (1088, 1024)


def test_image_output_is_deterministic(client: TestClient, headers: dict[str, str]) -> None:
    gen = finished_image(client, headers, size="square", seed=7)
    first = client.get(local(gen["output_urls"][0]))
    second = client.get(without_token(gen["output_urls"][0]), headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    with Image.open(io.BytesIO(first.content)) as image:
        assert image.size == (1024, 1024)


def test_image_output_index_beyond_count_is_404(client: TestClient, headers: dict[str, str]) -> None:
    gen = finished_image(client, headers, count=2)
    base = without_token(gen["output_urls"][0]).rsplit("/", 1)[0]
    assert client.get(f"{base}/1", headers=headers).status_code == 200
    assert_envelope(client.get(f"{base}/2", headers=headers), 404, "resource_not_found")
    assert_envelope(client.get(f"{base}/99", headers=headers), 404, "resource_not_found")


def test_image_output_token_alone_suffices(client: TestClient, headers: dict[str, str]) -> None:
    gen = finished_image(client, headers)
    assert client.get(local(gen["output_urls"][0])).status_code == 200


def test_image_output_owner_key_alone_suffices(client: TestClient, headers: dict[str, str]) -> None:
    gen = finished_image(client, headers)
    assert client.get(without_token(gen["output_urls"][0]), headers=headers).status_code == 200


def test_image_output_tampered_token_is_401(client: TestClient, headers: dict[str, str]) -> None:
    url = finished_image(client, headers)["output_urls"][0]
    token = token_of(url)
    expires, _, signature = token.partition(".")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    for bad in (f"{expires}.{flipped}", f"{int(expires) + 3600}.{signature}", "garbage", ""):
        response = client.get(with_token(url, bad))
        error = assert_envelope(response, 401, "invalid_api_key")
        assert error["type"] == "authentication"


def test_image_output_token_is_bound_to_its_index(client: TestClient, headers: dict[str, str]) -> None:
    urls = finished_image(client, headers, count=2)["output_urls"]
    swapped = with_token(urls[1], token_of(urls[0]))
    assert_envelope(client.get(swapped), 401, "invalid_api_key")


def test_image_output_without_token_or_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    url = finished_image(client, headers)["output_urls"][0]
    assert_envelope(client.get(without_token(url)), 401, "missing_api_key")


def test_image_output_another_teams_key_is_404(
    client: TestClient, headers: dict[str, str], other: dict[str, str]
) -> None:
    url = finished_image(client, headers)["output_urls"][0]
    assert_envelope(client.get(without_token(url), headers=other), 404, "resource_not_found")


def test_image_output_expires_24_hours_after_completion(client: TestClient, headers: dict[str, str]) -> None:
    url = finished_image(client, headers)["output_urls"][0]
    advance(client, headers, RETENTION - 1)
    assert client.get(local(url)).status_code == 200
    assert client.get(without_token(url), headers=headers).status_code == 200
    advance(client, headers, 2)  # 86,401 s past completion
    assert_envelope(client.get(local(url)), 410, "output_expired")
    assert_envelope(client.get(without_token(url), headers=headers), 410, "output_expired")


def test_image_output_expired_even_with_freshly_minted_url(client: TestClient, headers: dict[str, str]) -> None:
    gen = finished_image(client, headers)
    advance(client, headers, RETENTION + 1)
    fresh = client.get(f"/v1/images/{gen['id']}", headers=headers).json()["output_urls"][0]
    assert_envelope(client.get(local(fresh)), 410, "output_expired")


def test_image_output_before_success_has_no_output_urls(client: TestClient, headers: dict[str, str]) -> None:
    created = client.post("/v1/images", json={"prompt": "p"}, headers=headers).json()
    assert created["output_urls"] is None
    response = client.get(f"/v1/images/{created['id']}/output/0", headers=headers)
    assert response.status_code in (404, 422)  # nothing to serve yet; the code is not documented


def test_image_output_unknown_generation_is_404(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/images/img_01HXMQ7Z3K8Y2ABCDEFGHJKMNP/output/0", headers=headers)
    assert_envelope(response, 404, "resource_not_found")


# --- videos -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video(client: TestClient) -> dict[str, Any]:
    """One finished 480p 2 s video, shared by the read-only byte tests below."""
    headers = {"X-Api-Key": new_api_key()}
    gen = finished_video(client, headers)
    full = client.get(local(gen["output_video_url"]))
    assert full.status_code == 200
    return {"gen": gen, "headers": headers, "url": local(gen["output_video_url"]), "bytes": full.content}


def test_video_output_is_mp4_with_accept_ranges(client: TestClient, video: dict[str, Any]) -> None:
    response = client.get(video["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert int(response.headers["content-length"]) == len(video["bytes"])
    assert response.content == video["bytes"]


def test_video_output_frames_match_seedance_size(video: dict[str, Any]) -> None:
    with av.open(io.BytesIO(video["bytes"])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 864, 480)  # 480p 16:9
        assert stream.average_rate == 24
        assert sum(1 for _ in container.decode(stream)) == 48  # 2 s at 24 fps


def test_video_output_range_is_206_partial_content(client: TestClient, video: dict[str, Any]) -> None:
    size = len(video["bytes"])
    response = client.get(video["url"], headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-99/{size}"
    assert response.content == video["bytes"][:100]
    assert len(response.content) == 100


def test_video_output_suffix_range(client: TestClient, video: dict[str, Any]) -> None:
    size = len(video["bytes"])
    response = client.get(video["url"], headers={"Range": "bytes=-10"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    assert response.content == video["bytes"][-10:]


def test_video_output_open_ended_range(client: TestClient, video: dict[str, Any]) -> None:
    size = len(video["bytes"])
    response = client.get(video["url"], headers={"Range": f"bytes={size - 5}-"})
    assert response.status_code == 206
    assert response.content == video["bytes"][-5:]


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{end}"])
def test_video_output_unsatisfiable_range_is_416_envelope(
    client: TestClient, video: dict[str, Any], header: str
) -> None:
    size = len(video["bytes"])
    response = client.get(video["url"], headers={"Range": header.format(size=size, end=size + 10)})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param", "doc_url", "request_id"}
    assert error["doc_url"] == f"https://docs.aurous-labs.com/errors#{error['code']}"
    assert REQUEST_ID.match(error["request_id"])
    assert error["request_id"] == response.headers["Aurous-Request-Id"]


def test_video_output_single_byte_range(client: TestClient, video: dict[str, Any]) -> None:
    response = client.get(video["url"], headers={"Range": "bytes=0-0"})
    assert response.status_code == 206
    assert response.content == video["bytes"][:1]


def test_video_output_ignores_unknown_range_unit(client: TestClient, video: dict[str, Any]) -> None:
    response = client.get(video["url"], headers={"Range": "items=0-5"})
    assert response.status_code == 200
    assert response.content == video["bytes"]


def test_video_output_second_download_is_served_from_media_cache(client: TestClient, headers: dict[str, str]) -> None:
    media = client.app.state.emulator.media  # type: ignore[attr-defined]
    gen = finished_video(client, headers, prompt="a cache probe")
    renders = media.renders
    first = client.get(local(gen["output_video_url"]))
    assert media.renders == renders + 1
    hits = media.hits
    second = client.get(without_token(gen["output_video_url"]), headers=headers)
    assert second.content == first.content
    assert media.renders == renders + 1
    assert media.hits == hits + 1


def test_video_output_auth_rules(client: TestClient, video: dict[str, Any], other: dict[str, str]) -> None:
    path = without_token(video["url"])
    assert client.get(path, headers=video["headers"]).status_code == 200
    assert_envelope(client.get(path), 401, "missing_api_key")
    assert_envelope(client.get(with_token(path, "1.deadbeef")), 401, "invalid_api_key")
    assert_envelope(client.get(path, headers=other), 404, "resource_not_found")


def test_video_output_expires_24_hours_after_completion(client: TestClient, headers: dict[str, str]) -> None:
    gen = finished_video(client, headers, prompt="expiry")
    url = local(gen["output_video_url"])
    advance(client, headers, RETENTION + 1)
    assert_envelope(client.get(url), 410, "output_expired")
    assert_envelope(client.get(without_token(url), headers=headers), 410, "output_expired")


def test_video_route_does_not_serve_images(client: TestClient, headers: dict[str, str]) -> None:
    gen = finished_image(client, headers)
    assert_envelope(client.get(f"/v1/videos/{gen['id']}/output", headers=headers), 404, "resource_not_found")


def test_image_route_does_not_serve_videos(client: TestClient, video: dict[str, Any]) -> None:
    gen_id = video["gen"]["id"]
    response = client.get(f"/v1/images/{gen_id}/output/0", headers=video["headers"])
    assert_envelope(response, 404, "resource_not_found")


def test_output_urls_point_at_called_host(client: TestClient, video: dict[str, Any]) -> None:
    assert video["gen"]["output_video_url"].startswith(f"{BASE_URL}/v1/videos/{video['gen']['id']}/output?token=")

"""Legacy routes and /docs: 308 redirects with deprecation headers until the Sunset date (reference §1.1, §1.12)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from mockserver.clock import VirtualClock
from tests.conftest import ClientFactory
from tests.helpers import assert_envelope

SUNSET = "Tue, 04 Aug 2026 00:00:00 GMT"


def assert_redirect(response, location: str, deprecated: str) -> None:
    assert response.status_code == 308, response.text
    assert response.headers["Location"] == location
    assert response.headers["Aurous-Deprecated"] == deprecated
    assert response.headers["Sunset"] == SUNSET
    assert response.headers["Aurous-Version"] == "2026-05-15"
    assert response.headers["Aurous-Request-Id"].startswith("req_")


@pytest.mark.parametrize(
    ("method", "path", "location"),
    [
        ("POST", "/v1/generations", "/v1/images"),
        ("GET", "/v1/generations", "/v1/images"),
        ("GET", "/v1/generations/abc", "/v1/images/abc"),
        ("GET", "/v1/generations/abc?x=1", "/v1/images/abc?x=1"),
        ("GET", "/v1/generations/abc/output/0?token=t&y=2", "/v1/images/abc/output/0?token=t&y=2"),
        ("POST", "/v1/video-generations", "/v1/videos"),
        ("GET", "/v1/video-generations/vid_1", "/v1/videos/vid_1"),
    ],
)
def test_legacy_route_redirects_308(client: TestClient, method: str, path: str, location: str) -> None:
    response = client.request(method, path, follow_redirects=False)
    assert_redirect(response, location, "route")


def test_legacy_redirect_needs_no_key(client: TestClient) -> None:
    assert client.post("/v1/generations", follow_redirects=False).status_code == 308


def test_legacy_redirect_keeps_method_and_body_when_followed(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/v1/generations", headers=headers, json={"prompt": "a red fox"})
    assert response.status_code == 201, response.text
    assert response.json()["id"].startswith("img_")
    assert response.history[0].status_code == 308


def test_legacy_redirect_percent_encodes_non_ascii_paths(client: TestClient) -> None:
    response = client.get("/v1/generations/%E2%98%83%C2%AB", follow_redirects=False)
    assert_redirect(response, "/v1/images/%E2%98%83%C2%AB", "route")


def test_legacy_redirects_switched_off_are_404(client_for: ClientFactory) -> None:
    client = client_for(legacy_redirects=False)
    for method, path in [
        ("POST", "/v1/generations"),
        ("GET", "/v1/generations/abc"),
        ("POST", "/v1/video-generations"),
    ]:
        response = client.request(method, path, follow_redirects=False)
        assert_envelope(response, 404, "resource_not_found")
        assert "Location" not in response.headers


def test_docs_redirects_before_sunset(client: TestClient) -> None:
    assert_redirect(client.get("/docs", follow_redirects=False), "https://docs.aurous-labs.com/", "docs")


def test_docs_redirects_until_last_second(client: TestClient, fake_clock: VirtualClock) -> None:
    fake_clock.set(datetime(2026, 8, 3, 23, 59, 59, tzinfo=UTC))
    assert client.get("/docs", follow_redirects=False).status_code == 308


@pytest.mark.parametrize("when", [datetime(2026, 8, 4, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)])
def test_docs_is_404_from_sunset(client: TestClient, fake_clock: VirtualClock, when: datetime) -> None:
    fake_clock.set(when)
    response = client.get("/docs", follow_redirects=False)
    assert_envelope(response, 404, "resource_not_found")
    assert "Location" not in response.headers

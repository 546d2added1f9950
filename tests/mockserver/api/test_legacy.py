"""Legacy routes and /docs: 308 redirects with deprecation headers until the Sunset date (reference §1.1, §1.12)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from mockserver.clock import VirtualClock
from tests.conftest import START, ClientFactory, new_api_key
from tests.helpers import assert_envelope

SUNSET = "Tue, 04 Aug 2026 00:00:00 GMT"
DOCS = "https://docs.aurous-labs.com/"


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


# --- after the Sunset, on the team's clock ------------------------------------------------------------------

UNTIL_SUNSET = (datetime(2026, 8, 4, tzinfo=UTC) - START).total_seconds()


def advance(client: TestClient, headers: dict[str, str], seconds: float) -> None:
    assert client.post("/_mock/clock/advance", json={"seconds": seconds}, headers=headers).status_code == 200


def test_a_legacy_client_breaks_once_its_team_clock_passes_the_sunset(client: TestClient, headers: dict[str, str]):
    """A client still on /v1/generations works (following the 308) until the Sunset, then meets 404."""
    before = client.post("/v1/generations", headers=headers, json={"prompt": "a red fox"})
    assert before.status_code == 201, before.text
    advance(client, headers, UNTIL_SUNSET - 1)
    assert client.get("/v1/generations", headers=headers, follow_redirects=False).status_code == 308
    advance(client, headers, 1)
    gone = [("POST", "/v1/generations"), ("GET", "/v1/generations/abc"), ("POST", "/v1/video-generations")]
    for method, path in gone:
        response = client.request(method, path, headers=headers, json={"prompt": "a red fox"})
        assert_envelope(response, 404, "resource_not_found")
        assert "Location" not in response.headers
        assert "Sunset" not in response.headers
    # The successors still work, other teams' clocks are their own, and a request without a key reads the base clock.
    assert client.post("/v1/images", headers=headers, json={"prompt": "a red fox"}).status_code == 201
    other = {"X-Api-Key": new_api_key()}
    assert client.post("/v1/generations", headers=other, follow_redirects=False).status_code == 308
    assert client.post("/v1/generations", follow_redirects=False).status_code == 308
    assert client.get("/docs", headers=headers, follow_redirects=False).status_code == 404


def test_legacy_redirects_after_the_sunset_are_a_setting(client_for: ClientFactory) -> None:
    client = client_for(legacy_after_sunset="redirect")
    headers = {"X-Api-Key": new_api_key()}
    advance(client, headers, UNTIL_SUNSET + 86400)
    assert_redirect(client.post("/v1/generations", headers=headers, follow_redirects=False), "/v1/images", "route")
    assert_redirect(client.get("/docs", headers=headers, follow_redirects=False), DOCS, "docs")


# --- X-RateLimit-* on every response of an authenticated request -------------------------------------------------

RATE = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def rate(response) -> tuple[str, ...] | None:
    if not any(name in response.headers for name in RATE):
        return None
    return tuple(response.headers[name] for name in RATE)


@pytest.mark.parametrize(
    ("method", "path", "status", "limit"),
    [
        ("POST", "/v1/generations", 308, "120"),  # the successor's class: images_post
        ("GET", "/v1/generations/abc", 308, "1200"),
        ("GET", "/docs", 308, "1200"),
        ("GET", "/v1/nowhere", 404, "1200"),
        ("DELETE", "/v1/balance", 405, "1200"),
        ("PUT", "/v1/generations", 405, "1200"),
    ],
)
def test_rate_limit_headers_on_redirects_and_unknown_routes(
    client: TestClient, headers: dict[str, str], method: str, path: str, status: int, limit: str
) -> None:
    response = client.request(method, path, headers=headers, follow_redirects=False)
    assert response.status_code == status
    limit_, remaining, reset = rate(response) or ("", "", "")
    assert (limit_, remaining) == (limit, limit)  # reported, no token taken (inferred)
    assert int(reset) == int(START.timestamp())
    assert rate(client.request(method, path, follow_redirects=False)) is None  # unauthenticated: none


def test_rate_limit_headers_of_a_non_operation_show_the_bucket_as_it_stands(
    client: TestClient, headers: dict[str, str]
) -> None:
    for _ in range(3):
        assert client.get("/v1/balance", headers=headers).status_code == 200
    limit, remaining, _ = rate(client.get("/v1/nowhere", headers=headers)) or ("", "", "")
    assert (limit, remaining) == ("1200", "1197")
    assert client.get("/v1/balance", headers=headers).headers["X-RateLimit-Remaining"] == "1196"


def test_rate_limit_headers_after_the_sunset_too(client: TestClient, headers: dict[str, str]) -> None:
    advance(client, headers, UNTIL_SUNSET)
    response = client.post("/v1/generations", headers=headers)
    assert response.status_code == 404
    assert rate(response) is not None
    assert response.headers["X-RateLimit-Limit"] == "120"

"""End to end: the emulator under real uvicorn on loopback, via the console entry point and the live_server fixture."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mockserver import Settings
from mockserver.testing import EmulatorThread
from tests.conftest import new_api_key
from tests.helpers import REQUEST_ID, assert_envelope, cli_process

BANNER = re.compile(r"^aurous-mock \S+ serving on (http://127\.0\.0\.1:(\d+))$")

pytestmark = pytest.mark.e2e


def check_balance(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        response = client.get("/v1/balance", headers={"X-Api-Key": "al_live_test"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "credits": 1000.0,
            "held_credits": 0.0,
            "available_credits": 1000.0,
            "currency": "credit",
            "billing_mode": "metered",
        }
        assert response.headers["Aurous-Version"] == "2026-05-15"
        assert REQUEST_ID.match(response.headers["Aurous-Request-Id"])
        assert response.headers["X-RateLimit-Limit"] == "1200"
        assert_envelope(client.get("/v1/balance"), 401, "missing_api_key")
        assert_envelope(client.get("/v1/nowhere", headers={"X-Api-Key": "al_live_test"}), 404, "resource_not_found")


def test_serve_subprocess_port_zero(tmp_path: Path) -> None:
    with cli_process(tmp_path, "serve", "--port", "0", "--clock", "virtual", "--log-level", "warning") as cli:
        match = cli.first_line(BANNER)
        assert int(match.group(2)) != 0
        check_balance(match.group(1))


def test_live_server_serves_balance(live_server: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", live_server)
    check_balance(live_server)


def test_legacy_redirect_until_the_sunset_then_404() -> None:
    """Before the Sunset a legacy create redirects; a team whose clock passed it meets 404 (today's real date is past
    it: the server starts its virtual clock before, explicitly)."""
    settings = Settings(clock="virtual", clock_start=datetime(2026, 8, 1, tzinfo=UTC))
    key = {"X-Api-Key": new_api_key()}
    with EmulatorThread(settings) as server, httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post("/v1/generations", headers=key)
        assert response.status_code == 308
        assert response.headers["Location"] == "/v1/images"
        assert response.headers["Sunset"] == "Tue, 04 Aug 2026 00:00:00 GMT"
        assert response.headers["X-RateLimit-Limit"] == "120"
        assert client.post("/_mock/clock/advance", json={"seconds": 3 * 86400}, headers=key).status_code == 200
        assert_envelope(client.post("/v1/generations", headers=key), 404, "resource_not_found")
        assert client.post("/v1/generations").status_code == 308  # no key: the base clock, still before

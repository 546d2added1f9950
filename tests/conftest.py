"""Fixtures for the whole suite: settings, a virtual clock, a store, the app, in-process and live clients."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from starlette.applications import Starlette
from starlette.testclient import TestClient

from mockserver import InMemoryStore, Settings, VirtualClock, create_app
from mockserver.testing import EmulatorThread

# No example database in the work tree and no per-example deadline (the in-process app is fast but CI is not).
hypothesis_settings.register_profile("aurous-mock", database=None, deadline=None)
hypothesis_settings.load_profile("aurous-mock")

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
BASE_URL = "http://testserver"
ClientFactory = Callable[..., TestClient]


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """``AUROUS_MOCK_*`` variables of the machine running the suite must not change what a test sees."""
    for name in list(os.environ):
        if name.upper().startswith("AUROUS_MOCK_"):
            monkeypatch.delenv(name)


def new_api_key() -> str:
    """A fresh well-formed key: the emulator provisions a new team for it."""
    return f"al_live_{secrets.token_hex(32)}"


def make_settings(**overrides: Any) -> Settings:
    return Settings(**{"clock": "virtual", "seed": 1234, "clock_start": START, **overrides})


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def fake_clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def app(settings: Settings, fake_clock: VirtualClock, store: InMemoryStore) -> Starlette:
    return create_app(settings, clock=fake_clock, store=store)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def client_for(fake_clock: VirtualClock) -> Iterator[ClientFactory]:
    """Build extra clients with other settings (``client_for(rate_limits_enabled=False)``), closed at teardown.

    They share the test's ``fake_clock`` but each gets its own store.
    """
    with ExitStack() as stack:

        def build(**overrides: Any) -> TestClient:
            app = create_app(make_settings(**overrides), clock=fake_clock, store=InMemoryStore())
            return stack.enter_context(TestClient(app, base_url=BASE_URL))

        yield build


@pytest.fixture
def api_key() -> str:
    return new_api_key()


@pytest.fixture
def headers(api_key: str) -> dict[str, str]:
    return {"X-Api-Key": api_key}


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """A real uvicorn on a free loopback port, one per test run; yields its base URL."""
    with EmulatorThread(Settings(clock="virtual")) as server:
        yield server.base_url

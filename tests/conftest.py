"""Fixtures for the whole suite: settings, a virtual clock, a store, the app, in-process and live clients."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from starlette.applications import Starlette
from starlette.testclient import TestClient

from mockserver import InMemoryStore, Settings, Store, VirtualClock, create_app
from mockserver.store import open_store
from mockserver.testing import EmulatorThread
from tests.helpers import NO_REDIS, redis_server

# No example database in the work tree and no per-example deadline (the in-process app is fast but CI is not).
hypothesis_settings.register_profile("aurous-mock", database=None, deadline=None)
hypothesis_settings.load_profile("aurous-mock")

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
BASE_URL = "http://testserver"
ClientFactory = Callable[..., TestClient]
STORES = ("memory", "sqlite", "redis")  # the backends a test marked ``every_store`` runs against


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core plus one. Many end-to-end tests wait on real sockets, subprocesses and
    browsers; a spare worker keeps both cores busy meanwhile (the suite's wall time is its budget)."""
    return (os.cpu_count() or 1) + 1


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "every_store: run the test against each store backend (memory, sqlite, redis)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``every_store`` that uses the ``store`` (or ``module_store``) fixture runs once per backend."""
    if not metafunc.definition.get_closest_marker("every_store"):
        return
    if "store" in metafunc.fixturenames:
        metafunc.parametrize("store", STORES, indirect=True)
    elif "module_store" in metafunc.fixturenames:
        metafunc.parametrize("module_store", STORES, indirect=True, scope="module")


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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` on a free 127.0.0.1 port for the session; skipped only where it is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip(NO_REDIS)
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def store_url(backend: str, request: pytest.FixtureRequest, directory: Path) -> str:
    """A fresh, empty store of ``backend``: a new SQLite file, or a new key prefix on the session's Redis."""
    if backend == "sqlite":
        return f"sqlite:///{directory / 'state.db'}"
    if backend == "redis":
        return f"{request.getfixturevalue('redis_url')}?prefix=t{secrets.token_hex(6)}"
    return "memory"


def _opened(request: pytest.FixtureRequest, directory: Path) -> Iterator[Store]:
    backend = getattr(request, "param", "memory")
    if backend == "memory":
        yield InMemoryStore()
        return
    opened = open_store(store_url(backend, request, directory))
    yield opened
    opened.close()


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store: in memory, or (parametrized indirectly, see ``every_store``) ``sqlite`` or ``redis``."""
    yield from _opened(request, tmp_path)


@pytest.fixture(scope="module")
def module_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The same for a module-scoped app (its tests stay apart by each using a fresh key)."""
    yield from _opened(request, tmp_path_factory.mktemp("store"))


@pytest.fixture
def app(settings: Settings, fake_clock: VirtualClock, store: Store) -> Starlette:
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

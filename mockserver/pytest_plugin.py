"""pytest plugin: ``aurous_mock`` (one emulator per session, a fresh team per test) and a webhook receiver.

Installed with the distribution (entry point ``pytest11``), so any test can ask for the fixtures::

    def test_video_fails_cleanly(aurous_mock):
        with aurous_mock.scenario("fail", when={"operation": "createVideo"}):
            job = my_client(aurous_mock.base_url, aurous_mock.api_key).make_video("a boat")
        aurous_mock.clock.advance(600)
        assert my_client(...).status(job) == "failed"

Each test gets its own key, hence its own team, balance, clock and scenarios, so tests run in parallel
(pytest-xdist) against one emulator without disturbing each other. ``--aurous-url`` points every worker
at an emulator that is already running (e.g. the Docker image) instead of starting one per worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mockserver.clock import SEEDED_START as SEEDED_START  # re-exported: the seeded run's first instant
from mockserver.settings import Settings
from mockserver.testing import AurousMock, EmulatorThread, ServerThread


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aurous-mock", "aurous-mock emulator fixtures")
    group.addoption("--aurous-url", default=None, help="use the emulator running at this URL instead of starting one")
    group.addoption("--aurous-control-token", default=None, help="Aurous-Mock-Control-Token for --aurous-url")
    group.addoption("--aurous-seed", type=int, default=None, help="seed of the emulator started by the plugin")
    parser.addini("aurous_mock_clock", "base clock of the plugin's emulator (virtual|system)", default="virtual")


@pytest.fixture(scope="session")
def aurous_mock_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """The base URL of the session's emulator: ``--aurous-url``, or one started on a free loopback port."""
    url = pytestconfig.getoption("--aurous-url")
    if url:
        yield str(url).rstrip("/")
        return
    clock = pytestconfig.getini("aurous_mock_clock")
    seed = pytestconfig.getoption("--aurous-seed")
    # Seeded, the virtual clock starts at SEEDED_START (mockserver.core.shared), so ids (which embed time) repeat.
    settings = Settings(clock=clock, seed=seed, host="127.0.0.1", port=0)
    with EmulatorThread(settings) as server:
        yield server.base_url


@pytest.fixture
def aurous_mock(
    aurous_mock_server: str, pytestconfig: pytest.Config, request: pytest.FixtureRequest
) -> Iterator[AurousMock]:
    """A fresh team on the session's emulator: ``.base_url``, ``.api_key``, ``.client``, ``.clock``, ``.scenario()``,
    ``.journal``, ``.webhooks.deliveries``, ``.balance``, ``.reset()``.

    With ``--aurous-seed`` the team's key is derived from the seed and the test's node id (and the team is reset
    first), so a seeded run creates the same ids every time, in any order and on any xdist worker.
    """
    token = pytestconfig.getoption("--aurous-control-token")
    mock = AurousMock.fresh(
        aurous_mock_server, token, seed=pytestconfig.getoption("--aurous-seed"), name=request.node.nodeid
    )
    try:
        yield mock
    finally:
        mock.close()


@dataclass
class WebhookReceiver:
    """A loopback HTTP receiver that records every delivery; verify them with the endpoint's secret."""

    url: str
    listener: Any
    secret: str | None = None

    def events(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait for ``count`` deliveries and return their JSON bodies, each verified when ``secret`` is set.

        Raises ``contracts.SignatureVerificationError`` for a delivery whose signature does not verify.
        """
        from contracts import verify_signature

        received = self.listener.wait_for(count, timeout)
        if self.secret is not None:
            for item in received:
                verify_signature(item.body, item.headers.get("aurous-webhook-signature"), self.secret)
        return [item.payload for item in received]


@pytest.fixture
def aurous_webhook_receiver() -> Iterator[WebhookReceiver]:
    """A receiver on ``http://127.0.0.1:<free port>/hooks``; set ``.secret`` to the endpoint's to verify."""
    from contracts.listen import Listener, build_app

    listener = Listener()
    with ServerThread(build_app(listener), name="aurous-webhook-receiver", lifespan="off") as server:
        yield WebhookReceiver(url=f"{server.base_url}/hooks", listener=listener)

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

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from mockserver.clock import SEEDED_START as SEEDED_START  # re-exported: the seeded run's first instant (stdlib only)

if TYPE_CHECKING:
    from mockserver.testing import AurousMock

# pytest loads this module in every run of every project that installs aurous-mock, so it imports nothing of the
# emulator, uvicorn or httpx until a test asks for a fixture (issue 18: loading the plugins costs ≤ 100 ms).


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Called as soon as the plugin is registered, so the emulator's modules, imported later by the fixture or by a
    # conftest, are not rewritten by pytest (the helper says why; also with ``-p no:aurous_contracts``).
    from contracts.plugin import exempt_from_assert_rewrite

    exempt_from_assert_rewrite(pluginmanager)
    group = parser.getgroup("aurous-mock", "aurous-mock emulator fixtures")
    group.addoption("--aurous-url", default=None, help="use the emulator running at this URL instead of starting one")
    group.addoption("--aurous-control-token", default=None, help="Aurous-Mock-Control-Token for --aurous-url")
    group.addoption("--aurous-seed", type=int, default=None, help="seed of the emulator started by the plugin")
    parser.addini("aurous_mock_clock", "base clock of the plugin's emulator (virtual|system)", default="virtual")
    parser.addini(
        "aurous_mock_fast_exit",
        "once the plugin has started an emulator, skip the shutdown's garbage collections (true|false)",
        type="bool",
        default=True,
    )


@pytest.fixture(scope="session")
def aurous_mock_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """The base URL of the session's emulator: ``--aurous-url``, or one started on a free loopback port."""
    url = pytestconfig.getoption("--aurous-url")
    if url:
        yield str(url).rstrip("/")
        return
    from mockserver.settings import Settings
    from mockserver.testing import EmulatorThread

    clock = pytestconfig.getini("aurous_mock_clock")
    seed = pytestconfig.getoption("--aurous-seed")
    # Seeded, the virtual clock starts at SEEDED_START (mockserver.clock), so ids (which embed time) repeat.
    settings = Settings(clock=clock, seed=seed, host="127.0.0.1", port=0)
    server = EmulatorThread(settings).start()
    if pytestconfig.getini("aurous_mock_fast_exit"):
        import atexit

        atexit.unregister(_freeze_at_exit)  # once, however many in-process (pytester) sessions ran
        atexit.register(_freeze_at_exit)  # at the process's exit, not at a session's end
    try:
        yield server.base_url
    finally:
        # The session is over, so nothing is in flight and the process is about to end: waiting for uvicorn's
        # graceful shutdown would add 0.1–0.2 s to every run (issue 18); the media files are removed at once.
        server.stop(wait=False)


def _freeze_at_exit() -> None:
    """Collect once more, then put every object still alive out of the collector's reach for the shutdown.

    The interpreter's shutdown collects the whole heap several times, the emulator's objects included: 120–200 ms
    of a one-test run on a 2-core machine, ~40 ms once frozen (bench/README, issue 18 §2). Garbage that exists now
    is still finalized (the collection); what the shutdown itself orphans in cycles is not, which Python never
    promised anyway (``__del__`` is not guaranteed to run for objects alive at exit). ``aurous_mock_fast_exit =
    false`` in the ini file keeps the usual shutdown.
    """
    import gc

    gc.collect()
    gc.freeze()


@pytest.fixture
def aurous_mock(
    aurous_mock_server: str, pytestconfig: pytest.Config, request: pytest.FixtureRequest
) -> Iterator[AurousMock]:
    """A fresh team on the session's emulator: ``.base_url``, ``.api_key``, ``.client``, ``.clock``, ``.scenario()``,
    ``.journal``, ``.webhooks.deliveries``, ``.balance``, ``.reset()``.

    With ``--aurous-seed`` the team's key is derived from the seed and the test's node id (and the team is reset
    first), so a seeded run creates the same ids every time, in any order and on any xdist worker.
    """
    from mockserver.testing import AurousMock

    token = pytestconfig.getoption("--aurous-control-token")
    mock = AurousMock.fresh(
        aurous_mock_server, token, seed=pytestconfig.getoption("--aurous-seed"), name=request.node.nodeid
    )
    try:
        yield mock
    finally:
        mock.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used ``aurous_mock`` says where to look: the dashboard opened on its own team."""
    report: Any = yield
    mock = getattr(item, "funcargs", {}).get("aurous_mock")
    # Only a test that used the fixture imported ``mockserver.testing``; importing it here for every report would
    # undo the lazy plugin load (issue 18).
    testing = sys.modules.get("mockserver.testing")
    if report.failed and testing is not None and isinstance(mock, testing.AurousMock):
        report.sections.append(("aurous-mock", f"this test's team in the dashboard: {mock.dashboard_url}"))
    return report  # type: ignore[no-any-return]


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
    from mockserver.testing import ServerThread

    listener = Listener()
    with ServerThread(build_app(listener), name="aurous-webhook-receiver", lifespan="off", ws="none") as server:
        yield WebhookReceiver(url=f"{server.base_url}/hooks", listener=listener)

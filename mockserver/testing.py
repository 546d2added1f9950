"""Test helpers: run the emulator in a thread, and a per-team handle over its HTTP control plane.

Used by the pytest plugin (``mockserver.pytest_plugin``) and usable on their own::

    with EmulatorThread(Settings(clock="virtual")) as server:
        mock = AurousMock.fresh(server.base_url)
        mock.clock.advance(3600)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Self

import uvicorn
from starlette.types import ASGIApp

from mockserver import _httpx
from mockserver.app import create_app
from mockserver.server import config as server_config
from mockserver.settings import Settings

if TYPE_CHECKING:
    import httpx
    from uvicorn.config import WSProtocolType

    from mockserver._control_errors import ControlError as ControlError
    from mockserver._control_errors import ScenarioError as ScenarioError

STARTUP_TIMEOUT = 10.0
CONTROL_TIMEOUT = 30.0

# httpx (~60 ms, and as much again for its command-line client, which ``mockserver._httpx`` holds back) is
# imported when a test first uses the handle's client or control helpers, never by the fixture itself: a test whose
# code under test brings its own HTTP client does not pay for ours (issue 18 §2). ControlError and ScenarioError
# subclass httpx's HTTPStatusError, so they are made on first use too (``mockserver._control_errors``).
_LAZY = {"ControlError", "ScenarioError"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'mockserver.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module("mockserver._control_errors"), name)
    globals()[name] = value
    return value


class ServerThread:
    """An ASGI app under uvicorn in a daemon thread on a free loopback port; stops itself on exit.

    ``ws`` is uvicorn's WebSocket implementation: ``"none"`` for an HTTP-only app (the emulator, a webhook
    receiver) spares the start the import of the ``websockets`` library (~15 ms).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str = "aurous-mock",
        lifespan: Literal["on", "off"] = "on",
        ws: WSProtocolType = "auto",
    ) -> None:
        config = server_config(app, host="127.0.0.1", port=0, lifespan=lifespan, log_level="warning", ws=ws)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)
        self.base_url = ""

    def start(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:  # ~20 ms; a step of 1 ms adds at most that to the wait
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.thread.name} did not start")
            time.sleep(0.001)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self, *, wait: bool = True) -> None:
        """Ask uvicorn to shut down and, with ``wait``, wait until it has: 0.1–0.2 s of its graceful shutdown
        (its next tick, then a fixed pause for open connections) plus the app's lifespan shutdown."""
        self.server.should_exit = True
        if wait:
            self.thread.join(timeout=STARTUP_TIMEOUT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorThread(ServerThread):
    """The emulator on a free loopback port, in a thread (virtual clock unless ``settings`` say otherwise)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings(clock="virtual", host="127.0.0.1", port=0)
        self.app = create_app(self.settings)
        super().__init__(self.app, ws="none")  # the API is HTTP only

    def stop(self, *, wait: bool = True) -> None:
        """Shut down; without ``wait`` (a process about to end), the emulator's media files are removed at once
        instead of by its lifespan shutdown, which may not get to run."""
        super().stop(wait=wait)
        if not wait:
            self.app.state.emulator.close()


def new_key(seed: int | None = None, name: str = "") -> str:
    """A well-formed key the emulator gives its own team, so tests never share state.

    With a ``seed`` the key is derived from it and ``name`` (a test's node id), so a seeded run gets the same
    teams, hence the same ids, every time and whatever the order or the xdist worker.
    """
    if seed is None:
        return f"al_live_{secrets.token_hex(32)}"
    return f"al_live_{hashlib.sha256(f'{seed}:{name}'.encode()).hexdigest()}"


@dataclass
class Clock:
    """The team's clock on the control plane."""

    mock: AurousMock

    def now(self) -> datetime:
        return datetime.fromisoformat(self.mock.control("GET", "/_mock/clock")["now"])

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move this team's time forward; everything due fires before this returns."""
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        return datetime.fromisoformat(self.mock.control("POST", "/_mock/clock/advance", {"seconds": seconds})["now"])

    def set(self, when: datetime) -> datetime:
        return datetime.fromisoformat(self.mock.control("POST", "/_mock/clock/set", {"now": when.isoformat()})["now"])

    def sleep(self, seconds: float) -> None:
        """Advance the team's clock instead of sleeping: hand it to code under test in place of ``time.sleep``."""
        self.advance(seconds)

    def freeze(self) -> None:
        self.mock.control("POST", "/_mock/clock/freeze")

    def unfreeze(self) -> None:
        self.mock.control("POST", "/_mock/clock/unfreeze")


@dataclass
class Webhooks:
    """The team's webhook delivery log."""

    mock: AurousMock

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt, newest first."""
        return list(self.mock.control("GET", "/_mock/webhooks/deliveries")["data"])

    def flush(self) -> int:
        """Deliver everything due now and wait for it."""
        return int(self.mock.control("POST", "/_mock/webhooks/flush")["flushed"])


@dataclass
class Journal:
    """The team's journal (newest first). Filters: ``operation``, ``status`` (``404`` or ``4xx``), ``method``,
    ``since``, ``until``, ``kind`` (``public``/``control``)."""

    mock: AurousMock

    def entries(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self.mock.control("GET", "/_mock/journal", **filters)["data"])

    def count(self, **filters: Any) -> int:
        return int(self.mock.control("GET", "/_mock/journal/count", **filters)["count"])

    def clear(self) -> None:
        """Forget the history only; the team's state stays."""
        self.mock.control("DELETE", "/_mock/journal")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries())

    def __len__(self) -> int:
        return self.count()


@dataclass
class AurousMock:
    """One team of a running emulator: its key, an httpx client, and its control plane.

    Attributes:
        base_url: the emulator's URL, to give the code under test instead of ``https://api.aurous-labs.com``.
        api_key: a key of this team only.
        client: an ``httpx.Client`` that sends ``X-Api-Key`` (made on first use).
    """

    base_url: str
    api_key: str
    control_token: str | None = None
    clock: Clock = field(init=False)
    webhooks: Webhooks = field(init=False)
    _client: httpx.Client | None = field(init=False, default=None, repr=False)
    _client_lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.clock = Clock(self)
        self.webhooks = Webhooks(self)

    @property
    def client(self) -> httpx.Client:
        """An ``httpx.Client`` on ``base_url`` that sends ``X-Api-Key``.

        Made on first use: an ``http://`` emulator gets no TLS context (loading the CA bundle is ~40 ms).
        """
        with self._client_lock:
            if self._client is None:
                _httpx.load()
                import httpx

                verify = not self.base_url.startswith("http://")
                self._client = httpx.Client(
                    base_url=self.base_url, headers=self._headers(), timeout=CONTROL_TIMEOUT, verify=verify
                )
            return self._client

    def _headers(self) -> dict[str, str]:
        headers = {"X-Api-Key": self.api_key}
        if self.control_token:
            headers["Aurous-Mock-Control-Token"] = self.control_token
        return headers

    @classmethod
    def fresh(
        cls, base_url: str, control_token: str | None = None, *, seed: int | None = None, name: str = ""
    ) -> AurousMock:
        """A new team; seeded, a derived one whose state and history are forgotten first, so a rerun starts
        from the same state (reset keeps the journal on purpose: forgetting history is a separate verb)."""
        mock = cls(base_url.rstrip("/"), new_key(seed, name), control_token)
        if seed is not None:
            mock._declare("POST", "/_mock/reset")
            mock._declare("DELETE", "/_mock/journal")
        else:
            # A key used on the control plane is declared, so the handle works under ``serve --strict-keys`` too.
            mock._declare("GET", "/_mock/clock")
        return mock

    def _declare(self, method: str, path: str) -> None:
        """A control call of ``fresh`` without a body or a result, sent with the standard library so that the
        fixture does not import httpx (the comment on ``_LAZY`` says why). A refusal raises the same
        :class:`ControlError` as :meth:`control`; a failure to reach the emulator is sent again through
        :meth:`control`, so it raises the httpx error (``httpx.ConnectError`` …) it always raised."""
        url = self.base_url + path
        request = urllib.request.Request(url, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=CONTROL_TIMEOUT) as reply:
                reply.read()
        except urllib.error.HTTPError as refused:
            from mockserver._control_errors import reply_error

            try:
                body = refused.read()
            finally:
                refused.close()
            raise reply_error(method, url, refused.code, list(refused.headers.items()), body) from None
        except OSError:
            self.control(method, path)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def dashboard_url(self) -> str:
        """``/_mock/ui`` opened on this team: the key rides in the URL fragment, which never reaches the server."""
        return f"{self.base_url}/_mock/ui#key={self.api_key}"

    def control(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """Call a control route; raises :class:`ControlError` (the envelope's code, message, param) on failure."""
        response = self.client.request(method, path, json=body, params=params or None)
        if response.is_error:
            from mockserver._control_errors import ControlError

            raise ControlError(response)
        return response.json() if response.content else None

    @property
    def team(self) -> dict[str, Any]:
        """The team's state (``GET /_mock/team``): credits, billing mode, scope, default API version …"""
        return dict(self.control("GET", "/_mock/team"))

    def set_credits(self, credits: float) -> dict[str, Any]:
        """Set the team's credits (at least what is held; books an ``adjustment``); the team's new state."""
        return dict(self.control("PATCH", "/_mock/team", {"credits": credits}))

    def set_billing_mode(self, billing_mode: str) -> dict[str, Any]:
        """``metered`` (the default: credits gate and are charged) or e.g. ``exempt`` (never blocked or charged)."""
        return dict(self.control("PATCH", "/_mock/team", {"billing_mode": billing_mode}))

    @property
    def balance(self) -> dict[str, Any]:
        response = self.client.get("/v1/balance")
        response.raise_for_status()
        return dict(response.json())

    def reset(self) -> None:
        """Forget this team's state: generations, files, ledger, clock, rate limits, scenarios."""
        self.control("POST", "/_mock/reset")

    @contextlib.contextmanager
    def scenario(self, *then: Any, when: dict[str, Any] | None = None, repeat: bool = False) -> Iterator[Any]:
        """Seed a scenario rule for this team for the duration of the ``with`` block; yields the rule.

        ``then`` is the chain, one outcome per argument (``"fail"``, ``"fail=Out of memory"``,
        ``{"outcome": "duration", "arg": 30}``), used one per matching request; without ``repeat=True`` the rule
        is used up once its chain is (a single outcome: by its first match). ``when`` takes the fields of
        ``POST /_mock/scenarios`` (``operation``, ``media_type``, ``prompt_contains``, ``header``, ``nth``).
        An invalid rule raises :class:`ScenarioError` with the envelope's ``code``, ``message`` and ``param``.

        Example::

            with aurous_mock.scenario("fail", "succeed", when={"operation": "createVideo"}):
                ...  # the next video fails with "Content policy violation", the one after succeeds
        """
        _httpx.load()
        import httpx

        from mockserver._control_errors import ControlError, ScenarioError

        try:
            rule = self.control("POST", "/_mock/scenarios", {"when": when or {}, "then": list(then), "repeat": repeat})
        except ControlError as exc:
            raise ScenarioError(exc.response) from None
        try:
            yield rule
        finally:
            with contextlib.suppress(httpx.HTTPError):
                self.client.delete(f"/_mock/scenarios/{rule['id']}")

    @property
    def journal(self) -> Journal:
        """This team's recorded requests and responses: iterate, ``len()``, or filter with ``entries``/``count``."""
        return Journal(self)

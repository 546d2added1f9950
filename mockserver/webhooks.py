"""Webhook delivery: the ``Sender`` protocol, ``HttpxSender``, ``RecordingSender`` and the ``WebhookDispatcher``.

The service (:mod:`mockserver.core.webhooks`) decides what is due and books outcomes; the dispatcher only
moves bytes. Under uvicorn one lifespan task (:meth:`WebhookDispatcher.run`) polls every team it watches,
settles its finished generations, and sends due attempts concurrently (one at a time per target, a bounded
number overall), so a hanging receiver never holds up a request or another target. Tests call
:meth:`WebhookDispatcher.flush` instead, which delivers everything due now and waits for it.

Every worker process runs its own dispatcher over the shared store; each attempt is leased to the one that
claimed it (:meth:`~mockserver.core.webhooks.Webhooks.claim`), so exactly one of them sends it, and a flush
waits for attempts another process is sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from mockserver.core import ssrf
from mockserver.core.accounts import Accounts
from mockserver.core.models import Team
from mockserver.core.webhooks import Claim, SendResult, Webhooks
from mockserver.settings import Settings

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpxSender", "RecordingSender", "SendResult", "SentRequest", "Sender", "WebhookDispatcher"]

log = logging.getLogger("mockserver.webhooks")

EXCERPT_BYTES = 64 * 1024
PER_TARGET = 32  # attempts claimed per target and round, sent in order: a backlog of N takes N / 32 rounds
FLUSH_WAIT_SECONDS = 0.01


class Sender(Protocol):
    """Sends one attempt; never raises for what the receiver did (that is the result)."""

    async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> SendResult: ...


Resolver = Callable[[str, int], Awaitable[list[str]]]  # host, port → the addresses it resolves to


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class HttpxSender:
    """Real HTTP: one ``httpx.AsyncClient`` that follows no redirects and ignores proxy variables.

    httpx is imported when the first delivery goes out, not at start-up: with the command-line extras it
    brings along (click, rich, pygments) it was about 60 ms of the emulator's cold start (bench/README.md).

    A target named by host name is resolved first and refused (a failed attempt, never a request) when any
    address is private, link-local, metadata or otherwise blocked by the SSRF rules, loopback excepted while
    ``allow_loopback``: the URL passed them by name when registered, but the name may point anywhere since.
    A name that rebinds between this check and httpx's own lookup is not caught (the emulator does not pin).
    """

    def __init__(
        self,
        *,
        max_connections: int = 32,
        verify: bool = True,
        allow_loopback: bool = True,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._max_connections = max_connections
        self._verify = verify
        self._allow_loopback = allow_loopback
        self._resolver = resolver
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        from mockserver import _httpx

        _httpx.load()
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:  # a client's connections belong to one event loop
            limits = httpx.Limits(
                max_connections=self._max_connections, max_keepalive_connections=self._max_connections
            )
            self._client = httpx.AsyncClient(
                follow_redirects=False, trust_env=False, verify=self._verify, limits=limits
            )
            self._loop = loop
        return self._client

    async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> SendResult:
        started = time.perf_counter()
        client = self._http()
        import httpx  # imported by _http by now

        try:
            async with asyncio.timeout(timeout):  # a total deadline: httpx's timeouts are per read
                refused = await self._refusal(url)
                if refused is not None:
                    return SendResult(None, refused, _since(started))
                async with client.stream("POST", url, content=body, headers=headers, timeout=timeout) as reply:
                    excerpt = await _excerpt(reply)
        except (TimeoutError, httpx.TimeoutException):
            return SendResult(None, "timeout", _since(started))
        except httpx.ConnectError as exc:
            kind = "tls_error" if "ssl" in repr(exc).lower() or "certificate" in str(exc).lower() else "connect_error"
            return SendResult(None, f"{kind}: {exc}", _since(started))
        except httpx.HTTPError as exc:  # a reset has no message: the class name says it all
            return SendResult(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, _since(started))
        return SendResult(reply.status_code, None, _since(started), excerpt)

    async def _refusal(self, url: str) -> str | None:
        """Why ``url``'s host must not be called (it resolves to a blocked address), or None."""
        target = urlsplit(url)
        host = target.hostname or ""
        try:
            ipaddress.ip_address(host)
            return None  # an address literal: judged when the URL was registered
        except ValueError:
            pass
        try:
            addresses = await self._resolver(host, target.port or (443 if target.scheme == "https" else 80))
        except OSError:
            return None  # httpx reports the failed lookup as a connect error
        for text in addresses:
            address = ipaddress.ip_address(text.partition("%")[0])
            mapped = getattr(address, "ipv4_mapped", None) or address
            if self._allow_loopback and mapped.is_loopback:
                continue
            if ssrf.is_blocked_address(address):
                return f"blocked_address: {host} resolves to {text}"
        return None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()


async def _excerpt(reply: httpx.Response) -> str:
    data = b""
    async for chunk in reply.aiter_raw():
        data += chunk
        if len(data) >= EXCERPT_BYTES:
            break
    return data[:EXCERPT_BYTES].decode("utf-8", "replace")


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@dataclass(frozen=True, slots=True)
class SentRequest:
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float


Script = int | str  # an HTTP status, or an error text (a failure without a status)
Responder = Callable[[SentRequest], Script | Awaitable[Script]]


class RecordingSender:
    """For tests: records every request and answers from a script.

    ``responses`` is either a sequence consumed one answer per request (then ``default``), or a callable
    given the :class:`SentRequest`. An ``int`` is a status, a ``str`` an error such as ``"timeout"``.
    """

    def __init__(self, responses: Iterable[Script] | Responder | None = None, *, default: Script = 200) -> None:
        self.requests: list[SentRequest] = []
        self._responder = responses if callable(responses) else None
        self._script = list(responses) if responses is not None and not callable(responses) else []
        self.default = default

    async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> SendResult:
        request = SentRequest(url, body, dict(headers), timeout)
        self.requests.append(request)
        if self._responder is not None:
            answer = self._responder(request)
            script = await answer if inspect.isawaitable(answer) else answer
        else:
            script = self._script.pop(0) if self._script else self.default
        if isinstance(script, str):
            return SendResult(None, script)
        return SendResult(script)


class WebhookDispatcher:
    """Sends the due attempts of the teams the service watches, on each team's own clock."""

    def __init__(
        self,
        webhooks: Webhooks,
        accounts: Accounts,
        sender: Sender,
        settings: Settings,
        *,
        settle: Callable[[Team, datetime], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.webhooks = webhooks
        # Signatures carry real time: receivers check `t=` against their own wall clock (replay tolerance),
        # while scheduling, payloads and the log follow the team's (possibly virtual) clock.
        self.wall_clock = wall_clock
        self.accounts = accounts
        self.sender = sender
        self.settings = settings
        self.settle = settle  # settles finished generations, so their events exist without a request
        self._busy: set[tuple[str, str]] = set()  # (team, target) with an attempt in flight
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[int]] = set()
        self._stopping = False

    # --- one round --------------------------------------------------------------------------------

    def _now(self, team_id: str) -> tuple[Team, datetime]:
        team = self.accounts.team(team_id)
        now = self.accounts.now(team)
        if self.settle is not None:
            self.settle(team, now)
        return team, now

    def _claim(self, team_id: str, room: int) -> list[tuple[Team, list[Claim]]]:
        """Due attempts of up to ``room`` targets of the team: one batch per target, to send in order."""
        team, now = self._now(team_id)
        with self._lock:
            busy = {target for owner, target in self._busy if owner == team_id}
            wall = self.wall_clock()
            claims = self.webhooks.claim(
                team_id, now, busy, room, signed_at=int(wall), leased_at=wall, per_target=PER_TARGET
            )
            self._busy.update((team_id, claim.target) for claim in claims)
        batches: dict[str, list[Claim]] = {}
        for claim in claims:
            batches.setdefault(claim.target, []).append(claim)
        return [(team, batch) for batch in batches.values()]

    async def _deliver(self, team: Team, batch: list[Claim]) -> int:
        """Send one target's claimed attempts one after the other; the number sent.

        An attempt whose delivery was dropped meanwhile (its endpoint disabled by an earlier failure of the batch,
        deleted, the team reset) is skipped. On cancellation the unsent attempts stay due (unleased) and are sent
        again later, maybe by another process.
        """
        done = sent = 0
        try:
            for claim in batch:
                if done == 0 or self.webhooks.still_due(claim):
                    await self._attempt(team, claim)
                    sent += 1
                done += 1
        finally:
            for claim in batch[done:]:
                self.webhooks.release(claim)
            with self._lock:
                self._busy.discard((batch[0].team_id, batch[0].target))
        return sent

    async def _attempt(self, team: Team, claim: Claim) -> None:
        timeout = self.settings.webhook_timeout_seconds
        try:
            result = await self.sender.send(claim.url, claim.body, claim.headers, timeout)
        except Exception as exc:  # a broken sender is a failed attempt, never a dead dispatcher
            log.exception("webhook sender failed for %s", claim.url)
            result = SendResult(None, f"{type(exc).__name__}: {exc}")
        self.webhooks.record(team, claim, result, self.accounts.now(team))

    def _in_flight(self, teams: list[str]) -> bool:
        """Whether this process, or another one sharing the store, is sending an attempt of these teams."""
        wanted = set(teams)
        with self._lock:
            if any(team in wanted for team, _ in self._busy):
                return True
        return self.webhooks.in_flight(teams, self.wall_clock())

    # --- tests: deliver everything due now ---------------------------------------------------------

    async def flush(self, team_id: str | None = None) -> int:
        """Deliver every attempt due now (retries that fall due meanwhile too) and wait; the number sent.

        Await it on the event loop that runs the app (``POST /_mock/webhooks/flush`` does), or in a test
        whose app has no lifespan task running.
        """
        teams = [team_id] if team_id is not None else self.webhooks.watched()
        sent = 0
        while True:
            batches = [pair for team in teams for pair in self._claim(team, self.settings.webhook_max_in_flight)]
            if batches:
                sent += sum(await asyncio.gather(*(self._deliver(team, batch) for team, batch in batches)))
            elif self._in_flight(teams):
                await asyncio.sleep(FLUSH_WAIT_SECONDS)  # the background task is sending one of them
            else:
                return sent

    # --- the background task -----------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until :meth:`stop`: settle, claim and start due attempts; never waits for one to finish."""
        self._stopping = False
        while not self._stopping:
            try:
                self._tick()
            except Exception:
                log.exception("webhook dispatcher round failed")
            await asyncio.sleep(self.settings.webhook_poll_seconds)

    def _tick(self) -> None:
        for team_id in self.webhooks.watched():
            with self._lock:
                room = self.settings.webhook_max_in_flight - len(self._busy)
            if room <= 0:
                return
            for team, batch in self._claim(team_id, room):
                task = asyncio.create_task(self._deliver(team, batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        self._stopping = True

    async def aclose(self) -> None:
        """Stop, abandon attempts in flight (they stay due in the store) and close the sender."""
        self.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        close = getattr(self.sender, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

"""Hostile webhook receivers against the real dispatcher: the emulator under uvicorn (``EmulatorThread``, so the
background task and ``HttpxSender``) delivering to raw asyncio servers on 127.0.0.1 that misbehave on purpose.

They hang, trickle a body or a head a byte at a time, answer a 1 GiB body or endless headers, reset the
connection, redirect, or answer something that is not HTTP. None of them holds up a healthy receiver or an API
request, each becomes a recorded attempt (a failure, or a success whose excerpt is cut at 64 KiB), and the bytes
read from a huge answer stay bounded. Redirects are not followed (the reference is silent; a 3xx is a failure).
Every server stops itself; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver import Settings
from mockserver.testing import EmulatorThread, new_key
from mockserver.webhooks import EXCERPT_BYTES

pytestmark = pytest.mark.e2e

WAIT = 20.0
GIB = 1024**3
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Receivers:
    """Raw asyncio servers on 127.0.0.1, one port per behaviour, on an event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.release = asyncio.Event()  # lets the hanging and trickling receivers go (set from the test thread)
        self.arrived: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()  # body or header bytes pushed by the huge answers
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.ports: dict[str, int] = {}
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self.loop.run_forever, name="hostile-receivers", daemon=True)

    def url(self, name: str, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def start(self) -> Receivers:
        self._thread.start()
        behaviours: dict[str, Handler] = {
            "healthy": self.healthy,
            "hang": self.hang,
            "trickle_body": self.trickle_body,
            "trickle_head": self.trickle_head,
            "huge_body": self.huge_body,
            "endless_headers": self.endless_headers,
            "reset_after_request": self.reset_after_request,
            "reset_at_accept": self.reset_at_accept,
            "redirect": self.redirect,
            "not_http": self.not_http,
        }
        for name, handler in behaviours.items():
            server = self._call(asyncio.start_server(self._counted(name, handler), "127.0.0.1", 0))
            self._servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._call(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()

    async def _shutdown(self) -> None:
        """On the receivers' loop (asyncio servers are not thread-safe): release, stop listening, end every handler."""
        self.release.set()
        for server in self._servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    def let_go(self) -> None:
        self.loop.call_soon_threadsafe(self.release.set)

    def _call(self, coroutine: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(WAIT)  # type: ignore[arg-type]

    def _counted(self, name: str, handler: Handler) -> Handler:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with self.lock:
                self.arrived[name] += 1
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # the emulator gave up on us: that is the point
            finally:
                writer.transport.abort()

        return run

    def count(self, name: str) -> int:
        with self.lock:
            return self.arrived[name]

    # --- behaviours -----------------------------------------------------------------------------------------

    async def _request(self, reader: asyncio.StreamReader) -> str:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = {name.lower(): value for name, _, value in (line.partition(":") for line in lines[1:])}
        await reader.readexactly(int(fields.get("content-length", "0")))
        return lines[0].split()[1]

    async def healthy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = await self._request(reader)
        with self.lock:
            self.paths.append(path)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()

    async def hang(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._request(reader)
        await self.release.wait()

    async def trickle_body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        await self._trickle(writer)

    async def trickle_head(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        await self._trickle(writer)

    async def _trickle(self, writer: asyncio.StreamWriter) -> None:
        for _ in range(int(WAIT * 10)):
            if self.release.is_set():
                return
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(0.1)

    async def huge_body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % GIB)
        await self._flood(writer, "huge_body", b"x" * 65536)

    async def endless_headers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        await self._flood(writer, "endless_headers", b"X-Pad: " + b"a" * 1000 + b"\r\n")

    async def _flood(self, writer: asyncio.StreamWriter, name: str, chunk: bytes) -> None:
        while self.sent[name] < GIB and not self.release.is_set():
            writer.write(chunk)
            await writer.drain()  # raises once the emulator has closed the connection
            self.sent[name] += len(chunk)

    async def reset_after_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._request(reader)
        self._reset(writer)

    async def reset_at_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reset(writer)

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        writer.transport.abort()

    async def redirect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._request(reader)
        location = self.url("healthy", "/followed-a-redirect").encode()
        writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async def not_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()


HOSTILE = [
    "hang",
    "trickle_body",
    "trickle_head",
    "huge_body",
    "endless_headers",
    "reset_after_request",
    "reset_at_accept",
    "redirect",
    "not_http",
]
HELD = ("hang", "trickle_body", "trickle_head")  # in flight until released (or timed out)


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    receivers = Receivers().start()
    try:
        yield receivers
    finally:
        receivers.stop()


@contextlib.contextmanager
def emulator(**overrides: Any) -> Iterator[httpx.Client]:
    settings = Settings(clock="virtual", rate_limits_enabled=False, webhook_poll_seconds=0.02, **overrides)
    with (
        EmulatorThread(settings) as server,
        httpx.Client(base_url=server.base_url, headers={"X-Api-Key": new_key()}, timeout=WAIT) as client,
    ):
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def endpoints(client: httpx.Client, receivers: Receivers, names: list[str]) -> dict[str, str]:
    """One endpoint per receiver; the endpoint id by receiver name."""
    return {
        name: ok(client.post("/v1/webhook_endpoints", json={"url": receivers.url(name), "events": ["*"]}))["id"]
        for name in names
    }


def fire(client: httpx.Client, endpoint_id: str) -> None:
    ok(client.post(f"/v1/webhook_endpoints/{endpoint_id}/test", json={"event_type": "image.completed"}))


def attempts(client: httpx.Client, wanted: int) -> dict[str, dict[str, Any]]:
    """The recorded attempts once there are ``wanted`` of them, by endpoint id (one attempt each)."""
    deadline = time.monotonic() + WAIT
    while True:
        rows = ok(client.get("/_mock/webhooks/deliveries"))["data"]
        if len(rows) >= wanted:
            return {row["endpoint_id"]: row for row in rows}
        assert time.monotonic() < deadline, rows
        time.sleep(0.05)


def recorded(client: httpx.Client) -> set[str]:
    """The endpoints that have a recorded attempt."""
    return {row["endpoint_id"] for row in ok(client.get("/_mock/webhooks/deliveries"))["data"]}


def until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def rss_bytes() -> int:
    """This process's resident memory (the emulator runs in a thread of it); 0 where /proc is missing."""
    statm = Path("/proc/self/statm")
    return int(statm.read_text().split()[1]) * 4096 if statm.exists() else 0


def test_hostile_receivers_hold_up_neither_a_healthy_receiver_nor_the_api(receivers):
    with emulator(webhook_timeout_seconds=WAIT * 2) as client:
        ids = endpoints(client, receivers, [*HOSTILE, "healthy"])
        for name in HOSTILE:
            fire(client, ids[name])
        until(lambda: all(receivers.count(name) >= 1 for name in HELD))
        fire(client, ids["healthy"])  # after the held ones are in flight
        until(lambda: receivers.paths == ["/hook"])
        assert ok(client.get("/v1/balance"))["credits"] == 1000.0  # the API answers meanwhile
        # The receiver has the request before the emulator has read its answer and recorded the attempt.
        until(lambda: ids["healthy"] in recorded(client))
        done = recorded(client)
        assert not done & {ids[name] for name in HELD}  # still held while the healthy one was delivered
        receivers.let_go()
        rows = attempts(client, len(ids))
    outcome = {name: rows[ids[name]] for name in ids}
    assert outcome["healthy"]["outcome"] == "succeeded"
    assert outcome["huge_body"]["response_status"] == 200
    assert len(outcome["huge_body"]["response_excerpt"]) == EXCERPT_BYTES
    assert receivers.sent["huge_body"] < 64 * 1024**2  # read up to the excerpt, then closed: not the 1 GiB
    assert outcome["redirect"]["response_status"] == 307
    assert outcome["redirect"]["outcome"] == "retrying"
    assert receivers.paths == ["/hook"]  # the redirect was not followed
    for name in ("endless_headers", "reset_after_request", "reset_at_accept", "not_http"):
        assert outcome[name]["response_status"] is None, outcome[name]
        assert outcome[name]["error"], outcome[name]
        assert outcome[name]["outcome"] == "retrying"
    assert receivers.sent["endless_headers"] < 64 * 1024**2


def test_slow_receivers_time_out_on_a_total_deadline(receivers):
    """A receiver that keeps trickling bytes never resets the clock: the whole attempt has one deadline."""
    with emulator(webhook_timeout_seconds=1) as client:
        ids = endpoints(client, receivers, list(HELD))
        started = time.monotonic()
        for name in HELD:
            fire(client, ids[name])
        rows = attempts(client, len(HELD))
        elapsed = time.monotonic() - started
    for name in HELD:
        row = rows[ids[name]]
        assert (row["response_status"], row["error"], row["outcome"]) == (None, "timeout", "retrying"), row
        assert 900 <= row["latency_ms"] < WAIT * 1000, row
    assert elapsed < WAIT  # trickling for up to 20 s, cut at about 1 s


def test_huge_answers_keep_memory_bounded(receivers):
    before = rss_bytes()
    with emulator(webhook_timeout_seconds=WAIT) as client:
        ids = endpoints(client, receivers, ["huge_body", "endless_headers"])
        for _ in range(4):
            for endpoint_id in ids.values():
                fire(client, endpoint_id)
        deadline = time.monotonic() + WAIT
        while len(ok(client.get("/_mock/webhooks/deliveries"))["data"]) < 8:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rows = ok(client.get("/_mock/webhooks/deliveries"))["data"]
    assert {len(row["response_excerpt"] or "") for row in rows if row["response_status"] == 200} == {EXCERPT_BYTES}
    offered = 8 * GIB
    assert receivers.sent["huge_body"] + receivers.sent["endless_headers"] < offered / 16
    if before:
        assert rss_bytes() - before < 256 * 1024**2  # generous; the receivers offered 8 GiB

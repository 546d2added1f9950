"""Webhooks over real HTTP: the emulator under uvicorn delivers with ``HttpxSender`` to a receiver on loopback.

The receiver answers by path: ``/ok`` 200, ``/fail`` 500, ``/missing`` 404, ``/redirect`` 302, ``/hang`` holds
the request until the test releases it; a closed port refuses. Deliveries come from the background task (no
flush), so these tests also show that it picks up what a clock advance made due. Every wait is bounded; servers
stop themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from mockserver import Settings, create_app
from tests.conftest import new_api_key

pytestmark = pytest.mark.e2e

WAIT = 15.0
SIGNATURE = re.compile(r"^t=(\d{10}),v1=([0-9a-f]{64})$")


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A tiny threaded HTTP server on 127.0.0.1 that records what it receives."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.changed = threading.Condition()
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.changed:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    receiver.changed.notify_all()
                if self.path == "/hang":
                    receiver.release.wait(WAIT)
                status = {"/fail": 500, "/missing": 404, "/redirect": 302}.get(self.path, 200)
                try:
                    self.send_response(status)
                    if status == 302:
                        self.send_header("Location", "/ok")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the emulator gave up (timeout) and closed the connection

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def wait_for(self, predicate: Callable[[list[Received]], bool]) -> list[Received]:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.requests), timeout=WAIT), self.requests
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(timeout=WAIT)


@contextmanager
def emulator(**overrides: Any) -> Iterator[httpx.Client]:
    """The emulator under uvicorn on a free loopback port, with the real HttpxSender; a client for one team."""
    settings = Settings(
        clock="virtual",
        rate_limits_enabled=False,
        image_pending_seconds=2,
        image_processing_seconds=10,
        video_pending_seconds=3,
        video_processing_seconds=30,
        webhook_poll_seconds=0.02,
        **overrides,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="aurous-mock-webhooks-e2e", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        headers = {"X-Api-Key": new_api_key()}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=WAIT) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def endpoint(client: httpx.Client, url: str, events: list[str] | None = None) -> Any:
    return ok(client.post("/v1/webhook_endpoints", json={"url": url, "events": events or ["*"]}))


def fire(client: httpx.Client, endpoint_id: str, event_type: str = "image.completed") -> str:
    return str(
        ok(client.post(f"/v1/webhook_endpoints/{endpoint_id}/test", json={"event_type": event_type}))["event_id"]
    )


def deliveries_until(client: httpx.Client, predicate: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT
    while True:
        rows: list[dict[str, Any]] = ok(client.get("/_mock/webhooks/deliveries"))["data"]
        if predicate(rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.02)


def verified(request: Received, secret: str) -> bool:
    match = SIGNATURE.match(request.headers["Aurous-Webhook-Signature"])
    assert match
    expected = hmac.new(secret.encode(), f"{match[1]}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match[2])


def test_video_completed_arrives_signed_after_a_clock_advance(receiver):
    with emulator() as client:
        hook = endpoint(client, receiver.url("/ok"), ["video.completed"])
        video = ok(client.post("/v1/videos", json={"video_lora_id": "seedance-1-pro"}))
        ok(client.post("/_mock/clock/advance", json={"seconds": 33}))
        [request] = receiver.wait_for(lambda got: len(got) >= 1)
        assert verified(request, hook["secret"])
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"].startswith("aurous-mock/")
        envelope = orjson.loads(request.body)
        assert envelope["event"] == "video.completed"
        assert envelope["data"] == ok(client.get(f"/v1/images/{video['id']}"))
        assert envelope["data"]["output_video_url"].startswith(f"{client.base_url}/v1/videos/{video['id']}/output?")
        rows = deliveries_until(client, lambda rows: len(rows) == 1)
        assert rows[0]["outcome"] == "succeeded"
        assert rows[0]["response_status"] == 200
        assert rows[0]["response_excerpt"] == "ok"


def test_failures_are_classified_and_redirects_not_followed(receiver):
    with emulator() as client:
        hooks = {name: endpoint(client, receiver.url(f"/{name}")) for name in ("fail", "missing", "redirect")}
        hooks["refused"] = endpoint(client, f"http://127.0.0.1:{closed_port()}/x")
        for hook in hooks.values():
            fire(client, hook["id"], "image.failed")
        rows = deliveries_until(client, lambda rows: len(rows) == 4)
        by_endpoint = {row["endpoint_id"]: row for row in rows}
        assert by_endpoint[hooks["fail"]["id"]]["response_status"] == 500
        assert by_endpoint[hooks["missing"]["id"]]["response_status"] == 404
        assert by_endpoint[hooks["redirect"]["id"]]["response_status"] == 302
        refused = by_endpoint[hooks["refused"]["id"]]
        assert refused["response_status"] is None
        assert refused["error"].startswith("connect_error")
        assert {row["outcome"] for row in rows} == {"retrying"}
        assert [r.path for r in receiver.requests if r.path == "/ok"] == []  # the 302 was not followed
        for hook in hooks.values():
            state = ok(client.get(f"/v1/webhook_endpoints/{hook['id']}"))
            assert state["consecutive_failures"] == 1
            assert state["last_failure_at"] is not None


def test_hanging_receiver_slows_neither_requests_nor_other_deliveries(receiver):
    with emulator(webhook_timeout_seconds=WAIT * 2) as client:
        hanging = endpoint(client, receiver.url("/hang"))
        healthy = endpoint(client, receiver.url("/ok"))
        fire(client, hanging["id"])
        receiver.wait_for(lambda got: any(r.path == "/hang" for r in got))
        assert ok(client.get("/v1/balance"))["credits"] == 1000.0  # answered while the receiver hangs
        fire(client, healthy["id"])
        rows = deliveries_until(client, lambda rows: len(rows) >= 1)
        assert [row["endpoint_id"] for row in rows] == [healthy["id"]]  # done while the other is in flight
        receiver.release.set()
        rows = deliveries_until(client, lambda rows: len(rows) == 2)
        assert rows[0]["endpoint_id"] == hanging["id"]
        assert rows[0]["outcome"] == "succeeded"


def test_hanging_receiver_times_out_as_a_failure(receiver):
    with emulator(webhook_timeout_seconds=0.5) as client:
        hook = endpoint(client, receiver.url("/hang"))
        fire(client, hook["id"])
        [row] = deliveries_until(client, lambda rows: len(rows) == 1)
        assert row["error"] == "timeout"
        assert row["response_status"] is None
        assert row["outcome"] == "retrying"
        assert ok(client.get(f"/v1/webhook_endpoints/{hook['id']}"))["consecutive_failures"] == 1


def test_retries_fire_on_the_virtual_schedule_after_a_day(receiver):
    with emulator() as client:
        hook = endpoint(client, receiver.url("/fail"))
        fire(client, hook["id"])
        deliveries_until(client, lambda rows: len(rows) == 1)
        ok(client.post("/_mock/clock/advance", json={"seconds": 25 * 3600}))
        rows = deliveries_until(client, lambda rows: len(rows) == 8)[::-1]
        first = datetime.fromisoformat(rows[0]["scheduled_at"].replace("Z", "+00:00")).astimezone(UTC)
        offsets = [
            (datetime.fromisoformat(row["scheduled_at"].replace("Z", "+00:00")) - first).total_seconds() for row in rows
        ]
        assert offsets == [0, 60, 300, 1800, 7200, 21600, 43200, 86400]
        assert rows[-1]["outcome"] == "failed"
        received = receiver.wait_for(lambda got: len(got) == 8)
        # The attempts follow the virtual schedule, but each is signed with real time (receivers' tolerance).
        stamps = [int(SIGNATURE.match(r.headers["Aurous-Webhook-Signature"])[1]) for r in received]  # type: ignore[index]
        assert all(abs(stamp - time.time()) < 300 for stamp in stamps)
        assert all(verified(r, hook["secret"]) for r in received)

"""Restarts on the persistent store: ``serve --store sqlite:///state.db`` is stopped mid-flight (SIGTERM, and
SIGKILL while a client is creating generations as fast as it can), then started again on the same file.

Nothing may be lost or duplicated: generations, ledger rows and balances, the uploaded file, the webhook endpoint,
the idempotency record, the clock, and the scheduled webhook attempts, which are delivered exactly once afterwards.
"""

from __future__ import annotations

import contextlib
import io
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image

from contracts.listen import Listener, build_app
from tests.conftest import new_api_key
from tests.e2e.test_scale_out import all_pages, balance, client, serving

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STORE = "sqlite:///state.db"  # relative to the server's directory: both runs use the same file
FIRST, IN_FLIGHT = 3, 2  # generations that finish before the stop, and ones still pending at the stop


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 80, 20)).save(out, format="PNG")
    return out.getvalue()


@contextlib.contextmanager
def receiver_on(sock: socket.socket, listener: Listener) -> Iterator[None]:
    """A webhook receiver on an already bound socket (until now it refused every connection)."""
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(build_app(listener), lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def ledger(http: httpx.Client, kind: str) -> Counter[str]:
    return Counter(row["generation_id"] for row in all_pages(http, "/v1/usage/events", type=kind))


def hammer(base: str, key: str, stopped: threading.Event) -> None:
    """Create generations back to back until the server goes away (or the test says stop)."""
    with client(base, key) as own:
        while not stopped.is_set():
            try:
                own.post("/v1/images", json={"prompt": "hammer"})
            except httpx.HTTPError:
                return


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_restart_mid_flight_loses_and_duplicates_nothing(tmp_path: Path, stop: signal.Signals) -> None:
    hook = socket.socket()
    hook.bind(("127.0.0.1", 0))  # bound, not listening: attempts fail until the receiver starts after the restart
    key, again = new_api_key(), {"Idempotency-Key": "order-1"}
    stopped = threading.Event()
    try:
        with serving(tmp_path, STORE, seed=7, stop=stop) as base, contextlib.closing(client(base, key)) as http:
            url = f"http://127.0.0.1:{hook.getsockname()[1]}/hooks"
            endpoint = http.post("/v1/webhook_endpoints", json={"url": url, "events": ["image.completed"]}).json()
            upload = {"file": ("ref.png", png(), "image/png")}
            stored = http.post("/v1/files", files=upload, data={"purpose": "reference", "metadata": '{"k": "v"}'})
            finished = [http.post("/v1/images", json={"prompt": f"#{i}"}).json()["id"] for i in range(FIRST)]
            clock = http.post("/_mock/clock/advance", json={"seconds": 60}).json()  # 3 charged, their attempt failed
            pending = [http.post("/v1/images", json={"prompt": f"p{i}"}).json()["id"] for i in range(IN_FLIGHT)]
            kept = http.post("/v1/images", json={"prompt": "once"}, headers=again).json()
            before = {gen["id"]: gen["status"] for gen in all_pages(http, "/v1/images")}
            worker = threading.Thread(target=hammer, args=(base, key, stopped))
            worker.start()
            time.sleep(0.5)  # the stop lands while creates are in flight
        stopped.set()
        worker.join(timeout=30)

        listener = Listener()
        with serving(tmp_path, STORE, seed=7) as base, contextlib.closing(client(base, key)) as http:
            after = {gen["id"]: gen["status"] for gen in all_pages(http, "/v1/images")}
            assert {gen_id: after.get(gen_id) for gen_id in before} == before
            assert len(after) > len(before)  # the hammer's creates were in flight when the server stopped
            assert http.get("/_mock/clock").json() == clock
            assert (
                http.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()["secret_preview"]
                == (endpoint["secret_preview"])
            )
            read = http.get(f"/v1/files/{stored.json()['id']}").json()
            assert (read["size_bytes"], read["metadata"]) == (len(png()), {"k": "v"})
            # The keyed create survived the restart and is still running: its retry is 409 until it is terminal.
            early = http.post("/v1/images", json={"prompt": "once"}, headers=again)
            assert (early.status_code, early.json()["error"]["code"]) == (409, "idempotency_key_in_use")
            # Every generation (the hammer's too) holds once; only the first three were charged; balances agree.
            assert ledger(http, "hold") == Counter(list(after))
            assert ledger(http, "charge") == Counter(finished)
            assert balance(http) == (1000 - FIRST, len(after) - FIRST, 1000 - len(after))
            fresh = http.post("/v1/images", json={"prompt": "after the restart"}).json()["id"]
            assert fresh not in after  # seeded ids go on where they stopped, never again
            assert set(pending) <= set(after)

            with receiver_on(hook, listener):
                assert http.post("/_mock/clock/advance", json={"seconds": 120}).status_code == 200
                everyone = [*after, fresh]
                listener.wait_for(len(everyone), timeout=30)
                time.sleep(0.5)  # a duplicate, if any, would arrive by now
            assert Counter(item.payload["data"]["id"] for item in listener.received) == Counter(everyone)
            assert ledger(http, "charge") == Counter(everyone)
            replay = http.post("/v1/images", json={"prompt": "once"}, headers=again)
            assert (replay.json()["id"], replay.headers["Aurous-Idempotent-Replayed"]) == (kept["id"], "true")
            assert balance(http) == (1000 - len(everyone), 0, 1000 - len(everyone))
    finally:
        stopped.set()
        hook.close()


def test_a_key_in_flight_when_its_process_is_killed_is_free_again_after_its_lease(tmp_path: Path) -> None:
    """A create holding an idempotency key is killed mid-request (SIGKILL): it never completes nor gives the key
    back. Until the lease runs out a retry is a conflict (the request might still be running); after it, the retry
    creates the generation, once, and the next retry replays it."""
    key, order = new_api_key(), {"Idempotency-Key": "order-killed", "Aurous-Mock-Scenario": "latency=30000"}
    lease = 3.0
    held = threading.Event()

    def slow_create(base: str) -> None:
        with contextlib.suppress(httpx.HTTPError), client(base, key) as own:
            held.set()
            own.post("/v1/images", json={"prompt": "once"}, headers=order)

    with serving(tmp_path, STORE, seed=7, stop=signal.SIGKILL, idempotency_lease_seconds=lease) as base:
        with client(base, key) as http:
            http.get("/v1/balance").raise_for_status()  # the team exists before the slow create begins
        creator = threading.Thread(target=slow_create, args=(base,), daemon=True)
        creator.start()
        held.wait(10)
        time.sleep(0.5)  # the create is in its 30 s latency, its key in flight
        killed_at = time.monotonic()
    creator.join(timeout=30)

    retry = {"Idempotency-Key": "order-killed"}
    with serving(tmp_path, STORE, seed=7, idempotency_lease_seconds=lease) as base, client(base, key) as http:
        if time.monotonic() - killed_at < lease - 0.5:  # still leased: the dead request might be alive
            early = http.post("/v1/images", json={"prompt": "once"}, headers=retry)
            assert early.status_code == 409, early.text
            assert early.json()["error"]["code"] == "idempotency_key_in_use"
        time.sleep(max(0.0, lease - (time.monotonic() - killed_at)) + 0.2)
        first = http.post("/v1/images", json={"prompt": "once"}, headers=retry)
        assert first.status_code == 201, first.text
        assert http.post("/_mock/clock/advance", json={"seconds": 3600}).status_code == 200  # terminal: it replays
        again = http.post("/v1/images", json={"prompt": "once"}, headers=retry)
        assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
        assert again.headers["Aurous-Idempotent-Replayed"] == "true"
        assert [gen["id"] for gen in all_pages(http, "/v1/images")] == [first.json()["id"]]
        assert ledger(http, "hold") == Counter([first.json()["id"]])

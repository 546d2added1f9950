"""``aurous-mock serve --store sqlite|redis --workers 2`` as a real subprocess: two uvicorn worker processes on one
state. Many clients racing keep the ledger exact, an idempotency key bills once, the clock moved through one worker
is the other's clock, and each scheduled webhook attempt reaches the receiver exactly once.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contracts.listen import Listener, build_app
from mockserver.testing import ServerThread
from tests.conftest import new_api_key
from tests.helpers import cli_process

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BANNER = re.compile(r"^aurous-mock \S+ serving on (http://127\.0\.0\.1:\d+)$")
CREDITS = 40  # an image costs 1 credit
CLIENTS, EACH = 16, 5  # 80 racing creates: exactly 40 are affordable
SETTINGS = {
    "rate_limits_enabled": False,
    "image_pending_seconds": 1,
    "image_processing_seconds": 10,
    "webhook_poll_seconds": 0.02,
}


def write_config(directory: Path, **settings: Any) -> Path:
    path = directory / "settings.yaml"
    path.write_text(yaml.safe_dump({**SETTINGS, **settings}), encoding="utf-8")
    return path


@contextlib.contextmanager
def serving(
    directory: Path, store: str, *, workers: int = 1, stop: signal.Signals = signal.SIGTERM, **settings: Any
) -> Iterator[str]:
    """The console script on a free loopback port with ``store``; yields its base URL, sends it ``stop`` after."""
    if stop == signal.SIGKILL:  # a killed process cannot remove its own media directory: keep it in the test's
        settings.setdefault("media_cache_dir", str(directory / "media"))
    config = write_config(directory, **settings)
    args = ["serve", "--port", "0", "--clock", "virtual", "--store", store, "--workers", str(workers)]
    with cli_process(directory, *args, "--config", str(config), "--log-level", "warning", stop=stop) as cli:
        yield cli.first_line(BANNER).group(1)


def backend_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "redis":
        return f"{request.getfixturevalue('redis_url')}?prefix=e2e{secrets.token_hex(6)}"
    return "sqlite:///state.db"  # relative: the server runs in its own temporary directory


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two workers on one store, shared by this module's tests (each uses its own team)."""
    with serving(tmp_path_factory.mktemp("cluster"), backend_url(request.param, request), workers=2) as base:
        yield base


def client(base: str, key: str) -> httpx.Client:
    """One keep-alive connection, hence one worker, for the client's life."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.Client(base_url=base, headers={"X-Api-Key": key}, limits=limits, timeout=30)


def all_pages(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 100, **params}
    while True:
        page = http.get(path, params=query).json()
        rows.extend(page["data"])
        if not page["has_more"]:
            return rows
        query["starting_after"] = rows[-1]["id"]


def balance(http: httpx.Client) -> tuple[float, float, float]:
    money = http.get("/v1/balance").json()
    return money["credits"], money["held_credits"], money["available_credits"]


def on_two_workers(base: str, key: str) -> tuple[httpx.Client, httpx.Client]:
    """Two clients served by different workers: the second's worker has no journal entry of the first's request
    (the journal is history kept per process)."""
    first = client(base, key)
    assert first.get("/v1/balance").status_code == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        other = client(base, key)
        if other.get("/_mock/journal/count").json()["count"] == 0:
            return first, other
        other.close()
        time.sleep(0.05)
    pytest.fail("every connection reached the same worker")


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(work, range(count)))


def test_two_workers_keep_the_ledger_exact_under_concurrent_creates(cluster: str) -> None:
    key = new_api_key()
    with client(cluster, key) as http:
        assert http.patch("/_mock/team", json={"credits": CREDITS}).status_code == 200

    def create_some(index: int) -> list[int]:
        with client(cluster, key) as own:
            return [own.post("/v1/images", json={"prompt": f"#{index}.{n}"}).status_code for n in range(EACH)]

    statuses = Counter(status for batch in race(CLIENTS, create_some) for status in batch)
    assert statuses == Counter({201: CREDITS, 402: CLIENTS * EACH - CREDITS})
    with client(cluster, key) as http:
        assert balance(http) == (CREDITS, CREDITS, 0)
        generations = all_pages(http, "/v1/images")
        assert len({gen["id"] for gen in generations}) == len(generations) == CREDITS
        holds = all_pages(http, "/v1/usage/events", type="hold")
        assert sorted(row["generation_id"] for row in holds) == sorted(gen["id"] for gen in generations)
        assert http.post("/_mock/clock/advance", json={"seconds": 600}).status_code == 200
        assert balance(http) == (0, 0, 0)
        assert len(all_pages(http, "/v1/usage/events", type="charge")) == CREDITS
        assert len(all_pages(http, "/v1/usage/events", type="release")) == 0


def test_racing_idempotent_retries_across_workers_bill_once(cluster: str) -> None:
    key = new_api_key()
    body, retry = {"prompt": "once"}, {"Idempotency-Key": f"order-{secrets.token_hex(4)}"}

    def post(_: int) -> tuple[int, str | None]:
        with client(cluster, key) as own:
            reply = own.post("/v1/images", json=body, headers=retry)
            return reply.status_code, reply.json().get("id")

    answers = race(12, post)
    assert {status for status, _ in answers} <= {201, 409}
    created = {gen_id for status, gen_id in answers if status == 201}
    with client(cluster, key) as http:
        assert balance(http) == (1000, 1, 999)
        early = http.post("/v1/images", json=body, headers=retry)  # the original still runs
        assert (early.status_code, early.json()["error"]["code"]) == (409, "idempotency_key_in_use")
        assert http.post("/_mock/clock/advance", json={"seconds": 3600}).status_code == 200
        replay = http.post("/v1/images", json=body, headers=retry)
        assert replay.status_code == 201
        assert replay.headers["Aurous-Idempotent-Replayed"] == "true"
        assert created <= {replay.json()["id"]}
        assert [row["generation_id"] for row in all_pages(http, "/v1/usage/events", type="hold")] == [
            replay.json()["id"]
        ]


def test_the_clock_moved_through_one_worker_is_the_others(cluster: str) -> None:
    first, second = on_two_workers(cluster, new_api_key())
    with contextlib.closing(first), contextlib.closing(second):
        before = second.get("/_mock/clock").json()
        moved = first.post("/_mock/clock/advance", json={"seconds": 3600}).json()
        assert moved != before
        assert second.get("/_mock/clock").json() == moved
        frozen = second.post("/_mock/clock/freeze").json()
        assert first.get("/_mock/clock").json() == frozen == {**moved, "frozen": True}


def test_each_scheduled_attempt_is_delivered_once_by_two_workers(cluster: str) -> None:
    listener = Listener()
    with ServerThread(build_app(listener), name="receiver", lifespan="off") as receiver:
        first, second = on_two_workers(cluster, new_api_key())
        with contextlib.closing(first), contextlib.closing(second):
            endpoint = {"url": f"{receiver.base_url}/hooks", "events": ["image.completed"]}
            assert first.post("/v1/webhook_endpoints", json=endpoint).status_code == 201
            ids = [(first, second)[i % 2].post("/v1/images", json={"prompt": f"#{i}"}).json()["id"] for i in range(6)]
            # Neither worker flushes: both background dispatchers race for the attempts that just fell due.
            assert second.post("/_mock/clock/advance?wait=false", json={"seconds": 600}).status_code == 200
            listener.wait_for(len(ids), timeout=30)
            time.sleep(1.0)  # a second copy, if any, would arrive within a few polls
            attempts = first.get("/_mock/webhooks/deliveries").json()["data"]
    assert sorted(item.payload["data"]["id"] for item in listener.received) == sorted(ids)
    assert [(row["attempt"], row["outcome"]) for row in attempts] == [(1, "succeeded")] * len(ids)

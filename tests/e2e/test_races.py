"""Races over real HTTP: concurrent creates against a short balance, cancel against completion, idempotent retries.

One emulator under uvicorn (``EmulatorThread``) on loopback, many client threads released together by a barrier;
``Aurous-Mock-Scenario: latency=…`` holds a request between the pipeline and its handler, which is where
interleavings happen. A watcher thread reads ``/v1/balance`` throughout and every reading must add up:
``credits - held_credits == available_credits``, nothing negative. The ledger (``GET /v1/usage/events``) must hold
exactly one hold and one settlement (charge or release) per generation.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from mockserver import Settings
from mockserver.testing import EmulatorThread, new_key

pytestmark = pytest.mark.e2e

TIMEOUT = 30.0
PROCESSING = 10  # seconds from create to finish (1 pending + 9 processing) on the team's virtual clock


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    settings = Settings(
        clock="virtual", rate_limits_enabled=False, image_pending_seconds=1, image_processing_seconds=PROCESSING - 1
    )
    with EmulatorThread(settings) as server:
        yield server.base_url


@pytest.fixture
def team(base_url: str) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    with httpx.Client(base_url=base_url, headers={"X-Api-Key": new_key()}, timeout=TIMEOUT, limits=limits) as client:
        yield client


class BalanceWatch:
    """Reads the team's balance in a loop until stopped; every reading must add up."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.readings: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.readings) < 10_000:
            self.readings.append(self.client.get("/v1/balance").json())

    def __enter__(self) -> BalanceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self.readings.append(self.client.get("/v1/balance").json())
        for reading in self.readings:
            assert_adds_up(reading)


def assert_adds_up(balance: dict[str, Any]) -> None:
    credits, held, available = balance["credits"], balance["held_credits"], balance["available_credits"]
    assert credits - held == pytest.approx(available, abs=1e-9), balance
    assert held >= 0, balance
    assert available >= 0, balance


def together(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run every call in its own thread, all released at once; their answers in the order of ``calls``."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(TIMEOUT)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def set_credits(team: httpx.Client, credits: float) -> None:
    ok(team.patch("/_mock/team", json={"credits": credits}))


def ledger(team: httpx.Client) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        params = {"limit": 100, **({"starting_after": cursor} if cursor else {})}
        page = ok(team.get("/v1/usage/events", params=params))
        rows += page["data"]
        if not page["has_more"]:
            return rows
        cursor = page["data"][-1]["id"]
    raise AssertionError("the ledger did not end")


def movements(team: httpx.Client) -> dict[str, Counter[str]]:
    """Per generation, how many ledger rows of each type (hold, charge, release) it has."""
    found: dict[str, Counter[str]] = {}
    for row in ledger(team):
        if row["generation_id"] is not None:
            found.setdefault(row["generation_id"], Counter())[row["type"]] += 1
    return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_attempts(team: httpx.Client) -> list[dict[str, Any]]:
    """The first attempt of every webhook delivery of the team (the flush waits for those in flight)."""
    ok(team.post("/_mock/webhooks/flush"))
    return [row for row in ok(team.get("/_mock/webhooks/deliveries"))["data"] if row["attempt"] == 1]


def advance(team: httpx.Client, seconds: float) -> None:
    ok(team.post("/_mock/clock/advance", json={"seconds": seconds}))


# --- creates against a short balance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "credits"),
    [
        pytest.param([1] * 64, 20, id="uniform-cost-1-covers-20"),
        pytest.param(list(itertools.islice(itertools.cycle([1, 2, 3, 4]), 64)), 100, id="mixed-cost-covers-100-of-160"),
    ],
)
def test_concurrent_creates_succeed_exactly_as_far_as_the_balance_goes(team, counts, credits):
    set_credits(team, credits)
    latency = [{"Aurous-Mock-Scenario": f"latency={i % 8 * 5}"} for i in range(len(counts))]
    with BalanceWatch(team):
        answers = together(
            [
                lambda n=n, h=h: team.post("/v1/images", json={"prompt": "race", "count": n}, headers=h)
                for n, h in zip(counts, latency, strict=True)
            ]
        )
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 402}, statuses
    won = [(n, answer.json()["id"]) for n, answer in zip(counts, answers, strict=True) if answer.status_code == 201]
    lost = [n for n, answer in zip(counts, answers, strict=True) if answer.status_code == 402]
    assert all(answer.json()["error"]["code"] == "balance_too_low" for answer in answers if answer.status_code == 402)
    balance = ok(team.get("/v1/balance"))
    held = sum(n for n, _ in won)
    assert (balance["credits"], balance["held_credits"]) == (credits, held)
    assert all(n > balance["available_credits"] for n in lost)  # each refusal was right: it never fit afterwards
    if len(set(counts)) == 1:
        assert len(won) == credits  # exactly the affordable ones
    listed = ok(team.get("/v1/images", params={"limit": 100}))["data"]
    assert sorted(row["id"] for row in listed) == sorted(gen_id for _, gen_id in won)
    with BalanceWatch(team):
        advance(team, PROCESSING)
    balance = ok(team.get("/v1/balance"))
    assert (balance["credits"], balance["held_credits"]) == (credits - held, 0)
    assert movements(team) == {gen_id: Counter(hold=1, charge=1) for _, gen_id in won}


# --- cancel against completion ---------------------------------------------------------------------------------


def test_cancel_racing_completion_settles_each_generation_exactly_once(team):
    """Cancels held up by ``latency`` meet a clock advance that completes the same generations.

    Whichever wins, a generation is settled once: cancelled (hold released, the cancel answered 200) or succeeded
    (charged, the cancel answered 400 ``generation_not_cancellable``), never both. The slow cancels began before
    the advance and end well after it: they must lose, whatever their ``now`` said when they began.
    """
    set_credits(team, 100)
    ok(team.post("/v1/webhook_endpoints", json={"url": f"http://127.0.0.1:{closed_port()}/hook", "events": ["*"]}))
    ids = [ok(team.post("/v1/images", json={"prompt": f"race {i}"}))["id"] for i in range(16)]
    slow = set(ids[8:])
    advance(team, PROCESSING - 1)  # one second before they finish

    def cancel(gen_id: str, delay_ms: int) -> Callable[[], httpx.Response]:
        return lambda: team.post(f"/v1/images/{gen_id}/cancel", headers={"Aurous-Mock-Scenario": f"latency={delay_ms}"})

    def finish() -> httpx.Response:
        threading.Event().wait(0.5)  # after the fast cancels, while the slow ones wait
        return team.post("/_mock/clock/advance", json={"seconds": 5})

    delays = [1500 if gen_id in slow else i * 10 for i, gen_id in enumerate(ids)]
    with BalanceWatch(team):
        answers = together([*(cancel(gen_id, delay) for gen_id, delay in zip(ids, delays, strict=True)), finish])
    ok(answers[-1])
    final = {gen_id: ok(team.get(f"/v1/images/{gen_id}"))["status"] for gen_id in ids}
    for gen_id, answer in zip(ids, answers, strict=False):
        if answer.status_code == 200:
            assert gen_id not in slow, answer.text
            assert final[gen_id] == "cancelled", answer.text
        else:
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["code"] == "generation_not_cancellable"
            assert final[gen_id] == "succeeded"
    succeeded = sum(1 for status in final.values() if status == "succeeded")
    balance = ok(team.get("/v1/balance"))
    assert (balance["credits"], balance["held_credits"]) == (100 - succeeded, 0)
    expected = {
        gen_id: Counter(hold=1, **{"charge" if status == "succeeded" else "release": 1})
        for gen_id, status in final.items()
    }
    assert movements(team) == expected
    events = Counter(orjson.loads(row["request_body"])["data"]["id"] for row in first_attempts(team))
    assert events == dict.fromkeys(ids, 1)  # one terminal event each: completed or cancelled


def test_concurrent_cancels_of_one_generation_release_its_hold_once(team):
    set_credits(team, 10)
    gen_id = ok(team.post("/v1/images", json={"prompt": "cancel me", "count": 4}))["id"]
    with BalanceWatch(team):
        answers = together(
            [
                lambda i=i: team.post(f"/v1/images/{gen_id}/cancel", headers={"Aurous-Mock-Scenario": f"latency={i}"})
                for i in range(0, 48, 3)
            ]
        )
    assert {answer.status_code for answer in answers} == {200}
    assert {answer.json()["status"] for answer in answers} == {"cancelled"}
    balance = ok(team.get("/v1/balance"))
    assert (balance["credits"], balance["held_credits"], balance["available_credits"]) == (10, 0, 10)
    assert movements(team) == {gen_id: Counter(hold=1, release=1)}


# --- idempotent retries ----------------------------------------------------------------------------------------


def test_concurrent_idempotent_retries_create_and_bill_once(team):
    set_credits(team, 50)
    body = {"prompt": "once", "count": 3}

    def retry(i: int) -> Callable[[], httpx.Response]:
        headers = {"Idempotency-Key": "retry-storm", "Aurous-Mock-Scenario": f"latency={i % 6 * 20}"}
        return lambda: team.post("/v1/images", json=body, headers=headers)

    with BalanceWatch(team):
        answers = together([retry(i) for i in range(32)])
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, statuses
    created = [answer for answer in answers if answer.status_code == 201]
    assert created
    assert len({answer.json()["id"] for answer in created}) == 1
    assert sum(1 for answer in created if "Aurous-Idempotent-Replayed" not in answer.headers) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"]["code"] == "idempotency_key_in_use"
    [gen_id] = {answer.json()["id"] for answer in created}
    assert [row["id"] for row in ok(team.get("/v1/images"))["data"]] == [gen_id]
    balance = ok(team.get("/v1/balance"))
    assert (balance["credits"], balance["held_credits"]) == (50, 3)
    # The original still runs: a later retry is 409 until it is terminal on the team's clock, then replays it.
    early = team.post("/v1/images", json=body, headers={"Idempotency-Key": "retry-storm"})
    assert (early.status_code, early.json()["error"]["code"]) == (409, "idempotency_key_in_use")
    ok(team.post("/_mock/clock/advance", json={"seconds": 3600}))
    after = team.post("/v1/images", json=body, headers={"Idempotency-Key": "retry-storm"})
    assert (after.status_code, after.headers["Aurous-Idempotent-Replayed"]) == (201, "true")
    assert after.json()["id"] == gen_id  # a later retry replays the same generation
    assert movements(team) == {gen_id: Counter(hold=1, charge=1)}


def test_concurrent_retries_with_different_bodies_create_at_most_one(team):
    set_credits(team, 50)

    def attempt(i: int) -> Callable[[], httpx.Response]:
        headers = {"Idempotency-Key": "one-key", "Aurous-Mock-Scenario": f"latency={i % 4 * 25}"}
        return lambda: team.post("/v1/images", json={"prompt": f"body {i % 4}"}, headers=headers)

    answers = together([attempt(i) for i in range(24)])
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, statuses
    fresh = [a for a in answers if a.status_code == 201 and "Aurous-Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1
    assert len(ok(team.get("/v1/images"))["data"]) == 1
    assert ok(team.get("/v1/balance"))["held_credits"] == 1

"""Concurrency on every store backend: threads (and two emulators sharing one store, as two workers would)
racing for credits, idempotency keys, settlements, cancellations, the clock and webhook attempts.

Each test runs against memory, sqlite and a real redis-server. The services are called from real threads,
so on the shared backends the transactions of separate connections really interleave.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from mockserver import Store, create_app
from mockserver.core.emulator import Emulator
from mockserver.core.errors import BalanceTooLowError, IdempotencyKeyInUseError
from mockserver.core.models import Team
from mockserver.core.requests import ImageRequest
from mockserver.store import open_store
from mockserver.webhooks import RecordingSender, SentRequest
from tests.conftest import BASE_URL, make_settings, new_api_key

pytestmark = pytest.mark.every_store

T = TypeVar("T")
THREADS = 24
CREDITS = 10  # an image costs 1 credit: 10 of the 24 racing creates are affordable
PINNED = {"image_pending_seconds": 1, "image_processing_seconds": 10, "rate_limits_enabled": False}
DONE = 60  # seconds after which every pinned image has finished


def race(count: int, work: Callable[[int], T]) -> list[T | Exception]:
    """Run ``work(0..count-1)`` on ``count`` threads released together; each result or the exception it raised."""
    start = threading.Barrier(count)
    results: list[T | Exception] = [RuntimeError("did not run")] * count

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def emulator(store: Store, sender: RecordingSender | None = None, **settings: Any) -> Starlette:
    merged = {**PINNED, "default_credits": CREDITS, "webhook_background": False, **settings}
    return create_app(make_settings(**merged), store=store, sender=sender or RecordingSender())


@pytest.fixture
def pair(store: Store) -> Iterator[Callable[..., tuple[Starlette, Starlette]]]:
    """``pair(*senders, **settings)``: two emulators on the test's state, as two workers would run them.

    On sqlite and redis each has its own connection; in memory, where ``--workers`` is refused, both are one.
    """
    with ExitStack() as stack:

        def build(*senders: RecordingSender, **settings: Any) -> tuple[Starlette, Starlette]:
            first = emulator(store, senders[0] if senders else None, **settings)
            if not store.shared:
                return first, first
            other = open_store(store.url)  # type: ignore[attr-defined]
            stack.callback(other.close)
            return first, emulator(other, senders[1] if senders else None, **settings)

        yield build


def state(app: Starlette) -> Emulator:
    emulator: Emulator = app.state.emulator
    return emulator


def request_meta(emu: Emulator, team: Team, index: int) -> dict[str, Any]:
    return {
        "now": emu.accounts.now(team),
        "version": "2026-05-15",
        "request_id": f"req_{index}",
        "api_key_id": None,
        "base_url": BASE_URL,
        "scenario": None,
    }


def create_as_a_request(emu: Emulator, key: str, index: int) -> str:
    """What a create request does: authenticate (its own Team object), settle, create."""
    team, _ = emu.accounts.authenticate(key)
    emu.settle_due(team, emu.accounts.now(team))
    return emu.generations.create_image(team, ImageRequest(prompt=f"#{index}"), request_meta(emu, team, index)).id


def money(emu: Emulator, key: str) -> tuple[float, float, float]:
    team, _ = emu.accounts.authenticate(key)
    emu.settle_due(team, emu.accounts.now(team))
    fresh = emu.accounts.team(team.id)
    return fresh.credits, fresh.held, fresh.available


def ledger(emu: Emulator, key: str) -> Counter[str]:
    team, _ = emu.accounts.authenticate(key)
    return Counter(row.type for row in emu.ledger.entries(team))


Pair = Callable[..., tuple[Starlette, Starlette]]


def test_racing_creates_hold_exactly_what_the_balance_covers(pair: Pair) -> None:
    first, second = map(state, pair())
    key = new_api_key()
    results = race(THREADS, lambda i: create_as_a_request(first if i % 2 else second, key, i))
    created = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, BalanceTooLowError)]
    assert (len(created), len(refused)) == (CREDITS, THREADS - CREDITS), results
    assert len(set(created)) == CREDITS
    assert money(first, key) == (CREDITS, CREDITS, 0)
    assert ledger(second, key) == Counter(hold=CREDITS)
    team, _ = first.accounts.authenticate(key)
    assert len(first.generations.list_generations(team, limit=100, starting_after=None, ending_before=None).rows) == 10
    first.accounts.move_time(team, lambda time: time.advance(first.clock, DONE))
    assert money(second, key) == (0, 0, 0)
    assert ledger(first, key) == Counter(hold=CREDITS, charge=CREDITS)


def test_racing_settlements_and_cancellations_move_each_hold_once(pair: Pair) -> None:
    first, second = map(state, pair())
    key = new_api_key()
    ids = [create_as_a_request(first, key, i) for i in range(CREDITS)]
    cancelled = ids[: CREDITS // 2]

    def cancel_all(index: int) -> int:
        emu = first if index % 2 else second
        team, _ = emu.accounts.authenticate(key)
        for gen_id in cancelled if index % 3 else reversed(cancelled):
            emu.generations.cancel(team, gen_id, emu.accounts.now(team))
        return index

    assert all(isinstance(r, int) for r in race(8, cancel_all))
    assert money(first, key) == (CREDITS, CREDITS // 2, CREDITS // 2)
    team, _ = first.accounts.authenticate(key)
    first.accounts.move_time(team, lambda time: time.advance(first.clock, DONE))

    def settle(index: int) -> tuple[float, float, float]:
        return money(first if index % 2 else second, key)

    race(8, settle)
    assert money(second, key) == (CREDITS // 2, 0, CREDITS // 2)
    assert ledger(first, key) == Counter(hold=CREDITS, release=CREDITS // 2, charge=CREDITS // 2)


def test_racing_idempotent_begins_let_exactly_one_through(pair: Pair) -> None:
    first, second = map(state, pair())
    team_id, now = "team_race", datetime(2026, 6, 1, 12, tzinfo=first.clock.now().tzinfo)

    def begin(index: int) -> object:
        return (first if index % 2 else second).idempotency.begin(team_id, "key-1", "print", now)

    results = race(THREADS, begin)
    assert results.count(None) == 1, results
    assert sum(isinstance(r, IdempotencyKeyInUseError) for r in results) == THREADS - 1
    first.idempotency.complete(team_id, "key-1", 201, b'{"id":"img_1"}', {"content-type": "application/json"})
    replays = race(4, begin)
    assert {(r.status, r.body) for r in replays} == {(201, b'{"id":"img_1"}')}  # type: ignore[union-attr]


def test_two_emulators_on_one_store_share_one_clock(store: Store, pair: Pair) -> None:
    if not store.shared:
        pytest.skip("an in-memory store is one process's: --workers refuses it")
    first, second = pair(clock_start=None)  # the base clock's anchor is written by the first, read by the second
    with TestClient(first, base_url=BASE_URL) as a, TestClient(second, base_url=BASE_URL) as b:
        headers = {"X-Api-Key": new_api_key()}
        assert a.get("/_mock/clock", headers=headers).json() == b.get("/_mock/clock", headers=headers).json()
        moved = a.post("/_mock/clock/advance", json={"seconds": 3600}, headers=headers).json()
        assert b.get("/_mock/clock", headers=headers).json() == moved
        shifted = b.post("/_mock/clock/advance?global=true", json={"seconds": 7200}, headers=headers).json()
        assert a.get("/_mock/clock?global=true", headers=headers).json() == shifted
        assert b.post("/_mock/clock/freeze?global=true", headers=headers).json()["frozen"] is True
        assert a.get("/_mock/clock?global=true", headers=headers).json()["frozen"] is True
        later = datetime.fromisoformat(moved["now"]) + timedelta(hours=2)
        assert datetime.fromisoformat(a.get("/_mock/clock", headers=headers).json()["now"]) == later


def test_two_dispatchers_on_one_store_send_each_attempt_once(pair: Pair) -> None:
    async def slow(request: SentRequest) -> int:
        await asyncio.sleep(0.02)  # long enough for the other dispatcher to try the same attempts
        return 200

    senders = RecordingSender(slow), RecordingSender(slow)
    apps = pair(*senders, default_credits=100)
    with TestClient(apps[0], base_url=BASE_URL) as a, TestClient(apps[1], base_url=BASE_URL) as b:
        headers = {"X-Api-Key": new_api_key()}
        for index in range(3):  # three receivers: up to three attempts in flight at once
            url = f"https://hooks{index}.example/in"
            assert a.post("/v1/webhook_endpoints", json={"url": url, "events": ["*"]}, headers=headers).is_success
        ids = [b.post("/v1/images", json={"prompt": f"#{i}"}, headers=headers).json()["id"] for i in range(4)]
        assert a.post("/_mock/clock/advance?wait=false", json={"seconds": DONE}, headers=headers).is_success

        async def both() -> list[int]:
            return list(await asyncio.gather(*(app.state.dispatcher.flush() for app in apps)))

        flushed = asyncio.run(both())
    sent = [orjson.loads(r.body) for sender in senders for r in sender.requests]
    assert sum(flushed) == len(sent) == 3 * len(ids)
    assert Counter((r.url, orjson.loads(r.body)["data"]["id"]) for s in senders for r in s.requests) == Counter(
        {(f"https://hooks{n}.example/in", gen_id): 1 for n in range(3) for gen_id in ids}
    )
    assert {event["event"] for event in sent} == {"image.completed"}

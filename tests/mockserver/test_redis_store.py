"""What only the Redis store does: the lease and its cache (round trips per transaction, what another process
wrote is seen, hand-over on request, a dead holder's lease lapsing), and server-side commits."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import hiredis
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.store import redis as redis_store
from mockserver.store._redis_lua import LOG_MAX
from mockserver.store.redis import RedisStore


@pytest.fixture
def url(redis_url: str) -> str:
    return f"{redis_url}?prefix=r{secrets.token_hex(6)}"


@pytest.fixture
def pair(url: str) -> Iterator[tuple[RedisStore, RedisStore]]:
    """Two stores on one prefix: as two worker processes would have them."""
    first, second = RedisStore(url), RedisStore(url)
    yield first, second
    first.close()
    second.close()


class RoundTrips:
    """Counts the round trips a store makes on its hot path (each ``_calls`` is one)."""

    def __init__(self, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        calls = store._calls

        def counted(*commands: tuple[Any, ...]) -> list[Any]:
            self.count += 1
            return calls(*commands)

        monkeypatch.setattr(store, "_calls", counted)


def test_redis_lease_holder_reads_without_a_round_trip_and_commits_in_one(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisStore(url)
    try:
        store.put("team", "t1", {"credits": 10}, owner="team_a")  # takes the lease
        trips = RoundTrips(store, monkeypatch)
        for _ in range(5):
            assert store.get("team", "t1") == {"credits": 10}
            assert store.owner("team", "t1") == "team_a"
            assert store.get("team", "missing") is None
        assert trips.count == 1  # the one miss; its absence is remembered
        with store.transaction():
            team = store.get("team", "t1")
            team["credits"] -= 3
            store.put("team", "t1", team, owner="team_a")
            store.put("ledger", "l1", {"amount": 3}, owner="team_a")
        assert trips.count == 2  # the whole transaction: one EVALSHA
        with store.transaction():
            assert store.get("team", "t1") == {"credits": 7}
        assert trips.count == 2  # a transaction that writes nothing commits nothing
    finally:
        store.close()


def test_redis_writes_of_another_process_are_seen_at_once(pair: tuple[RedisStore, RedisStore]) -> None:
    first, second = pair
    first.put("generation", "g1", {"status": "queued"}, owner="team_a")
    assert first.get("generation", "g1") == {"status": "queued"}  # cached by the holder
    started = time.monotonic()
    second.put("generation", "g1", {"status": "cancelled"}, owner="team_a")  # asks the first to hand over
    assert time.monotonic() - started < redis_store.LEASE_MS / 1000  # handed over, not lapsed
    assert first.get("generation", "g1") == {"status": "cancelled"}
    with first.transaction():  # takes the lease back, dropping what the second wrote from its cache
        assert first.get("generation", "g1") == {"status": "cancelled"}
        first.put("generation", "g2", {"status": "queued"}, owner="team_a")
    assert second.values("generation", owner="team_a") == [{"status": "cancelled"}, {"status": "queued"}]


def test_redis_holder_that_fell_behind_the_log_drops_its_whole_cache(pair: tuple[RedisStore, RedisStore]) -> None:
    first, second = pair
    first.put("row", "a", 1, owner="team_a")
    assert first.get("row", "a") == 1
    second.put("row", "a", 2, owner="team_a")
    for n in range(LOG_MAX + 5):  # more commits than the log keeps
        second.put("row", f"other{n}", n, owner="team_a")
    with first.transaction():
        assert first.get("row", "a") == 2
        first.put("row", "a", 3, owner="team_a")
    assert second.get("row", "a") == 3


def _change_in_place_and_fail(store: RedisStore) -> None:
    with store.transaction():
        store.get("team", "t1")["credits"] = 0
        raise RuntimeError("boom")


def test_redis_failed_transaction_forgets_records_changed_in_place(url: str) -> None:
    store = RedisStore(url)
    try:
        store.put("team", "t1", {"credits": 10}, owner="team_a")
        with pytest.raises(RuntimeError, match="boom"):
            _change_in_place_and_fail(store)
        assert store.get("team", "t1") == {"credits": 10}
    finally:
        store.close()


def test_redis_transactions_of_two_processes_never_interleave(pair: tuple[RedisStore, RedisStore]) -> None:
    def increment(store: RedisStore) -> None:
        for _ in range(40):
            with store.transaction():
                store.put("counter", "c", (store.get("counter", "c") or 0) + 1, owner="team_a")

    threads = [threading.Thread(target=increment, args=(store,)) for store in (*pair, *pair)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pair[0].get("counter", "c") == pair[1].get("counter", "c") == 160


def test_redis_lease_of_a_dead_holder_lapses(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_store, "LEASE_MS", 300)
    dead, alive = RedisStore(url), RedisStore(url)
    try:
        dead.put("row", "a", 1, owner="team_a")
        dead._closed.set()  # its keeper stops renewing and answering, as if the process had been killed
        dead.client.rpush(f"{dead.prefix}:want:{dead._holder}", b"1")
        dead._keeper.join(timeout=5)  # type: ignore[union-attr]
        started = time.monotonic()
        alive.put("row", "a", 2, owner="team_a")
        assert 0.05 < time.monotonic() - started < 5
        assert alive.get("row", "a") == 2
    finally:
        dead.client.close()
        alive.close()


def test_redis_close_hands_the_lease_over_at_once(pair: tuple[RedisStore, RedisStore]) -> None:
    first, second = pair
    first.put("row", "a", 1, owner="team_a")
    first.close()
    assert first.client.get(f"{first.prefix}:lock") is None
    second.put("row", "a", 2, owner="team_a")
    assert second.get("row", "a") == 2


def test_redis_lazy_transaction_waits_for_the_next_commit(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store, raw = RedisStore(url), RedisStore(url).client
    try:
        store.put("row", "eager", 1, owner="team_a")
        trips = RoundTrips(store, monkeypatch)
        with store.transaction(lazy=True):
            store.put("id_position", "req", ("req", 1), owner="_system")
        assert trips.count == 0
        assert store.get("id_position", "req") == ("req", 1)  # this process sees it at once
        assert raw.hget(f"{store.prefix}:v:id_position", "req") is None  # Redis does not, yet
        store.put("row", "eager", 2, owner="team_a")
        assert trips.count == 1  # the next commit carries it
        assert raw.hget(f"{store.prefix}:v:id_position", "req") is not None
    finally:
        store.close()
        raw.close()


def test_redis_lazy_writes_reach_another_process_before_it_writes(pair: tuple[RedisStore, RedisStore]) -> None:
    first, second = pair
    with first.transaction(lazy=True):
        first.put("rate_bucket", "team_a:get", 9, owner="team_a")
    with second.transaction():  # takes the lease: the first writes what it deferred before handing over
        assert second.get("rate_bucket", "team_a:get") == 9
        second.put("rate_bucket", "team_a:get", 8, owner="team_a")
    assert first.get("rate_bucket", "team_a:get") == 8


def test_redis_lazy_writes_reach_redis_within_a_renewal_and_lists_see_them(url: str) -> None:
    store, raw = RedisStore(url), RedisStore(url).client
    try:
        with store.transaction(lazy=True):
            store.put("rate_bucket", "team_a:get", 7, owner="team_a")
        deadline = time.monotonic() + 10 * redis_store.RENEW_SECONDS
        while raw.hget(f"{store.prefix}:v:rate_bucket", "team_a:get") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert raw.hget(f"{store.prefix}:v:rate_bucket", "team_a:get") is not None
        with store.transaction(lazy=True):
            store.put("rate_bucket", "team_b:get", 5, owner="team_b")
        assert store.values("rate_bucket", owner=None) == [7, 5]
        assert store.count("rate_bucket", owner="team_b") == 1
    finally:
        store.close()
        raw.close()


ARGUMENT = st.one_of(st.text(st.characters(exclude_categories=["Cs"])), st.binary(), st.integers(-(2**63), 2**64))

# A command as the store sends them: a one-word name, then strings, blobs and integers.
COMMAND = st.builds(
    lambda name, args: (name, *args), st.sampled_from(["EVALSHA", "HGET"]), st.lists(ARGUMENT, max_size=8)
)


@settings(database=None, deadline=None, max_examples=200)
@given(commands=st.lists(COMMAND, min_size=1, max_size=4))
def test_redis_commands_are_packed_as_redis_py_packs_them(commands: list[tuple[Any, ...]]) -> None:
    """The store packs its commands with hiredis directly: the same bytes as redis-py's own encoder sends."""
    conn = redis.Redis().connection_pool.make_connection()  # never connects: packing only
    ours = b"".join(map(hiredis.pack_command, commands))
    assert ours == b"".join(conn.pack_commands(commands))


def test_redis_lazy_writes_pickle_an_immutable_value_once_and_a_mutable_one_as_it_was(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, other = RedisStore(url), RedisStore(url)
    pickled: list[Any] = []  # what each pickling wrote, read back
    dump = redis_store.dump

    def noted(value: Any) -> bytes:
        blob = dump(value)
        pickled.append(redis_store.load(blob))
        return blob

    monkeypatch.setattr(redis_store, "dump", noted)
    try:
        bucket = {"tokens": 5}
        for position in range(7):  # as the ids of one create move their scope's position
            with store.transaction(lazy=True):
                store.put("id_position", "team_a", ("team_a", position + 1), owner="_system")
        with store.transaction(lazy=True):
            store.put("rate_bucket", "team_a:get", bucket, owner="team_a")
        bucket["tokens"] = 4  # changed after its lazy transaction ended, never put again
        assert pickled == [{"tokens": 5}]  # the mutable one at once, as it was; the tuples not yet
        with store.transaction():
            store.put("team", "t1", {"credits": 1}, owner="team_a")
        assert pickled.count(("team_a", 7)) == 1  # only the last position, once, with the commit
        assert not any(isinstance(value, tuple) and value[1] < 7 for value in pickled)
        assert other.get("id_position", "team_a") == ("team_a", 7)
        assert other.get("rate_bucket", "team_a:get") == {"tokens": 5}
    finally:
        store.close()
        other.close()


BUSY = """
import sys, time
from mockserver.store.redis import RedisStore
store = RedisStore(sys.argv[1])
print("ready", flush=True)
until = time.monotonic() + float(sys.argv[2])
while time.monotonic() < until:
    with store.transaction(lazy=True):
        store.put("id_position", "busy", ("busy", 1), owner="_system")
store.close()
"""


def test_redis_a_process_waiting_for_the_lease_gets_it_in_turn(url: str) -> None:
    """Another process keeps transacting back to back; this one still gets the lease in turn, each time soon."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY, url, "4"], stdout=subprocess.PIPE, text=True)
    waiting = RedisStore(url)
    waits = []
    assert busy.stdout is not None
    try:
        assert busy.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # it holds the lease by now
        for n in range(40):
            started = time.monotonic()
            with waiting.transaction(lazy=True):
                waiting.put("id_position", "waiting", ("waiting", n), owner="_system")
            waits.append(time.monotonic() - started)
            time.sleep(0.01)  # as requests come: the other process takes the lease back meanwhile
    finally:
        waiting.close()
        busy.wait(timeout=30)
        busy.stdout.close()
    assert busy.returncode == 0
    assert max(waits) < 0.25, sorted(waits)[-5:]


def test_redis_a_lease_granted_to_a_process_that_left_lapses_within_the_grant(url: str) -> None:
    """A process queued for the lease and then died: the grant it never takes holds others up for GRANT_MS only."""
    store = RedisStore(url)
    try:
        store.put("team", "t1", {"credits": 1}, owner="team_a")  # holds the lease
        # A process named "gone" asks for it (as ACQUIRE does for a waiting process) and is never heard of again.
        store._run("ACQUIRE", b"gone:1", redis_store.LEASE_MS, -1, "gone")
        lock, deadline = f"{store.prefix}:lock", time.monotonic() + 5
        while store.client.get(lock) != b"gone:granted" and time.monotonic() < deadline:
            time.sleep(0.001)  # its turn over, the idle holder's keeper grants the lease to "gone"
        assert store.client.get(lock) == b"gone:granted"
        started = time.monotonic()
        store.put("team", "t1", {"credits": 3}, owner="team_a")  # queued behind "gone": waits for its grant to lapse
        waited = time.monotonic() - started
        assert redis_store.GRANT_MS / 1000 * 0.5 <= waited < redis_store.GRANT_MS / 1000 + 0.5
        assert store.get("team", "t1") == {"credits": 3}
    finally:
        store.close()


COUNTER = """
import sys, time
from mockserver.store.redis import RedisStore
store = RedisStore(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # all start together
longest = 0.0
for _ in range(int(sys.argv[2])):
    started = time.monotonic()
    with store.transaction():
        store.put("counter", "c", (store.get("counter", "c") or 0) + 1, owner="team_a")
    longest = max(longest, time.monotonic() - started)
store.close()
print(longest, flush=True)
"""


def test_redis_three_processes_take_turns_and_never_interleave(url: str) -> None:
    """Three processes increment one counter back to back: none loses an increment (the lease excludes), and each
    gets the lease in turn (the queue of waiting processes moves from holder to holder)."""
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", COUNTER, url, "150"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    try:
        for run in runs:
            assert run.stdout is not None
            assert run.stdout.readline().strip() == "ready"
        for run in runs:
            assert run.stdin is not None
            run.stdin.write("go\n")
            run.stdin.flush()
        outputs = [run.communicate(timeout=60)[0] for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert [run.returncode for run in runs] == [0, 0, 0]
    longest = [float(output.strip()) for output in outputs]
    store = RedisStore(url)
    try:
        assert store.get("counter", "c") == 450
    finally:
        store.close()
    assert max(longest) < 0.5, longest

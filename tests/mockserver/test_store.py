"""The store contract, on every backend (memory, sqlite, a real redis-server): records by kind and owner,
per-owner clear, snapshot/restore, the SYSTEM owner, transactions (atomic across threads and processes)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mockserver.store import SYSTEM, InMemoryStore, Store, StoreOpenError, StoreUrl, open_store, parse_store_url
from mockserver.store.redis import RedisStore, StoreLockError
from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.every_store


@pytest.fixture
def filled(store: Store) -> Store:
    store.put("generation", "img_1", {"n": 1}, owner="team_a")
    store.put("generation", "img_2", {"n": 2}, owner="team_b")
    store.put("generation", "img_3", {"n": 3}, owner="team_a")
    store.put("file", "file_1", {"f": 1}, owner="team_a")
    store.put("file", "file_2", {"f": 2}, owner="team_b")
    return store


def test_store_get_missing_is_none(store: Store) -> None:
    assert store.get("generation", "img_x") is None
    assert store.owner("generation", "img_x") is None


def test_store_put_then_get_and_owner(filled: Store) -> None:
    assert filled.get("generation", "img_2") == {"n": 2}
    assert filled.owner("generation", "img_2") == "team_b"
    assert filled.get("file", "img_2") is None  # kinds are separate namespaces


def test_store_put_replaces_value_in_place(filled: Store) -> None:
    filled.put("generation", "img_1", {"n": 10}, owner="team_a")
    assert filled.get("generation", "img_1") == {"n": 10}
    assert filled.values("generation", owner="team_a") == [{"n": 10}, {"n": 3}]
    assert filled.count("generation") == 3


def test_store_values_are_the_owners_in_insertion_order(filled: Store) -> None:
    assert filled.values("generation", owner="team_a") == [{"n": 1}, {"n": 3}]
    assert filled.values("generation", owner="team_b") == [{"n": 2}]
    assert filled.values("generation", owner="team_c") == []


def test_store_count_by_kind_and_owner(filled: Store) -> None:
    assert filled.count("generation") == 3
    assert filled.count("generation", owner="team_a") == 2
    assert filled.count("file", owner="team_b") == 1
    assert filled.count("character") == 0


def test_store_delete_removes_record_and_index(filled: Store) -> None:
    assert filled.delete("generation", "img_1") is True
    assert filled.get("generation", "img_1") is None
    assert filled.values("generation", owner="team_a") == [{"n": 3}]
    assert filled.count("generation") == 2


def test_store_delete_missing_is_false(filled: Store) -> None:
    assert filled.delete("generation", "img_x") is False
    assert filled.delete("nothing", "img_1") is False
    assert filled.count("generation") == 3


def test_store_clear_by_owner_leaves_other_owners_intact(filled: Store) -> None:
    filled.clear(owner="team_a")
    assert filled.get("generation", "img_1") is None
    assert filled.get("file", "file_1") is None
    assert filled.count("generation", owner="team_a") == 0
    assert filled.count("file", owner="team_a") == 0
    assert filled.get("generation", "img_2") == {"n": 2}
    assert filled.get("file", "file_2") == {"f": 2}
    assert filled.values("generation", owner="team_b") == [{"n": 2}]
    assert filled.count("generation") == 1


def test_store_clear_all(filled: Store) -> None:
    filled.clear()
    assert filled.count("generation") == 0
    assert filled.count("file") == 0
    assert filled.values("generation", owner="team_b") == []


def test_store_transaction_is_reentrant(filled: Store) -> None:
    with filled.transaction(), filled.transaction():
        filled.put("generation", "img_4", {"n": 4}, owner="team_a")
    assert filled.count("generation", owner="team_a") == 3


def test_store_snapshot_restore_round_trip(filled: Store) -> None:
    snapshot = filled.snapshot()
    filled.put("generation", "img_9", {"n": 9}, owner="team_a")
    filled.delete("generation", "img_2")
    filled.get("generation", "img_1")["n"] = 100
    filled.restore(snapshot)
    assert filled.get("generation", "img_1") == {"n": 1}
    assert filled.get("generation", "img_2") == {"n": 2}
    assert filled.get("generation", "img_9") is None
    assert filled.values("generation", owner="team_a") == [{"n": 1}, {"n": 3}]
    assert filled.owner("generation", "img_2") == "team_b"
    assert filled.count("file", owner="team_b") == 1


def test_store_snapshot_is_a_deep_copy(filled: Store) -> None:
    snapshot = filled.snapshot()
    filled.get("generation", "img_1")["n"] = 100
    assert snapshot["generation"]["img_1"] == ("team_a", {"n": 1})


def test_store_restore_does_not_alias_the_snapshot(filled: Store) -> None:
    snapshot = filled.snapshot()
    filled.restore(snapshot)
    filled.get("generation", "img_1")["n"] = 100
    filled.restore(snapshot)
    assert filled.get("generation", "img_1") == {"n": 1}


def test_store_restore_keeps_values_and_index_consistent(filled: Store) -> None:
    filled.restore(filled.snapshot())
    value = filled.get("generation", "img_1")
    value["n"] = 5
    if not isinstance(filled, InMemoryStore):  # a serializing backend keeps only what is put back
        filled.put("generation", "img_1", value, owner="team_a")
    assert filled.values("generation", owner="team_a")[0] == {"n": 5}
    assert filled.get("generation", "img_1") == {"n": 5}


def test_store_put_with_new_owner_moves_record(filled: Store) -> None:
    filled.put("generation", "img_1", {"n": 1}, owner="team_b")
    assert filled.owner("generation", "img_1") == "team_b"
    assert filled.values("generation", owner="team_a") == [{"n": 3}]
    filled.clear(owner="team_a")
    assert filled.get("generation", "img_1") == {"n": 1}


def test_store_values_of_every_owner(filled: Store) -> None:
    assert filled.values("generation", owner=None) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_store_snapshot_of_one_owner_holds_only_its_records(filled: Store) -> None:
    snapshot = filled.snapshot(owner="team_a")
    assert snapshot == {
        "generation": {"img_1": ("team_a", {"n": 1}), "img_3": ("team_a", {"n": 3})},
        "file": {"file_1": ("team_a", {"f": 1})},
    }
    filled.get("generation", "img_1")["n"] = 100
    assert snapshot["generation"]["img_1"] == ("team_a", {"n": 1})


def test_store_restore_of_one_owner_leaves_the_others(filled: Store) -> None:
    snapshot = filled.snapshot(owner="team_a")
    filled.put("generation", "img_4", {"n": 4}, owner="team_a")
    filled.delete("generation", "img_1")
    filled.put("generation", "img_2", {"n": 20}, owner="team_b")
    filled.restore(snapshot, owner="team_a")
    assert filled.values("generation", owner="team_a") == [{"n": 1}, {"n": 3}]
    assert filled.get("generation", "img_4") is None
    assert filled.get("generation", "img_2") == {"n": 20}


def test_store_restore_of_one_owner_ignores_records_of_others(filled: Store) -> None:
    filled.restore({"generation": {"img_2": ("team_b", {"n": 99})}}, owner="team_a")
    assert filled.get("generation", "img_2") == {"n": 2}
    assert filled.values("generation", owner="team_a") == []


# --- order, the SYSTEM owner, transactions -------------------------------------------------------------------------


def test_store_update_keeps_its_place_and_a_put_after_delete_goes_last(store: Store) -> None:
    for key in ("a", "b", "c"):
        store.put("row", key, key, owner="team_a")
    store.put("row", "a", "a2", owner="team_a")
    assert store.values("row", owner="team_a") == ["a2", "b", "c"]
    store.delete("row", "a")
    store.put("row", "a", "a3", owner="team_a")
    assert store.values("row", owner="team_a") == ["b", "c", "a3"]
    assert store.values("row", owner=None) == ["b", "c", "a3"]


def test_store_system_records_outlive_global_clear_snapshot_and_restore(filled: Store) -> None:
    filled.put("clock", "shift", {"offset": 5}, owner=SYSTEM)
    snapshot = filled.snapshot()
    assert "clock" not in snapshot
    filled.clear()
    assert filled.get("clock", "shift") == {"offset": 5}
    assert filled.count("generation") == 0
    filled.put("clock", "shift", {"offset": 6}, owner=SYSTEM)
    filled.restore(snapshot)
    assert filled.get("clock", "shift") == {"offset": 6}
    assert filled.values("generation", owner="team_a") == [{"n": 1}, {"n": 3}]


def test_store_transaction_reads_its_own_writes(filled: Store) -> None:
    with filled.transaction():
        filled.put("generation", "img_4", {"n": 4}, owner="team_a")
        filled.delete("generation", "img_1")
        filled.put("generation", "img_3", {"n": 30}, owner="team_a")
        assert filled.get("generation", "img_4") == {"n": 4}
        assert filled.get("generation", "img_1") is None
        assert filled.owner("generation", "img_4") == "team_a"
        assert filled.values("generation", owner="team_a") == [{"n": 30}, {"n": 4}]
        assert filled.count("generation", owner="team_a") == 2
        assert filled.count("generation") == 3
        assert filled.snapshot(owner="team_a")["generation"] == {
            "img_3": ("team_a", {"n": 30}),
            "img_4": ("team_a", {"n": 4}),
        }
        filled.clear(owner="team_b")
        assert filled.values("generation", owner=None) == [{"n": 30}, {"n": 4}]
    assert filled.values("generation", owner=None) == [{"n": 30}, {"n": 4}]
    assert filled.values("file", owner=None) == [{"f": 1}]


def _fail_half_way(store: Store) -> None:
    with store.transaction():
        store.put("generation", "img_4", {"n": 4}, owner="team_a")
        store.delete("generation", "img_2")
        store.clear(owner="team_a")
        raise RuntimeError("half-way")


def test_store_shared_transaction_discards_its_writes_on_error(filled: Store) -> None:
    if not filled.shared:
        pytest.skip("the in-memory store keeps live objects and cannot roll back (documented)")
    with pytest.raises(RuntimeError, match="half-way"):
        _fail_half_way(filled)
    assert filled.get("generation", "img_4") is None
    assert filled.get("generation", "img_2") == {"n": 2}
    assert filled.values("generation", owner="team_a") == [{"n": 1}, {"n": 3}]


def _increment(store: Store, times: int) -> None:
    for _ in range(times):
        with store.transaction():
            count = store.get("counter", "c") or 0
            store.put("counter", "c", count + 1, owner="team_a")


def test_store_transaction_is_atomic_across_threads(store: Store) -> None:
    threads = [threading.Thread(target=_increment, args=(store, 25)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("counter", "c") == 200


# A child process that imports nothing but the store (fast to start, unlike a spawned copy of the test module).
INCREMENT = """
import sys
from mockserver.store import open_store
store = open_store(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with store.transaction():
        store.put("counter", "c", (store.get("counter", "c") or 0) + 1, owner="team_a")
store.close()
"""


@pytest.mark.slow
def test_store_transaction_is_atomic_across_processes(store: Store) -> None:
    if not store.shared:
        pytest.skip("an in-memory store belongs to one process")
    url: str = store.url  # type: ignore[attr-defined]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    children = [subprocess.Popen([sys.executable, "-c", INCREMENT, url, "30"], env=env) for _ in range(3)]
    _increment(store, 30)
    assert [child.wait(timeout=60) for child in children] == [0, 0, 0]
    assert store.get("counter", "c") == 120


def test_store_shared_state_survives_reopening(filled: Store) -> None:
    if not filled.shared:
        pytest.skip("an in-memory store ends with its process")
    filled.put("generation", "img_1", {"n": 11}, owner="team_a")
    again = open_store(filled.url)  # type: ignore[attr-defined]
    try:
        assert again.values("generation", owner="team_a") == [{"n": 11}, {"n": 3}]
        assert again.values("generation", owner=None) == [{"n": 11}, {"n": 2}, {"n": 3}]
        assert again.owner("file", "file_2") == "team_b"
        assert again.count("file") == 2
    finally:
        again.close()


def test_in_memory_records_are_held_by_no_object_of_the_store_but_its_dicts() -> None:
    """A record is referenced from the store's dictionaries only: an (owner, record) pair per record was one more
    object for the garbage collector to walk for the record's whole life, and full collections of a growing store
    paused every request in flight (bench/README.md). The owners are a dictionary of strings it never walks."""

    class Record:
        pass

    store = InMemoryStore()
    records = [Record() for _ in range(3)]
    for n, record in enumerate(records):
        store.put("generation", f"img_{n}", record, owner="team_a")
    store.put("generation", "img_1", records[1], owner="team_b")  # moved to another owner
    for record in records:
        assert {type(holder) for holder in gc.get_referrers(record)} - {list} == {dict}  # the test's own list aside
    assert not gc.is_tracked(store._owners["generation"])
    assert [store.owner("generation", f"img_{n}") for n in range(3)] == ["team_a", "team_b", "team_a"]
    assert store.values("generation", owner="team_b") == [records[1]]


# --- --store URLs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "target"),
    [
        ("memory", "memory", ""),
        ("sqlite:///state.db", "sqlite", "state.db"),
        ("sqlite:////var/lib/aurous/state.db", "sqlite", "/var/lib/aurous/state.db"),
        ("redis://127.0.0.1:6379/2", "redis", "redis://127.0.0.1:6379/2"),
        ("redis://cache:6379/0?prefix=ci", "redis", "redis://cache:6379/0?prefix=ci"),
    ],
)
def test_parse_store_url_accepts_the_documented_forms(url: str, scheme: str, target: str) -> None:
    assert parse_store_url(url) == StoreUrl(scheme, target)


@pytest.mark.parametrize("url", ["", "mem", "sqlite://", "sqlite:///", "sqlite://host/x.db", "mysql://x/y", "/x.db"])
def test_parse_store_url_refuses_anything_else(url: str) -> None:
    with pytest.raises(ValueError, match="store must be 'memory'"):
        parse_store_url(url)


def test_open_store_memory_is_a_fresh_in_memory_store() -> None:
    store = open_store("memory")
    assert isinstance(store, InMemoryStore)
    assert store.shared is False


def test_open_store_reports_a_redis_that_does_not_answer() -> None:
    with pytest.raises(StoreOpenError, match=r"cannot open the store redis://127\.0\.0\.1:\d+/0"):
        open_store(f"redis://127.0.0.1:{free_port()}/0")


def test_open_store_reports_a_sqlite_file_it_cannot_create(tmp_path: Path) -> None:
    with pytest.raises(StoreOpenError, match="cannot open the store sqlite"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'state.db'}")


def _lose_the_lock(store: RedisStore) -> None:
    with store.transaction():
        store.put("row", "lost", 2, owner="team_a")
        store.client.set(f"{store.prefix}:lock", b"someone else")  # as if it expired and another process took it


def test_redis_store_commit_fails_whole_when_its_lock_was_lost(redis_url: str) -> None:
    store = RedisStore(f"{redis_url}?prefix=lost{threading.get_ident()}")
    try:
        store.put("row", "kept", 1, owner="team_a")
        with pytest.raises(StoreLockError, match="expired"):
            _lose_the_lock(store)
        assert store.values("row", owner="team_a") == [1]
    finally:
        store.client.delete(f"{store.prefix}:lock")
        store.close()


def test_redis_prefixes_keep_two_emulators_apart(redis_url: str) -> None:
    first, second = open_store(f"{redis_url}?prefix=one"), open_store(f"{redis_url}?prefix=two")
    try:
        first.clear()
        second.clear()
        first.put("row", "a", 1, owner="team_a")
        assert second.get("row", "a") is None
        assert second.count("row") == 0
        second.clear()
        assert first.get("row", "a") == 1
    finally:
        first.clear()
        first.close()
        second.close()

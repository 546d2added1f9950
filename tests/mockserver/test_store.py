"""Tests for mockserver.store.InMemoryStore: records by kind and owner, per-owner clear, snapshot/restore."""

from __future__ import annotations

import pytest

from mockserver.store import InMemoryStore


@pytest.fixture
def filled() -> InMemoryStore:
    store = InMemoryStore()
    store.put("generation", "img_1", {"n": 1}, owner="team_a")
    store.put("generation", "img_2", {"n": 2}, owner="team_b")
    store.put("generation", "img_3", {"n": 3}, owner="team_a")
    store.put("file", "file_1", {"f": 1}, owner="team_a")
    store.put("file", "file_2", {"f": 2}, owner="team_b")
    return store


def test_store_get_missing_is_none() -> None:
    store = InMemoryStore()
    assert store.get("generation", "img_x") is None
    assert store.owner("generation", "img_x") is None


def test_store_put_then_get_and_owner(filled: InMemoryStore) -> None:
    assert filled.get("generation", "img_2") == {"n": 2}
    assert filled.owner("generation", "img_2") == "team_b"
    assert filled.get("file", "img_2") is None  # kinds are separate namespaces


def test_store_put_replaces_value_in_place(filled: InMemoryStore) -> None:
    filled.put("generation", "img_1", {"n": 10}, owner="team_a")
    assert filled.get("generation", "img_1") == {"n": 10}
    assert filled.values("generation", owner="team_a") == [{"n": 10}, {"n": 3}]
    assert filled.count("generation") == 3


def test_store_values_are_the_owners_in_insertion_order(filled: InMemoryStore) -> None:
    assert filled.values("generation", owner="team_a") == [{"n": 1}, {"n": 3}]
    assert filled.values("generation", owner="team_b") == [{"n": 2}]
    assert filled.values("generation", owner="team_c") == []


def test_store_count_by_kind_and_owner(filled: InMemoryStore) -> None:
    assert filled.count("generation") == 3
    assert filled.count("generation", owner="team_a") == 2
    assert filled.count("file", owner="team_b") == 1
    assert filled.count("character") == 0


def test_store_delete_removes_record_and_index(filled: InMemoryStore) -> None:
    assert filled.delete("generation", "img_1") is True
    assert filled.get("generation", "img_1") is None
    assert filled.values("generation", owner="team_a") == [{"n": 3}]
    assert filled.count("generation") == 2


def test_store_delete_missing_is_false(filled: InMemoryStore) -> None:
    assert filled.delete("generation", "img_x") is False
    assert filled.delete("nothing", "img_1") is False
    assert filled.count("generation") == 3


def test_store_clear_by_owner_leaves_other_owners_intact(filled: InMemoryStore) -> None:
    filled.clear(owner="team_a")
    assert filled.get("generation", "img_1") is None
    assert filled.get("file", "file_1") is None
    assert filled.count("generation", owner="team_a") == 0
    assert filled.count("file", owner="team_a") == 0
    assert filled.get("generation", "img_2") == {"n": 2}
    assert filled.get("file", "file_2") == {"f": 2}
    assert filled.values("generation", owner="team_b") == [{"n": 2}]
    assert filled.count("generation") == 1


def test_store_clear_all(filled: InMemoryStore) -> None:
    filled.clear()
    assert filled.count("generation") == 0
    assert filled.count("file") == 0
    assert filled.values("generation", owner="team_b") == []


def test_store_transaction_is_reentrant(filled: InMemoryStore) -> None:
    with filled.transaction(), filled.transaction():
        filled.put("generation", "img_4", {"n": 4}, owner="team_a")
    assert filled.count("generation", owner="team_a") == 3


def test_store_snapshot_restore_round_trip(filled: InMemoryStore) -> None:
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


def test_store_snapshot_is_a_deep_copy(filled: InMemoryStore) -> None:
    snapshot = filled.snapshot()
    filled.get("generation", "img_1")["n"] = 100
    assert snapshot["generation"]["img_1"] == ("team_a", {"n": 1})


def test_store_restore_does_not_alias_the_snapshot(filled: InMemoryStore) -> None:
    snapshot = filled.snapshot()
    filled.restore(snapshot)
    filled.get("generation", "img_1")["n"] = 100
    filled.restore(snapshot)
    assert filled.get("generation", "img_1") == {"n": 1}


def test_store_restore_keeps_values_and_index_consistent(filled: InMemoryStore) -> None:
    filled.restore(filled.snapshot())
    filled.get("generation", "img_1")["n"] = 5
    assert filled.values("generation", owner="team_a")[0] == {"n": 5}


def test_store_put_with_new_owner_moves_record(filled: InMemoryStore) -> None:
    filled.put("generation", "img_1", {"n": 1}, owner="team_b")
    assert filled.owner("generation", "img_1") == "team_b"
    assert filled.values("generation", owner="team_a") == [{"n": 3}]
    filled.clear(owner="team_a")
    assert filled.get("generation", "img_1") == {"n": 1}


def test_store_values_of_every_owner(filled: InMemoryStore) -> None:
    assert filled.values("generation", owner=None) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_store_snapshot_of_one_owner_holds_only_its_records(filled: InMemoryStore) -> None:
    snapshot = filled.snapshot(owner="team_a")
    assert snapshot == {
        "generation": {"img_1": ("team_a", {"n": 1}), "img_3": ("team_a", {"n": 3})},
        "file": {"file_1": ("team_a", {"f": 1})},
    }
    filled.get("generation", "img_1")["n"] = 100
    assert snapshot["generation"]["img_1"] == ("team_a", {"n": 1})


def test_store_restore_of_one_owner_leaves_the_others(filled: InMemoryStore) -> None:
    snapshot = filled.snapshot(owner="team_a")
    filled.put("generation", "img_4", {"n": 4}, owner="team_a")
    filled.delete("generation", "img_1")
    filled.put("generation", "img_2", {"n": 20}, owner="team_b")
    filled.restore(snapshot, owner="team_a")
    assert filled.values("generation", owner="team_a") == [{"n": 1}, {"n": 3}]
    assert filled.get("generation", "img_4") is None
    assert filled.get("generation", "img_2") == {"n": 20}


def test_store_restore_of_one_owner_ignores_records_of_others(filled: InMemoryStore) -> None:
    filled.restore({"generation": {"img_2": ("team_b", {"n": 99})}}, owner="team_a")
    assert filled.get("generation", "img_2") == {"n": 2}
    assert filled.values("generation", owner="team_a") == []

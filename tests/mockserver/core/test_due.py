"""The due queue: what one heap per team would pop, from records whose size does not grow with the team's backlog."""

from __future__ import annotations

import heapq
import pickle
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.due import CHUNK, DueIndex, DueQueue
from mockserver.store import InMemoryStore

TEAM = "team_1"


class Writes(InMemoryStore):
    """The in-memory store, noting the pickled size of every record written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[tuple[str, int]] = []

    def put(self, kind: str, key: str, value: Any, *, owner: str) -> None:
        self.written.append((kind, len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))))
        super().put(kind, key, value, owner=owner)


# An operation: push an entry due at an instant, or pop what is due by an instant.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 50)),
        st.tuples(st.just("pop"), st.integers(-1, 50)),
    ),
    max_size=400,
)


@settings(database=None, deadline=None, max_examples=60)
@given(ops=OPS, legacy=st.lists(st.integers(0, 50), max_size=80))
def test_the_queue_pops_what_one_heap_would_in_the_same_order(ops: list[tuple[str, int]], legacy: list[int]) -> None:
    store, model = InMemoryStore(), [(at, f"old_{n}") for n, at in enumerate(legacy)]
    heapq.heapify(model)
    if model:  # a team whose state was written before the chunks: one heap under the index's key
        store.put("due", TEAM, list(model), owner=TEAM)
    queue = DueQueue(store, "due")
    for n, (op, at) in enumerate(ops):
        if op == "push":
            queue.push(TEAM, (at, f"gen_{n}"))
            heapq.heappush(model, (at, f"gen_{n}"))
        else:
            expected = []
            while model and model[0][0] <= at:
                expected.append(heapq.heappop(model))
            assert queue.pop_due(TEAM, at) == expected
        assert queue.next_at(TEAM) == (model[0][0] if model else None)
    chunks = [chunk for _, chunk in store.snapshot(owner=TEAM).get("due_chunk", {}).values()]
    stored = store.get("due", TEAM)
    kept = list(stored) if isinstance(stored, list) else [entry for chunk in chunks for entry in chunk]  # not migrated
    assert sorted(kept) == sorted(model)
    assert all(len(chunk) <= max(CHUNK, len(legacy)) for chunk in chunks)


def test_a_push_writes_records_of_bounded_size_whatever_the_backlog() -> None:
    store = Writes()
    queue = DueQueue(store, "due")
    for n in range(1_000):
        queue.push(TEAM, (1_700_000_000.0 + n % 7, f"img_01JZ{n:022d}"))
    store.written.clear()
    queue.push(TEAM, (1_700_000_000.5, "img_01JZ" + "9" * 22))
    sizes = dict(store.written)
    assert set(sizes) == {"due", "due_chunk"}
    # One heap of the 1,001 entries pickles to ~45 KB; a chunk is at most CHUNK entries, the index a number each.
    assert sizes["due_chunk"] <= CHUNK * 50
    assert sizes["due"] < 1_500
    index = store.get("due", TEAM)
    assert isinstance(index, DueIndex)
    assert len(index.chunks) == -(-1_001 // CHUNK)


def test_a_team_queue_leaves_other_teams_alone() -> None:
    store = InMemoryStore()
    queue = DueQueue(store, "due")
    queue.push("team_a", (5, "a"))
    queue.push("team_b", (3, "b"))
    assert queue.pop_due("team_a", 10) == [(5, "a")]
    assert queue.next_at("team_a") is None
    assert queue.next_at("team_b") == 3
    store.clear(owner="team_b")  # a team reset forgets its queue with its other records
    assert queue.next_at("team_b") is None
    assert store.count("due_chunk") == 0

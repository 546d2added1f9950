"""A team's due work (generations, character syntheses) in records of bounded size.

Every entry is a tuple whose first item is the instant it falls due (one type per queue: seconds since the epoch
for generations, datetimes for syntheses); the rest identifies the work. Entries are popped in tuple order, as
one heap would give them.

A shared store (sqlite, Redis) pickles a record whole on every write, so one heap per team made every create of a
team with 1,000 pending generations pickle, send and store 45 KB. The entries now live in chunks of at most
``CHUNK``, each a heap (kind ``{kind}_chunk``, key ``{team}:{n}``); a team's index (kind ``{kind}``, key the
team) holds each chunk's earliest instant and the earliest of all, which is all a request reads to know that
nothing is due. An entry goes to the newest chunk, or opens the next one when that is full: a create writes one
chunk and the index, whatever the team has pending. A heap stored whole under the index's key (state written
before) is read as chunk 0.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mockserver.store import Store

CHUNK = 64  # entries per chunk: a create pickles at most this many (~3 KB), and the index one number per chunk


@dataclass(slots=True)
class DueIndex:
    """Where a team's due entries are: ``chunks`` maps a chunk's number to its earliest instant."""

    chunks: dict[int, Any] = field(default_factory=dict)
    last: int = 0  # the chunk new entries go to while it has room
    next_at: Any = None  # the earliest instant of every chunk; None when nothing is due


class DueQueue:
    """The due entries of each team, in ``store`` under ``kind`` (the index) and ``{kind}_chunk`` (the heaps)."""

    def __init__(self, store: Store, kind: str, *, normalize: Callable[[Any], Any] | None = None) -> None:
        self.store = store
        self.kind = kind
        self.chunk_kind = f"{kind}_chunk"
        self.normalize = normalize  # turns an entry of an older format into the current one

    def next_at(self, team_id: str) -> Any | None:
        """The earliest instant the team has an entry for (None: nothing is due); one read, no write."""
        index = self.store.get(self.kind, team_id)
        if index is None or isinstance(index, DueIndex):
            return None if index is None else index.next_at
        return min(self._entries(index), default=(None,))[0]  # a whole heap from before: migrated on the next write

    def push(self, team_id: str, entry: tuple[Any, ...]) -> None:
        """Add ``entry`` (call inside the caller's transaction)."""
        index = self._index(team_id)
        number = index.last
        chunk_key = f"{team_id}:{number}"
        chunk: list[tuple[Any, ...]] | None = self.store.get(self.chunk_kind, chunk_key)
        if chunk is not None and len(chunk) >= CHUNK:
            number += 1
            chunk_key, chunk = f"{team_id}:{number}", None
        chunk = chunk or []
        heapq.heappush(chunk, entry)
        self.store.put(self.chunk_kind, chunk_key, chunk, owner=team_id)
        at = entry[0]
        earliest = index.chunks.get(number)
        index.chunks[number] = at if earliest is None or at < earliest else earliest
        index.last = number
        if index.next_at is None or at < index.next_at:
            index.next_at = at
        self.store.put(self.kind, team_id, index, owner=team_id)

    def pop_due(self, team_id: str, at: Any) -> list[tuple[Any, ...]]:
        """Remove and return, in order, every entry due by ``at`` (call inside the caller's transaction)."""
        index = self._index(team_id)
        if index.next_at is None or index.next_at > at:
            return []
        due: list[tuple[Any, ...]] = []
        for number, earliest in list(index.chunks.items()):
            if earliest > at:
                continue
            chunk_key = f"{team_id}:{number}"
            chunk: list[tuple[Any, ...]] = self.store.get(self.chunk_kind, chunk_key) or []
            while chunk and chunk[0][0] <= at:
                due.append(heapq.heappop(chunk))
            if chunk:
                index.chunks[number] = chunk[0][0]
                self.store.put(self.chunk_kind, chunk_key, chunk, owner=team_id)
            else:
                del index.chunks[number]
                self.store.delete(self.chunk_kind, chunk_key)
        index.next_at = min(index.chunks.values(), default=None)
        self.store.put(self.kind, team_id, index, owner=team_id)
        due.sort()
        return due

    def _index(self, team_id: str) -> DueIndex:
        stored = self.store.get(self.kind, team_id)
        if stored is None:
            return DueIndex()
        if isinstance(stored, DueIndex):
            return stored
        heap = self._entries(stored)  # a whole heap from before: it becomes chunk 0
        heapq.heapify(heap)
        if heap:
            self.store.put(self.chunk_kind, f"{team_id}:0", heap, owner=team_id)
            return DueIndex({0: heap[0][0]}, 0, heap[0][0])
        return DueIndex()

    def _entries(self, heap: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [self.normalize(entry) for entry in heap] if self.normalize else list(heap)

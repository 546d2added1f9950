"""State: the ``Store`` protocol and ``InMemoryStore``, the embedded default.

Records are grouped by *kind* (``"generation"``, ``"team"`` …) and owned by a team, so one team's
state can be listed, reset or snapshotted without touching another's. Lookups by key are global
(ids are unique), and the service checks ownership so another team's id answers 404.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

Records = dict[str, dict[str, tuple[str, Any]]]  # kind → key → (owner, value): what a snapshot holds


class Store(Protocol):
    """The small interface every state backend implements."""

    def transaction(self) -> Any:
        """A context manager that makes the enclosed reads and writes atomic."""

    def get(self, kind: str, key: str) -> Any | None: ...

    def owner(self, kind: str, key: str) -> str | None: ...

    def put(self, kind: str, key: str, value: Any, *, owner: str) -> None: ...

    def delete(self, kind: str, key: str) -> bool: ...

    def values(self, kind: str, *, owner: str | None) -> list[Any]:
        """The owner's records of ``kind`` in insertion order (oldest first); every owner's when ``owner`` is None."""

    def count(self, kind: str, *, owner: str | None = None) -> int: ...

    def clear(self, *, owner: str | None = None) -> None:
        """Forget the owner's records of every kind (all records when ``owner`` is None)."""

    def snapshot(self, *, owner: str | None = None) -> Records:
        """A deep copy of the owner's records of every kind (of all records when ``owner`` is None)."""

    def restore(self, records: Records, *, owner: str | None = None) -> None:
        """Replace the owner's records (all records when ``owner`` is None) by a copy of ``records``."""


class InMemoryStore:
    """Dictionaries behind one re-entrant lock; the default for ``aurous-mock serve``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, tuple[str, Any]]] = {}
        self._by_owner: dict[tuple[str, str], dict[str, Any]] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            yield

    def get(self, kind: str, key: str) -> Any | None:
        entry = self._records.get(kind, {}).get(key)
        return None if entry is None else entry[1]

    def owner(self, kind: str, key: str) -> str | None:
        entry = self._records.get(kind, {}).get(key)
        return None if entry is None else entry[0]

    def put(self, kind: str, key: str, value: Any, *, owner: str) -> None:
        with self._lock:
            previous = self._records.setdefault(kind, {}).get(key)
            if previous is not None and previous[0] != owner:
                self._by_owner.get((kind, previous[0]), {}).pop(key, None)
            self._records[kind][key] = (owner, value)
            self._by_owner.setdefault((kind, owner), {})[key] = value

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            entry = self._records.get(kind, {}).pop(key, None)
            if entry is None:
                return False
            self._by_owner.get((kind, entry[0]), {}).pop(key, None)
            return True

    def values(self, kind: str, *, owner: str | None) -> list[Any]:
        with self._lock:
            if owner is None:
                return [value for _, value in self._records.get(kind, {}).values()]
            return list(self._by_owner.get((kind, owner), {}).values())

    def count(self, kind: str, *, owner: str | None = None) -> int:
        if owner is None:
            return len(self._records.get(kind, {}))
        return len(self._by_owner.get((kind, owner), {}))

    def clear(self, *, owner: str | None = None) -> None:
        with self._lock:
            if owner is None:
                self._records.clear()
                self._by_owner.clear()
                return
            for (kind, who), rows in list(self._by_owner.items()):
                if who == owner:
                    for key in rows:
                        self._records.get(kind, {}).pop(key, None)
                    del self._by_owner[(kind, who)]

    def snapshot(self, *, owner: str | None = None) -> Records:
        """A deep copy of the owner's records (of every record when ``owner`` is None)."""
        with self._lock:
            if owner is None:
                return copy.deepcopy(self._records)
            return copy.deepcopy(
                {
                    kind: {key: (owner, value) for key, value in rows.items()}
                    for (kind, who), rows in self._by_owner.items()
                    if who == owner and rows
                }
            )

    def restore(self, records: Records, *, owner: str | None = None) -> None:
        """Replace the owner's records (every record when ``owner`` is None) by a copy of ``records``.

        A team's restore leaves other owners' records alone; a record of ``records`` owned by someone else is
        ignored, so restoring a team's snapshot can never write into another team.
        """
        fresh = copy.deepcopy(records)
        with self._lock:
            if owner is None:
                self._records = fresh
                self._by_owner = {}
                for kind, rows in self._records.items():
                    for key, (who, value) in rows.items():
                        self._by_owner.setdefault((kind, who), {})[key] = value
                return
            self.clear(owner=owner)
            for kind, rows in fresh.items():
                for key, (who, value) in rows.items():
                    if who == owner:
                        self.put(kind, key, value, owner=owner)

"""``InMemoryStore``: the ``Store`` as dictionaries in this process (``--store memory``, the default)."""

from __future__ import annotations

import copy
import threading
from contextlib import AbstractContextManager
from typing import Any

from mockserver.store.protocol import SYSTEM, Records


class InMemoryStore:
    """Dictionaries behind one re-entrant lock; the default for ``aurous-mock serve``.

    Values are the live objects: a service that changes a record it got sees the change at once, even before
    it ``put`` s it back. The shared backends do not forgive a missing ``put``, so the services never rely on that.
    """

    shared = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # kind → key → the record, and beside it kind → key → its owner. Not (owner, record) pairs: a tuple holding a
        # record is one more object for the garbage collector to walk per record, for as long as the record lives
        # (a create keeps two), and full collections of a growing store paused every request in flight; a dict of
        # strings is no work for it.
        self._records: dict[str, dict[str, Any]] = {}
        self._owners: dict[str, dict[str, str]] = {}
        self._by_owner: dict[tuple[str, str], dict[str, Any]] = {}

    def transaction(self, *, lazy: bool = False) -> AbstractContextManager[object]:
        return self._lock  # the lock itself: every request takes it once or twice, and a generator costs 1 µs more

    def get(self, kind: str, key: str) -> Any | None:
        return self._records.get(kind, {}).get(key)

    def owner(self, kind: str, key: str) -> str | None:
        return self._owners.get(kind, {}).get(key)

    def put(self, kind: str, key: str, value: Any, *, owner: str) -> None:
        with self._lock:
            rows = self._records.setdefault(kind, {})
            owners = self._owners.setdefault(kind, {})
            previous = owners.get(key)
            if previous is not None:
                if previous == owner and rows[key] is value:
                    return  # the live object is already there, under its owner (a rate bucket or a team, in place)
                if previous != owner:
                    self._by_owner.get((kind, previous), {}).pop(key, None)
            rows[key] = value
            owners[key] = owner
            self._by_owner.setdefault((kind, owner), {})[key] = value

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            previous = self._owners.get(kind, {}).pop(key, None)
            if previous is None:
                return False
            del self._records[kind][key]
            self._by_owner.get((kind, previous), {}).pop(key, None)
            return True

    def values(self, kind: str, *, owner: str | None) -> list[Any]:
        with self._lock:
            if owner is None:
                return list(self._records.get(kind, {}).values())
            return list(self._by_owner.get((kind, owner), {}).values())

    def count(self, kind: str, *, owner: str | None = None) -> int:
        if owner is None:
            return len(self._records.get(kind, {}))
        return len(self._by_owner.get((kind, owner), {}))

    def clear(self, *, owner: str | None = None) -> None:
        with self._lock:
            if owner is None:
                self._keep_only(SYSTEM)
                return
            for (kind, who), rows in list(self._by_owner.items()):
                if who == owner:
                    for key in rows:
                        self._records.get(kind, {}).pop(key, None)
                        self._owners.get(kind, {}).pop(key, None)
                    del self._by_owner[(kind, who)]

    def snapshot(self, *, owner: str | None = None) -> Records:
        """A deep copy of the owner's records (of every record when ``owner`` is None)."""
        with self._lock:
            if owner is None:
                return copy.deepcopy(
                    {
                        kind: kept
                        for kind, owners in self._owners.items()
                        if (
                            kept := {
                                key: (who, self._records[kind][key]) for key, who in owners.items() if who != SYSTEM
                            }
                        )
                    }
                )
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
            self.clear(owner=owner)
            for kind, rows in fresh.items():
                for key, (who, value) in rows.items():
                    if who == owner or (owner is None and who != SYSTEM):
                        self.put(kind, key, value, owner=who)

    def _keep_only(self, owner: str) -> None:
        """Forget every record not owned by ``owner``."""
        owners = {kind: {k: who for k, who in rows.items() if who == owner} for kind, rows in self._owners.items()}
        self._owners = {kind: rows for kind, rows in owners.items() if rows}
        self._records = {kind: {k: self._records[kind][k] for k in rows} for kind, rows in self._owners.items()}
        self._by_owner = {(kind, who): rows for (kind, who), rows in self._by_owner.items() if who == owner}

    def close(self) -> None:
        """Nothing to release: the records go with the object."""

"""State: the ``Store`` protocol, ``InMemoryStore`` (the embedded default) and :func:`open_store` (``--store URL``).

Records are grouped by *kind* (``"generation"``, ``"team"`` …) and owned by a team, so one team's
state can be listed, reset or snapshotted without touching another's. Lookups by key are global
(ids are unique), and the service checks ownership so another team's id answers 404.

Three backends implement the protocol: ``memory`` (this module: live objects behind one lock),
``sqlite:///path.db`` (:mod:`mockserver.sqlite_store`) and ``redis://host:port/db``
(:mod:`mockserver.redis_store`). The last two serialize every value, so a service must ``put`` each record it
changes inside the transaction that read it; they are ``shared``: several processes may use one state.
"""

from __future__ import annotations

import copy
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

Records = dict[str, dict[str, tuple[str, Any]]]  # kind → key → (owner, value): what a snapshot holds
# The owner of the emulator's own records (the shared clock, seeded id positions, snapshots). No team can have
# it, and the global verbs (clear, snapshot, restore with ``owner=None``) leave its records alone.
SYSTEM = "_system"
MEMORY = "memory"
BAD_URL = "store must be 'memory', 'sqlite:///path/to/file.db' or 'redis://host:port/db', not {url!r}."
CANNOT_OPEN = "cannot open the store {url}: {error}"


class StoreOpenError(Exception):
    """The store a URL names could not be opened (a missing directory, Redis not answering …)."""


class Store(Protocol):
    """The small interface every state backend implements."""

    shared: bool  # other processes may use the same state: per-process copies of it must not stand in for it

    def transaction(self) -> AbstractContextManager[object]:
        """A context manager that makes the enclosed reads and writes atomic (re-entrant within a thread).

        Shared backends also make it all-or-nothing: an exception inside it discards its writes.
        """

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

    def close(self) -> None:
        """Release connections; the state itself stays where it is (gone, for ``memory``)."""


class InMemoryStore:
    """Dictionaries behind one re-entrant lock; the default for ``aurous-mock serve``.

    Values are the live objects: a service that changes a record it got sees the change at once, even before
    it ``put`` s it back. The shared backends do not forgive a missing ``put``, so the services never rely on that.
    """

    shared = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, tuple[str, Any]]] = {}
        self._by_owner: dict[tuple[str, str], dict[str, Any]] = {}

    def transaction(self) -> AbstractContextManager[object]:
        return self._lock  # the lock itself: every request takes it once or twice, and a generator costs 1 µs more

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
                self._keep_only(SYSTEM)
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
                return copy.deepcopy(
                    {
                        kind: kept
                        for kind, rows in self._records.items()
                        if (kept := {key: entry for key, entry in rows.items() if entry[0] != SYSTEM})
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
        kept = {kind: {k: e for k, e in rows.items() if e[0] == owner} for kind, rows in self._records.items()}
        self._records = {kind: rows for kind, rows in kept.items() if rows}
        self._by_owner = {(kind, who): rows for (kind, who), rows in self._by_owner.items() if who == owner}

    def close(self) -> None:
        """Nothing to release: the records go with the object."""


# --- --store URL ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A parsed ``--store`` value: ``scheme`` is ``memory``, ``sqlite`` or ``redis``; ``target`` the path or URL."""

    scheme: str
    target: str


def parse_store_url(url: str) -> StoreUrl:
    """Check a ``--store`` value without opening anything (``ValueError`` with the accepted forms otherwise)."""
    if url == MEMORY:
        return StoreUrl(MEMORY, "")
    parts = urlsplit(url)
    if parts.scheme == "sqlite" and not parts.netloc and len(parts.path) > 1 and not parts.query:
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them
        return StoreUrl("sqlite", parts.path[1:])
    if parts.scheme in ("redis", "rediss", "unix") and (parts.netloc or parts.path):
        return StoreUrl("redis", url)
    raise ValueError(BAD_URL.format(url=url))


def open_store(url: str) -> Store:
    """The backend a ``--store`` URL names; the only place that knows the forms (see :func:`parse_store_url`)."""
    parsed = parse_store_url(url)
    try:
        if parsed.scheme == "sqlite":
            from mockserver.sqlite_store import SqliteStore  # imported on demand: the default needs neither

            return SqliteStore(Path(parsed.target))
        if parsed.scheme == "redis":
            from mockserver.redis_store import RedisStore

            return RedisStore(parsed.target)
    except Exception as error:  # each backend fails in its own way; the caller needs one
        raise StoreOpenError(CANNOT_OPEN.format(url=url, error=error)) from error
    return InMemoryStore()

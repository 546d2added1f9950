"""The ``Store`` protocol every backend implements, and the names the backends share (``SYSTEM``, ``Records``).

Records are grouped by *kind* (``"generation"``, ``"team"`` …) and owned by a team, so one team's
state can be listed, reset or snapshotted without touching another's. Lookups by key are global
(ids are unique), and the service checks ownership so another team's id answers 404.

This module imports nothing of ours, so the package's door (``mockserver.store``) and each backend
(``memory``, ``sqlite``, ``redis``) import it without a cycle.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

Records = dict[str, dict[str, tuple[str, Any]]]  # kind → key → (owner, value): what a snapshot holds
# The owner of the emulator's own records (the shared clock, seeded id positions, snapshots). No team can have
# it, and the global verbs (clear, snapshot, restore with ``owner=None``) leave its records alone.
SYSTEM = "_system"


class Store(Protocol):
    """The small interface every state backend implements."""

    shared: bool  # other processes may use the same state: per-process copies of it must not stand in for it

    def transaction(self, *, lazy: bool = False) -> AbstractContextManager[object]:
        """A context manager that makes the enclosed reads and writes atomic (re-entrant within a thread).

        Shared backends also make it all-or-nothing: an exception inside it discards its writes.
        ``lazy`` allows a backend to hand the writes to other processes later: with this process's next
        transaction that is not lazy, before any other process writes, and within a second; a process killed
        first loses them. The outermost transaction decides. Only for records whose loss breaks no promise: an
        id position (the ids of records are stored with them, by a later transaction) or a rate-limit bucket.
        Redis defers them; memory and sqlite commit at once all the same.
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

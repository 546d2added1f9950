"""What every process of one emulator shares through the store: the base clock, the global shift, id positions.

A single process keeps these in memory (``InMemoryStore``). With a shared store (``sqlite``, ``redis``) each
worker, replica or restarted process reads them from the store, so there is one clock for all of them: the
base clock is anchored once (the first process to start writes the anchor, later ones read it), the global
shift (``/_mock/clock/*?global=true``) is read on every ``now()``, and seeded id streams advance once for all.
These records belong to :data:`~mockserver.store.SYSTEM`, so neither a reset nor a snapshot restore touches them.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from mockserver.clock import SEEDED_START, Clock, SystemClock, TeamTime, VirtualClock
from mockserver.settings import Settings
from mockserver.store import SYSTEM, Store

CLOCK, POSITION = "clock", "id_position"
SHIFT = "shift"


@dataclass(frozen=True, slots=True)
class Anchor:
    """The base clock shows ``at`` at the real instant ``real`` (seconds since the epoch)."""

    at: datetime
    real: float


def anchor(store: Store, settings: Settings) -> Anchor:
    """The base clock's anchor for these settings: read from the store, or written there by the first process.

    It is keyed by the clock settings, so starting again with another ``--clock``, ``clock_start`` or ``--speed``
    starts another timeline; restarting with the same ones resumes the same timeline.
    """
    start = settings.clock_start.isoformat() if settings.clock_start is not None else "-"
    key = f"anchor:{settings.clock}:{start}:{settings.speed}"
    with store.transaction():
        found: Anchor | None = store.get(CLOCK, key)
        if found is None:
            real = time.time()
            found = Anchor(settings.clock_start or _default_start(settings) or datetime.fromtimestamp(real, UTC), real)
            store.put(CLOCK, key, found, owner=SYSTEM)
    return found


def _default_start(settings: Settings) -> datetime | None:
    """A virtual clock starts now (whole seconds) or, seeded, at :data:`~mockserver.clock.SEEDED_START`, so that two
    seeded runs show the same instants and mint the same ids; the system clock shows the wall clock (None)."""
    if settings.clock != "virtual":
        return None
    return SEEDED_START if settings.seed is not None else datetime.now(UTC).replace(microsecond=0)


def base_clock(store: Store, settings: Settings) -> Clock:
    """The system clock (times ``--speed``) or a virtual one, anchored where every process sharing ``store`` agrees."""
    found = anchor(store, settings)
    if settings.clock == "virtual":
        return VirtualClock(found.at)
    return SystemClock(settings.speed, start=found.at, started=found.real)


class StoredShift:
    """The global shift in the store (a :class:`~mockserver.clock.ShiftCell`): every process moves the same one."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self) -> TeamTime:
        shift: TeamTime | None = self.store.get(CLOCK, SHIFT)
        return shift if shift is not None else TeamTime()

    @contextmanager
    def change(self) -> Iterator[TeamTime]:
        with self.store.transaction():
            shift = self.load()
            yield shift
            self.store.put(CLOCK, SHIFT, shift, owner=SYSTEM)


class StoredPositions:
    """Seeded id streams' positions in the store (:class:`~mockserver.ids.Positions`), one record per scope."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def next(self, scope: str) -> int:
        with self.store.transaction(lazy=True):  # an id that is kept is stored with its record
            found: tuple[str, int] | None = self.store.get(POSITION, scope)
            position = found[1] if found is not None else 0
            self.store.put(POSITION, scope, (scope, position + 1), owner=SYSTEM)
        return position

    def forget(self, scope: str | None, keep: Collection[str]) -> None:
        with self.store.transaction():
            if scope is not None:
                self.store.delete(POSITION, scope)
                return
            rows: list[tuple[str, int]] = self.store.values(POSITION, owner=SYSTEM)
            for name, _ in rows:
                if name not in keep:
                    self.store.delete(POSITION, name)

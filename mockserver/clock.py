"""Time: the Clock protocol, the system and virtual base clocks, and per-team views of them.

Every team reads its own time: the base clock plus that team's offset, optionally frozen.
Parallel tests that move time therefore never disturb each other (each uses its own key/team).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Where a seeded virtual clock starts unless ``clock_start`` says otherwise (``serve --seed N --clock virtual``, the
# pytest plugin's ``--aurous-seed``): ids embed their instant, so a seeded run must start at the same one every time.
SEEDED_START = datetime(2026, 6, 1, tzinfo=UTC)


class Clock(Protocol):
    """A source of the current time (always timezone-aware UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time, optionally running faster or slower than real time (``speed``)."""

    def __init__(self, speed: float = 1.0, *, start: datetime | None = None, started: float | None = None) -> None:
        """``start`` is the time shown at the real instant ``started`` (default: now, shown as itself)."""
        self.speed = speed
        self._anchor_real = time.time() if started is None else started
        self._anchor = start or datetime.fromtimestamp(self._anchor_real, UTC)

    def now(self) -> datetime:
        elapsed = (time.time() - self._anchor_real) * self.speed
        return self._anchor + timedelta(seconds=elapsed)


class VirtualClock:
    """A clock that moves only when told: ``advance``, ``set``. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, when: datetime) -> datetime:
        with self._lock:
            self._now = when
            return self._now


@functools.lru_cache(maxsize=64)
def shift(seconds: float) -> timedelta:
    """``timedelta(seconds=seconds)``, remembered: building one costs more than the rest of a team's ``now``, and
    the shifts read on every request (a team's offset, a token's lifetime) only change when they are set."""
    return timedelta(seconds=seconds)


@dataclass(slots=True)
class TeamTime:
    """A team's view of the base clock: an offset in seconds and an optional frozen instant."""

    offset: float = 0.0
    frozen_at: datetime | None = None

    def now(self, base: Clock) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at
        if not self.offset:
            return base.now()  # most teams never move their clock; each request reads it twice or more
        return base.now() + shift(self.offset)

    def advance(self, base: Clock, seconds: float) -> datetime:
        if self.frozen_at is not None:
            self.frozen_at += timedelta(seconds=seconds)
        else:
            self.offset += seconds
        return self.now(base)

    def set(self, base: Clock, when: datetime) -> datetime:
        if self.frozen_at is not None:
            self.frozen_at = when
        else:
            self.offset = (when - base.now()).total_seconds()
        return self.now(base)

    def freeze(self, base: Clock) -> datetime:
        if self.frozen_at is None:
            self.frozen_at = self.now(base)
        return self.frozen_at

    def unfreeze(self, base: Clock) -> datetime:
        if self.frozen_at is not None:
            self.offset = (self.frozen_at - base.now()).total_seconds()
            self.frozen_at = None
        return self.now(base)

    def place(self, base: Clock, when: datetime, *, frozen: bool) -> None:
        """Put this view at ``when``, frozen or running from there; backwards too (only a snapshot restore does)."""
        self.frozen_at = when if frozen else None
        self.offset = 0.0 if frozen else (when - base.now()).total_seconds()


class ShiftCell(Protocol):
    """Where a :class:`ShiftedClock` keeps its shift: in the process (:class:`LocalShift`) or in a shared store."""

    def load(self) -> TeamTime: ...

    def change(self) -> AbstractContextManager[TeamTime]:
        """The shift to change, kept when the block ends; atomic with respect to other changes."""


class LocalShift:
    """The shift of a single process: an attribute behind a lock."""

    def __init__(self) -> None:
        self.shift = TeamTime()
        self._lock = threading.Lock()

    def load(self) -> TeamTime:
        return self.shift

    @contextmanager
    def change(self) -> Iterator[TeamTime]:
        with self._lock:
            yield self.shift


class ShiftedClock:
    """The emulator's base time: a clock moved as a whole (``/_mock/clock/*?global=true``), beneath every team.

    Each team's :class:`TeamTime` applies on top of this one, so a global move reaches every team, including
    teams created later; a team frozen on its own stays at its instant. Thread-safe. The shift lives in ``cell``:
    in the process by default, in the store when several processes must share one clock.
    """

    def __init__(self, base: Clock, cell: ShiftCell | None = None) -> None:
        self.base = base
        self.cell: ShiftCell = cell or LocalShift()

    def now(self) -> datetime:
        return self.cell.load().now(self.base)

    @property
    def frozen(self) -> bool:
        return self.cell.load().frozen_at is not None

    def advance(self, seconds: float) -> datetime:
        with self.cell.change() as shift:
            return shift.advance(self.base, seconds)

    def set(self, when: datetime) -> datetime:
        with self.cell.change() as shift:
            return shift.set(self.base, when)

    def freeze(self) -> datetime:
        with self.cell.change() as shift:
            return shift.freeze(self.base)

    def unfreeze(self) -> datetime:
        with self.cell.change() as shift:
            return shift.unfreeze(self.base)

    def place(self, when: datetime, *, frozen: bool) -> None:
        with self.cell.change() as shift:
            shift.place(self.base, when, frozen=frozen)

    def reset(self) -> None:
        """Back to the base clock (a global reset)."""
        with self.cell.change() as shift:
            shift.offset, shift.frozen_at = 0.0, None


@functools.lru_cache(maxsize=4096)
def rfc3339(when: datetime) -> str:
    """Render a UTC instant the way the API does: ``2026-05-04T10:00:00Z`` (milliseconds when present)."""
    # A poll renders three instants, two of which (created_at, completed_at) every poll of that generation
    # renders again: hence the cache (equal instants render equally, whatever their zone). isoformat is
    # also cheaper than strftime was, and pads years before 1000 to four digits as RFC 3339 wants.
    utc = when.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds")[:-6] + "Z"  # "+00:00" → "Z"


def rfc3339_or_none(when: datetime | None) -> str | None:
    """:func:`rfc3339`, with ``None`` for an instant that has not happened (``completed_at``, ``last_success_at``)."""
    return rfc3339(when) if when is not None else None


def unix_seconds(when: datetime) -> int:
    return int((when - EPOCH).total_seconds())

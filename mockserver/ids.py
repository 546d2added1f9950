"""The one seedable source of ids and randomness: ``prefix_`` + 26-character Crockford ULIDs.

With a seed, every team draws from its own deterministic stream, so a team's ids, secrets and
seeds are the same on every run even when tests run in parallel in a different order. Processes that share a
store (``--workers``, replicas, restarts) share each stream's position through :class:`Positions`: draw ``n`` of
a scope is then derived from ``(seed, scope, n)``, so no two processes ever mint the same id.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from mockserver.clock import EPOCH

ID_PATTERN = r"^[a-z]+_[0-9A-Za-z]+$"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every two-digit string, indexed by the 10 bits it encodes, and where each pair sits in a 130-bit number.
_PAIRS = [high + low for high in CROCKFORD for low in CROCKFORD]
_PAIR_SHIFTS = tuple(range(120, -1, -10))
# Unseeded ids and draws only need to be unique, not secret: one Mersenne Twister per process, seeded from the OS
# and again in a forked child (as ``random``'s own instance is), costs 0.1 µs a draw where ``SystemRandom`` makes a
# system call (0.9 µs; every request mints an id, a create five). Secrets (``token_hex``) stay on ``SystemRandom``.
_UNSEEDED = random.Random()
os.register_at_fork(after_in_child=_UNSEEDED.seed)


def ulid_text(raw: bytes) -> str:
    """The 26-character Crockford form of a 16-byte ULID, exactly as ``str(ulid.ULID.from_bytes(raw))``.

    Every request mints an id (a create four), and python-ulid encodes one digit at a time; looking up two
    digits at a time takes 1.5 µs instead of 3.5 µs (bench/README.md).
    """
    return _crockford(int.from_bytes(raw, "big"))


def _crockford(value: int) -> str:
    """A 128-bit number as 26 Crockford digits, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


_time_digits: tuple[int, str] = (-1, "")  # the last time part encoded: requests in the same millisecond share it


def _ulid(millis: int, tail: int) -> str:
    """``_crockford(millis << 80 | tail)`` for a 48-bit time and an 80-bit random part, in a third of the time.

    The time's 10 digits are those of the last call when the millisecond is the same (under a virtual clock, every
    call), and the random part's 16 digits are read from two 40-bit halves, small numbers, without a loop.
    """
    global _time_digits
    cached = _time_digits
    if cached[0] != millis:
        cached = _time_digits = (millis, "".join([_PAIRS[(millis >> shift) & 1023] for shift in (40, 30, 20, 10, 0)]))
    high, low, p = tail >> 40, tail & 0xFF_FFFF_FFFF, _PAIRS
    return (
        f"{cached[1]}{p[high >> 30]}{p[high >> 20 & 1023]}{p[high >> 10 & 1023]}{p[high & 1023]}"
        f"{p[low >> 30]}{p[low >> 20 & 1023]}{p[low >> 10 & 1023]}{p[low & 1023]}"
    )


class Positions(Protocol):
    """How many values each scope has drawn, kept where every process sharing the state sees it."""

    def next(self, scope: str) -> int:
        """The scope's next position (0, 1, 2 …), atomically: no two callers get the same one."""

    def forget(self, scope: str | None, keep: Collection[str]) -> None:
        """Start the scope again at 0 (every scope but ``keep`` when ``scope`` is None)."""


def _below(stream: random.Random, n: int) -> int:
    """``stream.randint(0, n - 1)``: the same draws in the same order (CPython's ``_randbelow_with_getrandbits``),
    without ``randint`` → ``randrange`` → ``_randbelow``'s three calls (three per create). An empty range is a
    ``ValueError``, as ``randint``'s (``n`` below 1 would never leave the loop)."""
    if n < 1:
        raise ValueError(f"empty range for randint: {n} values")
    bits = n.bit_length()
    drawn = stream.getrandbits(bits)
    while drawn >= n:
        drawn = stream.getrandbits(bits)
    return drawn


class IdSource:
    """Mints ids and random values; deterministic per scope when ``seed`` is given.

    With ``positions`` (a shared store) a seeded value is derived from its scope's position instead of a
    per-process stream: the same seed then gives other ids than in memory, equally reproducible.
    """

    def __init__(self, seed: int | None = None, *, positions: Positions | None = None) -> None:
        self.seed = seed
        self.positions = positions if seed is not None else None
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    def _derived(self, scope: str, nbytes: int) -> int:
        """``nbytes`` of the scope's next position, from the seed: the same on every process."""
        assert self.positions is not None
        position = self.positions.next(scope)
        return int.from_bytes(hashlib.shake_256(f"{self.seed}:{scope}:{position}".encode()).digest(nbytes), "big")

    def _stream(self, scope: str) -> random.Random:
        stream = self._streams.get(scope)
        if stream is None:
            if self.seed is None:
                stream = random.SystemRandom()
            else:
                digest = hashlib.sha256(f"{self.seed}:{scope}".encode()).digest()
                stream = random.Random(int.from_bytes(digest[:8], "big"))
            self._streams[scope] = stream
        return stream

    def new(self, prefix: str, *, at: datetime, scope: str = "") -> str:
        """A new ``prefix_<ULID>`` whose time part is ``at`` (the team's clock)."""
        millis = max(0, int((at - EPOCH).total_seconds() * 1000)) & ((1 << 48) - 1)
        if self.positions is not None:
            tail = self._derived(scope, 10)
        elif self.seed is None:
            tail = _UNSEEDED.getrandbits(80)
        else:
            with self._lock:
                tail = self._stream(scope).getrandbits(80)
        return f"{prefix}_{_ulid(millis, tail)}"

    def token_hex(self, nbytes: int, *, scope: str = "") -> str:
        if self.positions is not None:
            return self._derived(scope, nbytes).to_bytes(nbytes, "big").hex()
        with self._lock:
            return self._stream(scope).getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def randint(self, low: int, high: int, *, scope: str = "") -> int:
        if self.positions is not None:
            return low + self._derived(scope, 16) % (high - low + 1)
        if self.seed is None:
            return low + _below(_UNSEEDED, high - low + 1)
        with self._lock:
            return low + _below(self._stream(scope), high - low + 1)

    def reset(self, scope: str | None = None, *, keep: Collection[str] = ()) -> None:
        """Forget a scope's stream (every stream but ``keep`` when ``scope`` is None): a reset replays the same ids."""
        if self.positions is not None:
            self.positions.forget(scope, keep)
        with self._lock:
            if scope is None:
                self._streams = {name: stream for name, stream in self._streams.items() if name in keep}
            else:
                self._streams.pop(scope, None)


def stable_ulid(text: str) -> str:
    """A 26-char ULID derived from ``text`` (used for ids that must not depend on request order)."""
    return ulid_text(hashlib.sha256(text.encode()).digest()[:16])

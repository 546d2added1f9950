"""Tests for mockserver.clock: base clocks, per-team time and RFC 3339 rendering."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.clock import SEEDED_START, ShiftedClock, SystemClock, TeamTime, VirtualClock, rfc3339, unix_seconds
from mockserver.core.shared import base_clock
from mockserver.settings import Settings
from mockserver.store import InMemoryStore

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_virtual_clock_stands_still_until_told() -> None:
    clock = VirtualClock(START)
    assert clock.now() == START
    assert clock.now() == START


def test_virtual_clock_advance_moves_and_returns_new_time() -> None:
    clock = VirtualClock(START)
    assert clock.advance(90) == START + timedelta(seconds=90)
    assert clock.advance(0.5) == START + timedelta(seconds=90.5)
    assert clock.now() == START + timedelta(seconds=90.5)


def test_virtual_clock_set_jumps_to_instant() -> None:
    clock = VirtualClock(START)
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert clock.set(later) == later
    assert clock.now() == later


def test_virtual_clock_default_start_is_whole_second_utc() -> None:
    now = VirtualClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert now.microsecond == 0


def test_system_clock_runs_at_real_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_000.0)
    clock = SystemClock(start=START)
    assert clock.now() == START
    monkeypatch.setattr(time, "time", lambda: 1_007.5)
    assert clock.now() == START + timedelta(seconds=7.5)


def test_system_clock_speed_scales_elapsed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_000.0)
    clock = SystemClock(60, start=START)
    monkeypatch.setattr(time, "time", lambda: 1_002.0)
    assert clock.now() == START + timedelta(minutes=2)


def test_system_clock_without_start_follows_wall_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_780_315_200.0)
    clock = SystemClock(0.5)
    assert clock.now() == START
    monkeypatch.setattr(time, "time", lambda: 1_780_315_210.0)
    assert clock.now() == START + timedelta(seconds=5)


def test_team_time_defaults_to_base_clock() -> None:
    base = VirtualClock(START)
    team = TeamTime()
    assert team.now(base) == START
    base.advance(10)
    assert team.now(base) == START + timedelta(seconds=10)


def test_team_time_advance_adds_offset_that_follows_base() -> None:
    base = VirtualClock(START)
    team = TeamTime()
    assert team.advance(base, 60) == START + timedelta(seconds=60)
    assert team.offset == 60
    base.advance(5)
    assert team.now(base) == START + timedelta(seconds=65)


def test_team_time_freeze_stops_team_but_not_base() -> None:
    base = VirtualClock(START)
    team = TeamTime(offset=30)
    assert team.freeze(base) == START + timedelta(seconds=30)
    base.advance(100)
    assert team.now(base) == START + timedelta(seconds=30)
    assert base.now() == START + timedelta(seconds=100)


def test_team_time_freeze_twice_keeps_first_instant() -> None:
    base = VirtualClock(START)
    team = TeamTime()
    team.freeze(base)
    base.advance(10)
    assert team.freeze(base) == START


def test_team_time_advance_while_frozen_moves_frozen_instant() -> None:
    base = VirtualClock(START)
    team = TeamTime()
    team.freeze(base)
    assert team.advance(base, 45) == START + timedelta(seconds=45)
    assert team.frozen_at == START + timedelta(seconds=45)
    base.advance(1000)
    assert team.now(base) == START + timedelta(seconds=45)


def test_team_time_unfreeze_resumes_from_frozen_instant() -> None:
    base = VirtualClock(START)
    team = TeamTime()
    team.freeze(base)
    base.advance(100)
    assert team.unfreeze(base) == START
    assert team.frozen_at is None
    base.advance(7)
    assert team.now(base) == START + timedelta(seconds=7)


def test_team_time_unfreeze_when_running_is_noop() -> None:
    base = VirtualClock(START)
    team = TeamTime(offset=12)
    assert team.unfreeze(base) == START + timedelta(seconds=12)
    assert team.offset == 12


def test_team_time_set_while_running_keeps_following_base() -> None:
    base = VirtualClock(START)
    team = TeamTime()
    target = START + timedelta(hours=2)
    assert team.set(base, target) == target
    base.advance(3)
    assert team.now(base) == target + timedelta(seconds=3)


def test_team_time_set_while_frozen_stays_frozen_at_target() -> None:
    base = VirtualClock(START)
    team = TeamTime()
    team.freeze(base)
    target = START + timedelta(days=1)
    assert team.set(base, target) == target
    base.advance(3)
    assert team.now(base) == target
    assert team.frozen_at == target


def test_team_times_are_independent() -> None:
    base = VirtualClock(START)
    first, second = TeamTime(), TeamTime()
    first.advance(base, 3600)
    second.freeze(base)
    base.advance(1)
    assert first.now(base) == START + timedelta(seconds=3601)
    assert second.now(base) == START


_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(min_value=0, max_value=86_400 * 400, allow_nan=False)),
        st.tuples(st.just("base"), st.floats(min_value=0, max_value=86_400 * 400, allow_nan=False)),
        st.tuples(st.just("freeze"), st.none()),
        st.tuples(st.just("unfreeze"), st.none()),
    ),
    max_size=40,
)


@given(_OPERATIONS)
def test_team_time_never_goes_backwards_with_nonnegative_advances(operations: list[tuple[str, float | None]]) -> None:
    base = VirtualClock(START)
    team = TeamTime()
    previous = team.now(base)
    for name, amount in operations:
        if name == "advance":
            assert amount is not None
            team.advance(base, amount)
        elif name == "base":
            assert amount is not None
            base.advance(amount)
        elif name == "freeze":
            team.freeze(base)
        else:
            team.unfreeze(base)
        current = team.now(base)
        assert current >= previous, (name, amount, previous, current)
        previous = current


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC), "2026-05-04T10:00:00Z"),
        (datetime(2026, 5, 20, 8, 14, 23, 491_000, tzinfo=UTC), "2026-05-20T08:14:23.491Z"),
        (datetime(2026, 5, 20, 8, 14, 23, 491_999, tzinfo=UTC), "2026-05-20T08:14:23.491Z"),
        (datetime(2026, 5, 20, 8, 14, 23, 5_000, tzinfo=UTC), "2026-05-20T08:14:23.005Z"),
        (datetime(2026, 5, 4, 12, 0, 0, tzinfo=timezone(timedelta(hours=2))), "2026-05-04T10:00:00Z"),
    ],
)
def test_rfc3339_renders_utc_with_z_and_milliseconds(when: datetime, text: str) -> None:
    assert rfc3339(when) == text


def test_rfc3339_round_trips_through_fromisoformat() -> None:
    when = datetime(2026, 6, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    assert datetime.fromisoformat(rfc3339(when)) == when


def test_unix_seconds_counts_whole_seconds_since_epoch() -> None:
    assert unix_seconds(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert unix_seconds(START) == 1_780_315_200
    assert unix_seconds(START + timedelta(seconds=1.9)) == 1_780_315_201


def test_shifted_clock_moves_every_view_on_top_of_it() -> None:
    base = VirtualClock(START)
    shifted = ShiftedClock(base)
    team = TeamTime(offset=10)
    shifted.advance(60)
    assert team.now(shifted) == START + timedelta(seconds=70)
    shifted.freeze()
    base.advance(30)
    assert shifted.now() == START + timedelta(seconds=60)
    assert shifted.frozen
    shifted.unfreeze()
    base.advance(5)
    assert shifted.now() == START + timedelta(seconds=65)
    shifted.reset()
    assert shifted.now() == base.now()


def test_shifted_clock_place_goes_back_too() -> None:
    base = VirtualClock(START)
    shifted = ShiftedClock(base)
    shifted.advance(3600)
    shifted.place(START, frozen=False)
    assert shifted.now() == START
    shifted.place(START + timedelta(seconds=5), frozen=True)
    base.advance(100)
    assert shifted.now() == START + timedelta(seconds=5)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"clock": "virtual", "seed": 42}, SEEDED_START),  # seeded: the documented first instant
        ({"clock": "virtual", "seed": 42, "clock_start": START}, START),  # clock_start wins
    ],
)
def test_base_clock_seeded_virtual_starts_at_a_fixed_instant(overrides: dict[str, object], expected: datetime) -> None:
    assert base_clock(InMemoryStore(), Settings(**overrides)).now() == expected  # type: ignore[arg-type]


def test_base_clock_unseeded_virtual_and_seeded_system_start_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    for settings in (Settings(clock="virtual"), Settings(clock="system", seed=42)):
        assert before <= base_clock(InMemoryStore(), settings).now() <= datetime.now(UTC) + timedelta(seconds=1)

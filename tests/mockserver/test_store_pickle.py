"""The shared stores' pickling (``mockserver.store._pickle``): every record back as it was, by its shortcuts or not."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.due import DueIndex
from mockserver.core.models import Cost, Generation, JobStatus, LedgerEntry, RateBucket, Team
from mockserver.store._pickle import dump, load

HYPOTHESIS = settings(database=None, deadline=None, max_examples=150)
ZONES = st.one_of(st.just(UTC), st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439)))
INSTANTS = st.one_of(st.datetimes(), st.datetimes(timezones=ZONES))
TEXT = st.text(max_size=20)
PARAMS = st.dictionaries(TEXT, st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), TEXT), max_size=4)
GENERATIONS = st.builds(
    Generation,
    id=TEXT,
    team_id=TEXT,
    media_type=st.sampled_from(["image", "video"]),
    prompt=TEXT,
    created_at=INSTANTS,
    started_at=INSTANTS,
    finish_at=INSTANTS,
    outcome=st.sampled_from(JobStatus),
    cost=st.builds(Cost, st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 1e6)),
    aurous_version=TEXT,
    creation_request_id=TEXT,
    inference_type=TEXT,
    seed=st.integers(0, 2**32),
    params=PARAMS,
    error_message=st.none() | TEXT,
    cancelled_at=st.none() | INSTANTS,
    settled=st.booleans(),
)
RECORDS = st.one_of(
    GENERATIONS,
    st.builds(Team, id=TEXT, name=TEXT, created_at=INSTANTS, credits=st.floats(-1e9, 1e9), held=st.floats(0, 1e9)),
    st.builds(LedgerEntry, id=TEXT, type=TEXT, amount=st.floats(-1e9, 1e9), created_at=INSTANTS),
    st.builds(RateBucket, tokens=st.floats(0, 1e9), updated_at=INSTANTS),
    st.builds(DueIndex, chunks=st.dictionaries(st.integers(0, 99), st.floats(0, 2e9)), last=st.integers(0, 99)),
    st.lists(st.tuples(INSTANTS, TEXT, st.integers(0, 9)), max_size=5),
)


@HYPOTHESIS
@given(record=RECORDS)
def test_a_record_comes_back_equal_and_of_its_own_type(record: Any) -> None:
    back = load(dump(record))
    assert back == record
    assert type(back) is type(record)
    assert load(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)) == record  # blobs written before still load


@HYPOTHESIS
@given(instant=INSTANTS)
def test_a_datetime_keeps_its_zone_and_utc_stays_the_one_utc(instant: datetime) -> None:
    back = load(dump(instant))
    assert back == instant
    assert back.utcoffset() == instant.utcoffset()
    if instant.tzinfo is UTC:
        assert back.tzinfo is UTC


def test_the_shortcuts_are_taken_for_records_and_utc() -> None:
    gen = load(dump(Team("team_1", "t", datetime(2026, 1, 1, tzinfo=UTC), 5.0)))
    blob = dump(gen)
    assert b"_utc" in blob  # UTC by reference, not rebuilt from its offset
    assert b"billing_mode" not in blob  # field values only: the names are the class's
    assert len(blob) < len(pickle.dumps(gen, protocol=pickle.HIGHEST_PROTOCOL))


@dataclass(slots=True)
class Checked:
    value: int
    doubled: int = field(init=False)

    def __post_init__(self) -> None:
        self.doubled = self.value * 2


@dataclass(slots=True)
class Keyword:
    value: int = field(kw_only=True)


def test_a_dataclass_whose_init_does_more_pickles_the_usual_way() -> None:
    checked = Checked(3)
    checked.doubled = 7  # a state __init__ would not rebuild
    back = load(dump(checked))
    assert (back.value, back.doubled) == (3, 7)
    assert load(dump(Keyword(value=4))) == Keyword(value=4)


@dataclass(slots=True)
class Plain:
    value: int


class Extended(Plain):
    __slots__ = ("note",)  # a slot that is no field of the dataclass


@dataclass(slots=True, init=False)
class OwnInit:
    value: int

    def __init__(self, doubled: int) -> None:
        self.value = doubled // 2


def test_a_class_holding_more_than_its_fields_or_with_its_own_init_pickles_the_usual_way() -> None:
    extended = Extended(1)
    extended.note = "kept"
    back = load(dump(extended))
    assert (back.value, back.note) == (1, "kept")
    assert load(dump(OwnInit(8))).value == 4

"""The generation service driven directly (no HTTP): lifecycle on the clock, holds, settlement, cancel, list.

Reference §3.1 (lifecycle), §4 (hold at create, commit on success, release otherwise), §2.1/§2.2 (requests).
"""

from __future__ import annotations

import itertools
import string
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.catalogue import Catalogue
from mockserver.core.errors import (
    BalanceTooLowError,
    GenerationNotCancellableError,
    ParameterInvalidCombinationError,
    ResourceNotFoundError,
    UnknownReferenceError,
)
from mockserver.core.files import Files
from mockserver.core.generations import Generations
from mockserver.core.ledger import Ledger
from mockserver.core.models import Cost, Generation, JobStatus, Team
from mockserver.core.requests import ImageRequest, SizePreset, VideoRequest
from mockserver.ids import IdSource
from mockserver.media import inspect_image
from mockserver.settings import Settings
from mockserver.store import InMemoryStore

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
VERSION = "2026-05-15"
PINNED = {
    "image_pending_seconds": 2,
    "image_processing_seconds": 10,
    "video_pending_seconds": 3,
    "video_processing_seconds": 30,
}
HYPOTHESIS = settings(database=None, deadline=None, max_examples=60)
RANK = {"pending": 0, "processing": 1}  # every terminal status ranks 2


def rank(status: JobStatus) -> int:
    return RANK.get(status.value, 2)


class World:
    """A generation service over an in-memory store, plus helpers to create teams and requests."""

    def __init__(self, **overrides: Any) -> None:
        self.store = InMemoryStore()
        self.ids = IdSource(11)
        self.settings = Settings(clock="virtual", **{**PINNED, **overrides})
        self.ledger = Ledger(self.store, self.ids)
        self.files = Files(self.store, self.ids, inspect_image)
        self.gens = Generations(self.store, self.ids, self.settings, Catalogue(), self.ledger, self.files)
        self.terminal: list[tuple[str, JobStatus]] = []
        self.gens.on_terminal.append(lambda team, gen, at: self.terminal.append((gen.id, gen.status_at(at))))
        self._teams = 0

    def team(self, credits: float = 1000, billing_mode: str = "metered") -> Team:
        self._teams += 1
        team = Team(id=f"team_{self._teams:026d}", name="t", created_at=T0, credits=credits, billing_mode=billing_mode)
        self.store.put("team", team.id, team, owner=team.id)
        return team

    def image(self, team: Team, now: datetime = T0, **body: Any) -> Generation:
        req = ImageRequest.model_validate({"prompt": "a lighthouse", **body})
        return self.gens.create_image(team, req, meta(now))

    def video(self, team: Team, now: datetime = T0, **body: Any) -> Generation:
        req = VideoRequest.model_validate({"video_lora_id": "seedance-1-pro", **body})
        return self.gens.create_video(team, req, meta(now))

    def status(self, team: Team, gen_id: str, now: datetime) -> JobStatus:
        self.gens.settle_due(team, now)
        return self.gens.get(team, gen_id).status_at(now)


def meta(now: datetime) -> dict[str, Any]:
    return {"now": now, "version": VERSION, "request_id": "req_01HXMQ7Z3K8Y2ABCDEFGHJKMNP"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- Generation.status_at ------------------------------------------------------------------------------


def generation(started: float = 2, finished: float = 12, outcome: JobStatus = JobStatus.SUCCEEDED) -> Generation:
    return Generation(
        id="img_01HXMQ7Z3K8Y2ABCDEFGHJKMNP",
        team_id="team_x",
        media_type="image",
        prompt="p",
        created_at=T0,
        started_at=at(started),
        finish_at=at(finished),
        outcome=outcome,
        cost=Cost(amount=1, base=1, enhance=0),
        aurous_version=VERSION,
        creation_request_id="req_x",
        inference_type="t2i",
        seed=1,
    )


@pytest.mark.parametrize(
    ("seconds", "status"),
    [
        (0, "pending"),
        (1.999, "pending"),
        (2, "processing"),
        (11.999, "processing"),
        (12, "succeeded"),
        (1e6, "succeeded"),
    ],
)
def test_status_at_follows_the_instants(seconds: float, status: str) -> None:
    assert generation().status_at(at(seconds)).value == status


def test_completed_at_only_once_terminal() -> None:
    gen = generation()
    assert gen.completed_at(at(11.9)) is None
    assert gen.completed_at(at(12)) == at(12)
    assert gen.completed_at(at(500)) == at(12)


def test_cancelled_status_and_completed_at_win_over_the_finish_instant() -> None:
    gen = generation()
    gen.cancelled_at = at(5)
    assert gen.status_at(at(5)) is JobStatus.CANCELLED
    assert gen.status_at(at(100)) is JobStatus.CANCELLED
    assert gen.completed_at(at(100)) == at(5)


@HYPOTHESIS
@given(
    started=st.floats(0, 100),
    length=st.floats(0, 100),
    outcome=st.sampled_from([JobStatus.SUCCEEDED, JobStatus.FAILED]),
    reads=st.lists(st.floats(0, 300), min_size=2, max_size=20),
)
def test_status_at_never_goes_backwards(started: float, length: float, outcome: JobStatus, reads: list[float]) -> None:
    gen = generation(started, started + length, outcome)
    statuses = [gen.status_at(at(t)) for t in sorted(reads)]
    for before, after in itertools.pairwise(statuses):
        assert rank(after) >= rank(before)
        if before.terminal:
            assert after is before


@HYPOTHESIS
@given(
    steps=st.lists(
        st.one_of(st.tuples(st.just("advance"), st.floats(0, 40)), st.just(("cancel", 0.0)), st.just(("read", 0.0))),
        min_size=1,
        max_size=25,
    )
)
def test_service_status_never_goes_backwards_and_terminal_is_final(steps: list[tuple[str, float]]) -> None:
    world = World()
    team = world.team()
    gens = [world.image(team), world.video(team, resolution="480p")]
    now = T0
    seen = {gen.id: JobStatus.PENDING for gen in gens}
    for action, value in steps:
        if action == "advance":
            now += timedelta(seconds=value)
        elif action == "cancel":
            for gen in gens:
                try:
                    world.gens.cancel(team, gen.id, now)
                except GenerationNotCancellableError:
                    assert seen[gen.id].terminal or world.status(team, gen.id, now).terminal
        for gen in gens:
            status = world.status(team, gen.id, now)
            assert rank(status) >= rank(seen[gen.id]), (seen[gen.id], status)
            if seen[gen.id].terminal:
                assert status is seen[gen.id]
            seen[gen.id] = status


# --- create, hold, settle ------------------------------------------------------------------------------


def test_create_image_holds_its_cost() -> None:
    world = World()
    team = world.team()
    gen = world.image(team, count=2, enhance_prompt=True)
    assert gen.cost == Cost(amount=4, base=2, enhance=2)
    assert (team.credits, team.held, team.available) == (1000, 4, 996)
    assert gen.hold_id is not None
    assert gen.hold_id.startswith("hold_")
    assert [entry.type for entry in world.ledger.entries(team)] == ["hold"]


def test_create_assigns_pinned_timeline() -> None:
    world = World()
    team = world.team()
    image, video = world.image(team), world.video(team)
    assert (image.started_at, image.finish_at) == (at(2), at(12))
    assert (video.started_at, video.finish_at) == (at(3), at(33))


def test_default_image_timeline_is_10_to_30_seconds() -> None:
    # "images typically finish in 10–30 s" (reference §2.1): the emulator draws pending 1-3 s + processing 9-27 s.
    world = World(image_pending_seconds=None, image_processing_seconds=None)
    team = world.team(credits=100)
    for _ in range(40):
        gen = world.image(team)
        assert timedelta(seconds=10) <= gen.finish_at - gen.created_at <= timedelta(seconds=30)
        assert gen.created_at < gen.started_at < gen.finish_at


def test_generation_speed_divides_the_timeline() -> None:
    world = World(generation_speed=10)
    gen = world.image(world.team())
    assert (gen.started_at, gen.finish_at) == (at(0.2), at(1.2))


def test_settle_commits_the_hold_on_success_once() -> None:
    world = World()
    team = world.team()
    gen = world.video(team, resolution="720p")
    world.gens.settle_due(team, at(32.999))
    assert (team.credits, team.held) == (1000, 3.75)
    world.gens.settle_due(team, at(33))
    world.gens.settle_due(team, at(3600))
    assert (team.credits, team.held, team.available) == (996.25, 0, 996.25)
    assert [entry.type for entry in world.ledger.entries(team)] == ["hold", "charge"]
    assert world.terminal == [(gen.id, JobStatus.SUCCEEDED)]


def test_balance_too_low_raises_before_anything_is_stored() -> None:
    world = World()
    team = world.team(credits=3)
    with pytest.raises(BalanceTooLowError) as raised:
        world.video(team)  # 1080p 5 s = 6.25
    assert raised.value.status == 402
    assert raised.value.detail == "Team available balance is 3.0 credits, generation requires 6.25."
    assert world.store.count("generation", owner=team.id) == 0
    assert (team.credits, team.held) == (3, 0)
    assert world.ledger.entries(team) == []


def test_balance_is_checked_against_available_credits() -> None:
    world = World()
    team = world.team(credits=2)
    world.image(team)
    world.image(team)
    with pytest.raises(BalanceTooLowError):
        world.image(team)
    assert team.available == 0


@pytest.mark.parametrize("mode", ["exempt", "unknown-mode"])
def test_non_metered_team_is_never_held_nor_charged(mode: str) -> None:
    world = World()
    team = world.team(credits=0, billing_mode=mode)
    gen = world.video(team, resolution="1080p", duration=12)
    assert gen.hold_id is None
    world.gens.settle_due(team, at(3600))
    assert world.status(team, gen.id, at(3600)) is JobStatus.SUCCEEDED
    assert (team.credits, team.held) == (0, 0)
    assert world.ledger.entries(team) == []


# --- cancel ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("when", [0, 1, 2, 11.9])
def test_cancel_releases_the_hold(when: float) -> None:
    world = World()
    team = world.team()
    gen = world.image(team, count=3)
    cancelled = world.gens.cancel(team, gen.id, at(when))
    assert cancelled.status_at(at(when)) is JobStatus.CANCELLED
    assert cancelled.completed_at(at(when)) == at(when)
    assert (team.credits, team.held) == (1000, 0)
    assert [entry.type for entry in world.ledger.entries(team)] == ["hold", "release"]
    world.gens.settle_due(team, at(3600))  # the finish instant passes: nothing more happens
    assert world.status(team, gen.id, at(3600)) is JobStatus.CANCELLED
    assert (team.credits, team.held) == (1000, 0)
    assert world.terminal == [(gen.id, JobStatus.CANCELLED)]


def test_cancel_cancelled_is_a_no_op() -> None:
    world = World()
    team = world.team()
    gen = world.image(team)
    world.gens.cancel(team, gen.id, at(1))
    again = world.gens.cancel(team, gen.id, at(5))
    assert again.completed_at(at(5)) == at(1)
    assert [entry.type for entry in world.ledger.entries(team)] == ["hold", "release"]


def test_cancel_read_before_a_settlement_it_waited_out_is_not_cancellable() -> None:
    """A cancel whose ``now`` was read before the clock moved on (``latency``) meets a settled generation: 400, once."""
    world = World()
    team = world.team()
    gen = world.image(team, count=2)
    world.gens.settle_due(team, at(12))  # another request moved the clock and booked the success
    with pytest.raises(GenerationNotCancellableError):
        world.gens.cancel(team, gen.id, at(5))
    assert world.status(team, gen.id, at(12)) is JobStatus.SUCCEEDED
    assert (team.credits, team.held) == (998, 0)
    assert [entry.type for entry in world.ledger.entries(team)] == ["hold", "charge"]
    assert world.terminal == [(gen.id, JobStatus.SUCCEEDED)]


def test_cancel_succeeded_is_not_cancellable() -> None:
    world = World()
    team = world.team()
    gen = world.image(team)
    world.gens.settle_due(team, at(12))
    with pytest.raises(GenerationNotCancellableError) as raised:
        world.gens.cancel(team, gen.id, at(12))
    assert raised.value.status == 400
    assert (team.credits, team.held) == (999, 0)


def test_another_team_cannot_read_or_cancel() -> None:
    world = World()
    owner, stranger = world.team(), world.team()
    gen = world.image(owner)
    with pytest.raises(ResourceNotFoundError):
        world.gens.get(stranger, gen.id)
    with pytest.raises(ResourceNotFoundError):
        world.gens.cancel(stranger, gen.id, at(1))
    assert world.status(owner, gen.id, at(1)) is JobStatus.PENDING


# --- list -------------------------------------------------------------------------------------------------


def test_list_pages_newest_first() -> None:
    world = World()
    team = world.team()
    ids = [world.image(team, at(i)).id for i in range(5)][::-1]
    page = world.gens.list_generations(team, limit=2, starting_after=None, ending_before=None)
    assert ([g.id for g in page.rows], page.has_more) == (ids[:2], True)
    page = world.gens.list_generations(team, limit=2, starting_after=ids[1], ending_before=None)
    assert ([g.id for g in page.rows], page.has_more) == (ids[2:4], True)
    page = world.gens.list_generations(team, limit=2, starting_after=ids[3], ending_before=None)
    assert ([g.id for g in page.rows], page.has_more) == (ids[4:], False)
    page = world.gens.list_generations(team, limit=10, starting_after=None, ending_before=ids[2])
    assert ([g.id for g in page.rows], page.has_more) == (ids[:2], False)


def test_list_rejects_both_cursors_and_unknown_cursors() -> None:
    world = World()
    team, other = world.team(), world.team()
    mine, theirs = world.image(team).id, world.image(other).id
    with pytest.raises(ParameterInvalidCombinationError):
        world.gens.list_generations(team, limit=5, starting_after=mine, ending_before=mine)
    for cursor in ("starting_after", "ending_before"):
        with pytest.raises(UnknownReferenceError) as raised:
            world.gens.list_generations(
                team, limit=5, **{"starting_after": None, "ending_before": None, cursor: theirs}
            )
        assert raised.value.param == cursor


# --- property (1): estimate == cost on the generation == amount charged ----------------------------------

PROMPTS = st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=40).filter(str.strip)
SIZES = st.one_of(
    st.just({}),
    st.sampled_from(get_args(SizePreset)).map(lambda size: {"size": size}),
    st.tuples(st.integers(1024, 4096), st.integers(1024, 4096)).map(lambda wh: {"width": wh[0], "height": wh[1]}),
)
IMAGE_BODIES = st.builds(
    lambda prompt, size, count, enhance: {"prompt": prompt, **size, **count, **enhance},
    PROMPTS,
    SIZES,
    st.one_of(st.just({}), st.integers(1, 4).map(lambda n: {"count": n})),
    st.one_of(st.just({}), st.booleans().map(lambda b: {"enhance_prompt": b})),
)
VIDEO_BODIES = st.fixed_dictionaries(
    {"video_lora_id": st.sampled_from(["seedance-1-pro", "seedance-1-lite"])},
    optional={
        "resolution": st.sampled_from(["480p", "720p", "1080p"]),
        "duration": st.integers(2, 12),
        "ratio": st.sampled_from(["16:9", "4:3", "1:1", "3:4", "9:16", "21:9"]),
        "enhance_prompt": st.booleans(),
        "prompt": PROMPTS,
    },
)


@HYPOTHESIS
@given(body=st.one_of(IMAGE_BODIES.map(lambda b: ("image", b)), VIDEO_BODIES.map(lambda b: ("video", b))))
def test_estimate_equals_generation_cost_equals_charge(body: tuple[str, dict[str, Any]]) -> None:
    kind, fields = body
    world = World()
    team = world.team()
    if kind == "image":
        req: ImageRequest | VideoRequest = ImageRequest.model_validate(fields)
        estimate = world.gens.estimate_image(team, req, VERSION, T0)  # type: ignore[arg-type]
        gen = world.gens.create_image(team, req, meta(T0))  # type: ignore[arg-type]
    else:
        req = VideoRequest.model_validate(fields)
        estimate = world.gens.estimate_video(team, req, VERSION, T0)
        gen = world.gens.create_video(team, req, meta(T0))
    assert gen.cost == estimate
    assert team.held == estimate.amount
    world.gens.settle_due(team, gen.finish_at)
    assert world.status(team, gen.id, gen.finish_at) is JobStatus.SUCCEEDED
    assert 1000 - team.credits == estimate.amount
    assert team.held == 0


def test_due_entries_are_kept_in_seconds_and_a_heap_stored_as_datetimes_still_settles() -> None:
    world = World()
    team = world.team()
    first, second = world.image(team), world.image(team, T0 + timedelta(seconds=5))
    chunk = world.store.get("due_chunk", f"{team.id}:0")
    assert [gen_id for _, gen_id in sorted(chunk)] == [first.id, second.id]
    assert all(isinstance(at, float) for at, _ in chunk)  # cheap to pickle on a shared store
    # State written before the chunks held one heap of datetimes under the team: read as chunk 0, settled the same.
    world.store.delete("due_chunk", f"{team.id}:0")
    world.store.put("due", team.id, [(second.finish_at, second.id), (first.finish_at, first.id)], owner=team.id)
    world.gens.settle_due(team, first.finish_at)
    assert world.terminal == [(first.id, JobStatus.SUCCEEDED)]
    third = world.image(team, T0 + timedelta(seconds=9))  # a create after the old heap: both kept
    world.gens.settle_due(team, third.finish_at)
    assert world.terminal == [
        (first.id, JobStatus.SUCCEEDED),
        (second.id, JobStatus.SUCCEEDED),
        (third.id, JobStatus.SUCCEEDED),
    ]
    assert world.store.get("due", team.id).next_at is None
    assert world.store.count("due_chunk") == 0

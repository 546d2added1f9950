"""The character service driven directly (no HTTP): upload tickets, create, synthesis runs on the clock, credits,
update/delete/save, resynthesize/regenerate, the scenario hook, and resolution for generations.

Reference §2.6, §4 (characters cost 4 generations; 1 per regenerated pose), §8.14 (the 2026-06-19 flow).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from mockserver.core._character_records import (
    POSES,
    SYNTH_POSES,
    CharacterStatus,
    CreateCharacterRequest,
    Ref,
    Synthesis,
    UpdateCharacterRequest,
    UploadInitRequest,
    classification,
    keyed,
)
from mockserver.core.characters import (
    BAD_POSE,
    BAD_SIGNATURE,
    EXACTLY_ONE,
    KIND,
    Characters,
)
from mockserver.core.errors import (
    CharacterNotReadyError,
    DomainError,
    InsufficientCreditsError,
    InvalidApiKeyError,
    InvalidFormatError,
    InvalidRequestStateError,
    ParameterInvalidCombinationError,
    ResourceNotFoundError,
    UnknownReferenceError,
    UploadInvalidError,
    ValueOutOfRangeError,
)
from mockserver.core.ledger import Ledger
from mockserver.core.models import Team
from mockserver.ids import IdSource
from mockserver.media import inspect_image
from mockserver.settings import Settings
from mockserver.store import InMemoryStore

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
VERSION = "2026-05-15"
BASE = "http://testserver"
SYNTH_SECONDS = 60


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def png(colour: tuple[int, int, int] = (200, 10, 10), size: tuple[int, int] = (64, 80), kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, kind)
    return buffer.getvalue()


def meta(now: datetime = T0) -> dict[str, Any]:
    return {"now": now, "version": VERSION, "base_url": BASE}


class World:
    """A character service over an in-memory store, with helpers for teams, tickets and characters."""

    def __init__(self, **overrides: Any) -> None:
        self.store = InMemoryStore()
        self.ids = IdSource(5)
        self.settings = Settings(clock="virtual", **{"character_synthesis_seconds": SYNTH_SECONDS, **overrides})
        self.ledger = Ledger(self.store, self.ids)
        self.chars = Characters(self.store, self.ids, self.settings, self.ledger, inspect_image)
        self.terminal: list[tuple[str, CharacterStatus, datetime]] = []
        self.chars.on_terminal.append(lambda team, c, status, when: self.terminal.append((c.id, status, when)))
        self._teams = 0

    def team(self, credits: float = 1000, billing_mode: str = "metered") -> Team:
        self._teams += 1
        team = Team(id=f"team_{self._teams:026d}", name="t", created_at=T0, credits=credits, billing_mode=billing_mode)
        self.store.put("team", team.id, team, owner=team.id)
        return team

    def ticket(self, team: Team, data: bytes | None = None, content_type: str = "image/png", now: datetime = T0) -> str:
        extension = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[content_type]
        req = UploadInitRequest(filename="me.png", extension=extension, content_type=content_type)  # type: ignore[arg-type]
        ticket = self.chars.init_upload(team, req, now)
        if data is not None:
            signature = self.chars.upload_url(BASE, ticket).partition("signature=")[2]
            self.chars.authorize_upload(ticket, signature, now)
            self.chars.receive_upload(ticket, data)
        return ticket.id

    def create(self, team: Team, now: datetime = T0, **body: Any) -> Any:
        req = CreateCharacterRequest.model_validate({"name": "Aurora", **body})
        return self.chars.create(team, req, meta(now))

    def synthesized(self, team: Team, now: datetime = T0) -> Any:
        return self.create(team, now, generate=True, attributes={"hair_color": "black"})

    def status(self, team: Team, character_id: str, now: datetime) -> CharacterStatus:
        self.chars.settle_due(team, now)
        return self.chars.get(team, character_id).view(now).status


@pytest.fixture
def world() -> World:
    return World()


@contextmanager
def raises(error: type[DomainError], param: str | None = None) -> Iterator[None]:
    """``pytest.raises`` that also checks the error's ``param``."""
    with pytest.raises(error) as info:
        yield
    assert info.value.param == param, info.value


# --- upload tickets ------------------------------------------------------------------------------------------


def test_init_upload_mints_a_ticket_for_24_hours_with_a_15_minute_url(world):
    team = world.team()
    req = UploadInitRequest(filename="a.jpg", extension="jpg", content_type="image/jpeg")
    ticket = world.chars.init_upload(team, req, T0)
    assert ticket.id.startswith("upl_")
    assert (ticket.expires_at, ticket.url_expires_at) == (at(86400), at(900))
    assert world.chars.upload_url(BASE, ticket).startswith(f"{BASE}/_storage/uploads/{ticket.id}?signature=")


@pytest.mark.parametrize(
    ("extension", "content_type"), [("png", "image/jpeg"), ("jpeg", "image/webp"), ("webp", "image/png")]
)
def test_init_upload_with_a_mismatched_pair_is_refused(world, extension, content_type):
    req = UploadInitRequest(filename="a", extension=extension, content_type=content_type)
    with raises(ParameterInvalidCombinationError, "content_type"):
        world.chars.init_upload(world.team(), req, T0)


def test_upload_signature_is_checked_and_lasts_15_minutes(world):
    team = world.team()
    upload_id = world.ticket(team)
    ticket = world.chars.find_upload(upload_id)
    signature = world.chars.upload_url(BASE, ticket).partition("signature=")[2]
    with pytest.raises(InvalidApiKeyError, match=BAD_SIGNATURE):
        world.chars.authorize_upload(ticket, "1.bad", T0)
    with pytest.raises(InvalidApiKeyError):
        world.chars.authorize_upload(ticket, signature, at(900))
    world.chars.authorize_upload(ticket, signature, at(899))


def test_upload_type_comes_from_the_bytes_whatever_the_put_declares(world):
    """Any well-formed PUT: no header is checked; the bytes say what the upload is."""
    ticket = world.chars.find_upload(world.ticket(world.team()))
    signature = world.chars.upload_url(BASE, ticket).partition("signature=")[2]
    world.chars.authorize_upload(ticket, signature, T0)
    data = png()
    received = world.chars.receive_upload(ticket, data)
    assert (received.content_type, received.data) == ("image/png", data)


@pytest.mark.parametrize(
    ("data", "error"),
    [(b"", InvalidFormatError), (b"not an image", InvalidFormatError), (png(kind="JPEG"), InvalidFormatError)],
    ids=["empty", "garbage", "jpeg-on-a-png-ticket"],
)
def test_upload_bytes_are_inspected(world, data, error):
    ticket = world.chars.find_upload(world.ticket(world.team()))
    with raises(error, "body"):
        world.chars.receive_upload(ticket, data)


def test_upload_over_4096_px_is_out_of_range(world):
    ticket = world.chars.find_upload(world.ticket(world.team()))
    with raises(ValueOutOfRangeError, "body"):
        world.chars.receive_upload(ticket, png(size=(4097, 8)))


def test_classify_is_deterministic_from_the_bytes(world):
    team = world.team()
    data = png()
    first = world.chars.classify(team, world.ticket(team, data), T0)
    second = world.chars.classify(team, world.ticket(team, data), T0)
    assert (first.pose, first.confidence) == (second.pose, second.confidence) == classification(data)
    assert first.pose in POSES


def test_classification_spans_every_pose_within_the_confidence_range():
    results = [classification(png((i, 2 * i % 256, 3 * i % 256))) for i in range(60)]
    assert {pose for pose, _ in results} == set(POSES)
    assert all(0.5 <= confidence <= 0.99 for _, confidence in results)


def test_classify_refuses_unknown_empty_expired_and_consumed_tickets(world):
    team = world.team()
    with raises(UploadInvalidError, "upload_id"):
        world.chars.classify(team, "upl_01HXMQ7Z3K8Y2NABCDEFGHJKMR", T0)
    with raises(UploadInvalidError, "upload_id"):
        world.chars.classify(team, world.ticket(team), T0)  # never uploaded
    stale = world.ticket(team, png())
    with raises(UploadInvalidError, "upload_id"):
        world.chars.classify(team, stale, at(86400))
    used = world.ticket(team, png())
    world.create(team, upload_ids=[used])
    with raises(UploadInvalidError, "upload_id"):
        world.chars.classify(team, used, T0)


def test_classify_another_teams_ticket_is_not_found(world):
    upload_id = world.ticket(world.team(), png())
    with raises(ResourceNotFoundError, "upload_id"):
        world.chars.classify(world.team(), upload_id, T0)


def test_a_new_put_replaces_the_bytes_and_forgets_the_pose(world):
    team = world.team()
    upload_id = world.ticket(team, png())
    world.chars.classify(team, upload_id, T0)
    ticket = world.chars.find_upload(upload_id)
    world.chars.receive_upload(ticket, png((1, 2, 3)))
    assert (ticket.pose, ticket.confidence) == (None, None)


# --- create --------------------------------------------------------------------------------------------------


def test_create_from_uploads_is_ready_at_once_and_consumes_the_tickets(world):
    team = world.team()
    front, plain = world.ticket(team, png((1, 1, 1))), world.ticket(team, png((2, 2, 2)))
    world.chars.classify(team, front, T0)
    character = world.create(team, upload_ids=[front, plain], client_reference_id="crm-1")
    pose = world.chars.find_upload(front).pose
    assert character.id.startswith("char_")
    assert character.view(T0).status is CharacterStatus.READY
    assert [ref.pose for ref in character.refs] == [pose, "other"]  # unclassified → other
    assert character.refs[0].data == png((1, 1, 1))
    assert character.client_reference_id == "crm-1"
    assert all(world.chars.find_upload(u).consumed for u in (front, plain))
    assert world.store.get("team", team.id).held == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"generate": False}, {"generate": True, "upload_ids": ["upl_X"]}],
    ids=["neither", "generate-false", "both"],
)
def test_create_needs_exactly_one_of_uploads_and_generate(world, body):
    with pytest.raises(ParameterInvalidCombinationError, match=EXACTLY_ONE) as info:
        world.create(world.team(), **body)
    assert info.value.param == "upload_ids"


def test_create_names_the_bad_upload_and_keeps_the_good_tickets(world):
    team = world.team()
    good = world.ticket(team, png())
    with raises(UploadInvalidError, "upload_ids[1]"):
        world.create(team, upload_ids=[good, world.ticket(team)])
    with raises(UploadInvalidError, "upload_ids[1]"):
        world.create(team, upload_ids=[good, good])
    with raises(ResourceNotFoundError, "upload_ids[0]"):
        world.create(team, upload_ids=[world.ticket(world.team(), png())])
    assert not world.chars.find_upload(good).consumed
    assert world.store.count(KIND) == 0


def test_synthesis_holds_4_images_then_becomes_ready_with_four_poses(world):
    team = world.team()
    character = world.synthesized(team)
    assert character.view(T0).status is CharacterStatus.SYNTHESIZING
    assert character.view(T0).refs == []
    assert (team.credits, team.held) == (1000, 4)
    assert world.status(team, character.id, at(SYNTH_SECONDS - 1)) is CharacterStatus.SYNTHESIZING
    assert world.status(team, character.id, at(SYNTH_SECONDS)) is CharacterStatus.READY
    assert (team.credits, team.held) == (996, 0)
    assert [ref.pose for ref in character.refs] == list(SYNTH_POSES)
    assert [ref.key for ref in character.refs] == list(SYNTH_POSES)
    assert world.terminal == [(character.id, CharacterStatus.READY, at(SYNTH_SECONDS))]
    assert character.updated_at == at(SYNTH_SECONDS)
    rows = [(row.type, row.amount, row.generation_id) for row in world.ledger.entries(team)]
    assert rows == [("hold", 4, character.id), ("charge", 4, character.id)]


def test_synthesis_takes_30_to_90_seconds_by_default():
    world = World(character_synthesis_seconds=None)
    team = world.team()
    for _ in range(10):
        run = world.synthesized(team).synthesis
        assert timedelta(seconds=30) <= run.finish_at - run.started_at <= timedelta(seconds=90)


def test_generation_speed_shortens_synthesis():
    world = World(generation_speed=2)
    run = world.synthesized(world.team()).synthesis
    assert run.finish_at == at(SYNTH_SECONDS / 2)


def test_synthesis_refuses_an_unaffordable_team_before_anything_exists(world):
    team = world.team(credits=3.5)
    with pytest.raises(InsufficientCreditsError) as info:
        world.synthesized(team)
    assert (info.value.status, info.value.code) == (402, "insufficient_credits")
    assert world.store.count(KIND) == 0
    assert team.held == 0


def test_exempt_team_is_never_blocked_nor_charged(world):
    team = world.team(credits=0, billing_mode="exempt")
    character = world.synthesized(team)
    assert world.status(team, character.id, at(SYNTH_SECONDS)) is CharacterStatus.READY
    assert (team.credits, team.held) == (0, 0)


def test_the_settle_heap_books_runs_in_finish_order(world):
    team = world.team()
    first = world.synthesized(team)
    second = world.synthesized(team, at(10))
    world.chars.settle_due(team, at(1000))
    assert [c for c, _, _ in world.terminal] == [first.id, second.id]
    world.chars.settle_due(team, at(2000))
    assert len(world.terminal) == 2  # settled once


# --- the scenario hook ---------------------------------------------------------------------------------------


def script(world: World, **changes: Any) -> None:
    def apply(team: Team, character: Any, run: Synthesis) -> None:
        for name, value in changes.items():
            setattr(run, name, value)

    world.chars.on_synthesis.append(apply)


def test_a_scripted_failure_fails_and_releases_the_hold(world):
    script(world, outcome=CharacterStatus.FAILED, error_message="moderation_rejected")
    team = world.team()
    character = world.synthesized(team)
    assert world.status(team, character.id, at(SYNTH_SECONDS)) is CharacterStatus.FAILED
    assert character.error_message == "moderation_rejected"
    assert (team.credits, team.held) == (1000, 0)
    assert world.terminal == [(character.id, CharacterStatus.FAILED, at(SYNTH_SECONDS))]
    assert character.refs == []


def test_a_failure_without_a_message_reports_a_customer_safe_code(world):
    script(world, outcome=CharacterStatus.FAILED)
    team = world.team()
    character = world.synthesized(team)
    assert character.view(at(SYNTH_SECONDS)).error_message == "provider_error"


def test_a_stalled_run_stays_synthesizing(world):
    script(world, finish_at=datetime(8000, 1, 1, tzinfo=UTC))
    team = world.team()
    character = world.synthesized(team)
    assert world.status(team, character.id, at(10 * 86400)) is CharacterStatus.SYNTHESIZING


def test_the_original_flow_reviews_then_save_makes_it_ready(world):
    script(world, outcome=CharacterStatus.REVIEWING)
    team = world.team()
    character = world.synthesized(team)
    assert world.status(team, character.id, at(SYNTH_SECONDS)) is CharacterStatus.REVIEWING
    assert team.credits == 996  # the renders exist: charged
    assert world.chars.save(team, character.id, at(100)).view(at(100)).status is CharacterStatus.READY
    assert world.chars.save(team, character.id, at(101)).updated_at == at(100)  # idempotent on ready


def test_deleting_a_reviewing_character_removes_it(world):
    script(world, outcome=CharacterStatus.REVIEWING)
    team = world.team()
    character = world.synthesized(team)
    world.chars.delete(team, character.id, at(SYNTH_SECONDS))
    assert world.store.get(KIND, character.id) is None
    with raises(ResourceNotFoundError):
        world.chars.get(team, character.id)


@pytest.mark.parametrize(("outcome", "when"), [(CharacterStatus.FAILED, SYNTH_SECONDS), (None, 1)])
def test_save_refuses_failed_and_synthesizing(world, outcome, when):
    if outcome is not None:
        script(world, outcome=outcome)
    team = world.team()
    character = world.synthesized(team)
    with raises(InvalidRequestStateError):
        world.chars.save(team, character.id, at(when))


# --- read, list, update --------------------------------------------------------------------------------------


def test_get_hides_other_teams(world):
    character = world.synthesized(world.team())
    with raises(ResourceNotFoundError):
        world.chars.get(world.team(), character.id)


def test_list_is_newest_first_filters_one_state_and_excludes_deleted(world):
    team = world.team()
    old = world.create(team, upload_ids=[world.ticket(team, png())])
    mid = world.synthesized(team, at(1))
    new = world.create(team, at(2), upload_ids=[world.ticket(team, png())])
    world.chars.delete(team, new.id, at(3))

    def ids(**kw: Any) -> list[str]:
        return [c.id for c in world.chars.list_characters(team, at(3), limit=20, starting_after=None, **kw).rows]

    assert ids(status=None) == [mid.id, old.id]
    assert ids(status="ready") == [old.id]
    assert ids(status="synthesizing") == [mid.id]
    assert ids(status="deleted") == []
    page = world.chars.list_characters(team, at(3), limit=1, starting_after=None, status=None)
    assert (page.has_more, page.next_cursor) == (True, mid.id)
    rest = world.chars.list_characters(team, at(3), limit=1, starting_after=mid.id, status=None)
    assert ([c.id for c in rest.rows], rest.has_more) == ([old.id], False)
    with raises(UnknownReferenceError, "starting_after"):
        world.chars.list_characters(team, at(3), limit=1, starting_after=new.id, status=None)


def test_update_replaces_attributes_wholesale(world):
    team = world.team()
    character = world.create(
        team, upload_ids=[world.ticket(team, png())], attributes={"gender": "female", "hair_color": "black"}
    )
    req = UpdateCharacterRequest.model_validate({"attributes": {"eye_color": "brown"}})
    updated = world.chars.update(team, character.id, req, at(5))
    assert updated.attributes == {"eye_color": "brown"}
    assert (updated.name, updated.updated_at) == ("Aurora", at(5))
    renamed = world.chars.update(team, character.id, UpdateCharacterRequest(name="Nova"), at(6))
    assert (renamed.name, renamed.attributes) == ("Nova", {"eye_color": "brown"})


def test_update_of_a_deleted_character_names_character_id(world):
    team = world.team()
    character = world.create(team, upload_ids=[world.ticket(team, png())])
    world.chars.delete(team, character.id, T0)
    with raises(ResourceNotFoundError, "character_id"):
        world.chars.update(team, character.id, UpdateCharacterRequest(name="x"), T0)


# --- delete --------------------------------------------------------------------------------------------------


def test_delete_soft_deletes_and_cancels_a_run_in_flight(world):
    team = world.team()
    character = world.synthesized(team)
    world.chars.delete(team, character.id, at(10))
    assert character.view(at(10)).status is CharacterStatus.DELETED
    assert (team.credits, team.held) == (1000, 0)
    assert world.terminal == [(character.id, CharacterStatus.DELETED, at(10))]
    world.chars.settle_due(team, at(SYNTH_SECONDS))  # the cancelled run never settles
    assert len(world.terminal) == 1
    with raises(ResourceNotFoundError):
        world.chars.delete(team, character.id, at(11))
    assert world.store.get(KIND, character.id) is not None  # soft: still stored


def test_delete_of_a_ready_character_sends_nothing(world):
    team = world.team()
    character = world.create(team, upload_ids=[world.ticket(team, png())])
    world.chars.delete(team, character.id, T0)
    assert world.terminal == []


# --- resynthesize, regenerate --------------------------------------------------------------------------------


def test_resynthesize_replaces_every_ref_and_costs_4(world):
    team = world.team()
    character = world.create(team, upload_ids=[world.ticket(team, png())])
    world.chars.resynthesize(team, character.id, meta(at(1)))
    assert character.view(at(1)).status is CharacterStatus.SYNTHESIZING
    assert [ref.pose for ref in character.view(at(1)).refs] == ["other"]  # the previous refs stay visible
    assert team.held == 4
    assert world.status(team, character.id, at(1 + SYNTH_SECONDS)) is CharacterStatus.READY
    assert [ref.pose for ref in character.refs] == list(SYNTH_POSES)
    assert team.credits == 996


def test_resynthesize_is_refused_while_synthesizing(world):
    team = world.team()
    character = world.synthesized(team)
    with raises(InvalidRequestStateError):
        world.chars.resynthesize(team, character.id, meta(at(1)))
    assert team.held == 4


def test_resynthesize_after_a_failure_is_allowed(world):
    script(world, outcome=CharacterStatus.FAILED)
    team = world.team()
    character = world.synthesized(team)
    world.chars.on_synthesis.clear()
    world.chars.resynthesize(team, character.id, meta(at(SYNTH_SECONDS)))
    assert world.status(team, character.id, at(2 * SYNTH_SECONDS)) is CharacterStatus.READY
    assert character.error_message is None


def test_resynthesize_needs_credits(world):
    team = world.team(credits=6)
    character = world.synthesized(team)
    world.chars.settle_due(team, at(SYNTH_SECONDS))
    with pytest.raises(InsufficientCreditsError):
        world.chars.resynthesize(team, character.id, meta(at(SYNTH_SECONDS)))
    assert character.view(at(SYNTH_SECONDS)).status is CharacterStatus.READY


def test_regenerate_one_pose_costs_1_and_replaces_that_pose(world):
    team = world.team()
    front_a, front_b, side = (world.ticket(team, png((i, i, i))) for i in (1, 2, 3))
    character = world.create(team, upload_ids=[front_a, front_b, side])
    character.refs = keyed([Ref("", "front"), Ref("", "front"), Ref("", "side")])
    assert [ref.key for ref in character.refs] == ["front", "front-2", "side"]
    world.chars.regenerate(team, character.id, "front", meta(at(1)))
    assert team.held == 1
    assert world.status(team, character.id, at(1 + SYNTH_SECONDS)) is CharacterStatus.READY
    assert [(ref.key, ref.data is None) for ref in character.refs] == [("front", True), ("side", True)]
    world.chars.regenerate(team, character.id, "back", meta(at(100)))
    world.chars.settle_due(team, at(200))
    assert [ref.pose for ref in character.refs] == ["front", "side", "back"]
    assert team.credits == 998


def test_regenerate_refuses_an_unknown_pose(world):
    team = world.team()
    character = world.create(team, upload_ids=[world.ticket(team, png())])
    with pytest.raises(InvalidRequestStateError, match=BAD_POSE) as info:
        world.chars.regenerate(team, character.id, "left", meta())
    assert info.value.param == "pose"


def test_regenerated_refs_render_differently_from_the_previous_run(world):
    team = world.team()
    character = world.synthesized(team)
    world.chars.settle_due(team, at(SYNTH_SECONDS))
    before = {ref.pose: ref.seed for ref in character.refs}
    world.chars.regenerate(team, character.id, "side", meta(at(SYNTH_SECONDS)))
    world.chars.settle_due(team, at(3 * SYNTH_SECONDS))
    after = {ref.pose: ref.seed for ref in character.refs}
    assert after["side"] != before["side"]
    assert {k: v for k, v in after.items() if k != "side"} == {k: v for k, v in before.items() if k != "side"}


# --- use in generations and ref URLs -------------------------------------------------------------------------


def test_require_ready_resolves_only_the_teams_ready_characters(world):
    team = world.team()
    character = world.synthesized(team)
    with raises(CharacterNotReadyError, "character_id"):
        world.chars.require_ready(team, character.id, at(1))
    assert world.chars.require_ready(team, character.id, at(SYNTH_SECONDS)) is character
    with raises(ResourceNotFoundError, "character_id"):
        world.chars.require_ready(world.team(), character.id, at(SYNTH_SECONDS))
    with raises(ResourceNotFoundError, "character_id"):
        world.chars.require_ready(team, "char_01HXMQ7Z3K8Y2NABCDEFGHJKMR", T0)
    world.chars.delete(team, character.id, at(SYNTH_SECONDS))
    with raises(CharacterNotReadyError, "character_id"):
        world.chars.require_ready(team, character.id, at(SYNTH_SECONDS))


def test_ref_urls_are_signed_and_served_until_deletion(world):
    team = world.team()
    character = world.create(team, upload_ids=[world.ticket(team, png())])
    [url] = world.chars.ref_urls(character, BASE, T0)
    assert url.startswith(f"{BASE}/_storage/characters/{character.id}/refs/other?token=")
    token = url.partition("token=")[2]
    assert world.chars.served_ref(character, "other", token, at(86399)).data == png()
    for key, tok, when in (("other", "1.x", T0), ("front", token, T0), ("other", token, at(86400))):
        with pytest.raises(ResourceNotFoundError):
            world.chars.served_ref(character, key, tok, when)
    world.chars.delete(team, character.id, at(1))
    with pytest.raises(ResourceNotFoundError):
        world.chars.served_ref(character, "other", token, at(2))

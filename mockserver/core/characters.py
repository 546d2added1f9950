"""Characters: upload tickets, create (uploads or synthesis), read, list, update, delete, save, resynthesize,
regenerate one pose, and settlement of synthesis runs on the team's clock (reference §2.6, §8.14).

We follow the 2026-06-19 flow (inferred, reference §8.14): a synthesis returns ``synthesizing`` and reaches
``ready`` (or ``failed``) by itself after 30–90 s; ``reviewing`` and ``save`` only matter when a scenario
scripts the original flow. Credits follow the generation model (inferred): the price of 4 images (1 for a
regenerated pose) of the pinned rate card is held when a run starts, committed when it succeeds and released
when it fails or the character is deleted mid-run. Runs settle lazily, like generations: ``settle_due``
drains a per-team heap of finish instants at the start of every authenticated request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from mockserver.clock import unix_seconds
from mockserver.core import outputs, pricing, scenarios
from mockserver.core._character_records import (
    CONTENT_TYPES,
    POSES,
    SYNTH_POSES,
    Character,
    CharacterStatus,
    CreateCharacterRequest,
    Ref,
    Synthesis,
    UpdateCharacterRequest,
    UploadInitRequest,
    UploadTicket,
    classification,
    keyed,
    regenerated,
    render_seed,
)
from mockserver.core.due import DueQueue
from mockserver.core.errors import (
    CharacterNotReadyError,
    InsufficientCreditsError,
    InvalidApiKeyError,
    InvalidFormatError,
    InvalidRequestStateError,
    ParameterInvalidCombinationError,
    ResourceNotFoundError,
    UploadInvalidError,
)
from mockserver.core.ledger import Ledger
from mockserver.core.models import JobStatus, Team
from mockserver.core.pagination import Page, paginate
from mockserver.core.ports import InspectImage
from mockserver.ids import IdSource
from mockserver.settings import Settings
from mockserver.store import Store

KIND, UPLOAD, DUE = "character", "character_upload", "character_due"
TICKET_TTL = timedelta(hours=24)
UPLOAD_URL_TTL = timedelta(minutes=15)
REF_URL_TTL = timedelta(hours=24)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
SYNTH_IMAGES, REGENERATE_IMAGES = 4, 1
ELIGIBLE = (CharacterStatus.REVIEWING, CharacterStatus.READY, CharacterStatus.FAILED)

MISMATCH = "extension {extension} does not match content_type {content_type}."
EXACTLY_ONE = "Exactly one of upload_ids or generate: true is required."
NOT_ELIGIBLE = "Character {id} is {status}; {operation} needs it to be one of {allowed}."
BAD_POSE = "pose must be one of " + ", ".join(POSES) + "."
BAD_SIGNATURE = "The upload signature is invalid or has expired."
WRONG_BYTES = "The uploaded image is {found}, not {expected}."

SynthesisListener = Callable[[Team, Character, Synthesis], None]
TerminalListener = Callable[[Team, Character, CharacterStatus, datetime], None]


def ref_url(signing_key: str, base: str, character_id: str, key: str, expires: int) -> str:
    """A ref's proxy URL (``/_storage/…``, emulator plumbing, not in the spec), signed until ``expires``."""
    token = outputs.mint(signing_key, character_id, f"ref:{key}", expires)
    return f"{base}/_storage/characters/{character_id}/refs/{key}?token={token}"


class Characters:
    """The character service; every method takes the team and that team's ``now``.

    ``on_synthesis`` listeners see each run before it is scheduled (the scenario hook: they may script its
    outcome, error message or finish instant); ``on_terminal`` listeners see ``ready`` / ``reviewing`` /
    ``failed`` when a run settles and ``deleted`` when a delete cancels one.
    """

    def __init__(
        self, store: Store, ids: IdSource, settings: Settings, ledger: Ledger, inspect_image: InspectImage
    ) -> None:
        self.store = store
        self.ids = ids
        self.settings = settings
        self.ledger = ledger
        self.inspect_image = inspect_image
        self.due = DueQueue(store, DUE)
        self.on_synthesis: list[SynthesisListener] = []
        self.on_terminal: list[TerminalListener] = []

    # --- upload tickets -----------------------------------------------------------------------------------

    def init_upload(self, team: Team, req: UploadInitRequest, now: datetime) -> UploadTicket:
        """A ticket for one image; ``extension`` and ``content_type`` must agree (the 400's code is inferred)."""
        if CONTENT_TYPES[req.extension] != req.content_type:
            message = MISMATCH.format(extension=req.extension, content_type=req.content_type)
            raise ParameterInvalidCombinationError(message, param="content_type")
        ticket = UploadTicket(
            id=self.ids.new("upl", at=now, scope=team.id),
            team_id=team.id,
            filename=req.filename,
            content_type=req.content_type,
            created_at=now,
            expires_at=now + TICKET_TTL,
            url_expires_at=now + UPLOAD_URL_TTL,
        )
        self.store.put(UPLOAD, ticket.id, ticket, owner=team.id)
        return ticket

    def upload_url(self, base: str, ticket: UploadTicket) -> str:
        """The signed PUT URL, served by the emulator itself (``/_storage/uploads/…``, not in the spec)."""
        signature = outputs.mint(self.settings.signing_key, ticket.id, "upload", unix_seconds(ticket.url_expires_at))
        return f"{base}/_storage/uploads/{ticket.id}?signature={signature}"

    def find_upload(self, upload_id: str) -> UploadTicket | None:
        """A ticket by id regardless of team (the PUT is authorized by its signature alone)."""
        ticket: UploadTicket | None = self.store.get(UPLOAD, upload_id)
        return ticket

    def authorize_upload(self, ticket: UploadTicket, signature: str, now: datetime) -> None:
        """Before the PUT's body is read: a valid signature (15 min) and a live ticket.

        A bad or expired signature is answered like a bad output token (401 ``invalid_api_key``; inferred). No header
        is checked: the upload-init page says "any well-formed PUT, no extra headers required", so the type is known
        from the bytes (:meth:`receive_upload`), whatever ``Content-Type`` the client's library sent, if any.
        """
        if not outputs.verify(self.settings.signing_key, signature, ticket.id, "upload", unix_seconds(now)):
            raise InvalidApiKeyError(BAD_SIGNATURE)
        if ticket.consumed or now >= ticket.expires_at:
            raise UploadInvalidError(id=ticket.id)

    def receive_upload(self, ticket: UploadTicket, data: bytes) -> UploadTicket:
        """The PUT's bytes, sniffed: an image of the type declared at init (inferred), ≤ 10 MB, ≤ 4096 px.

        A new PUT replaces them (and their pose).
        """
        info = self.inspect_image(data, param="body", max_bytes=MAX_UPLOAD_BYTES)
        if info.mime_type != ticket.content_type:
            raise InvalidFormatError(
                WRONG_BYTES.format(found=info.mime_type, expected=ticket.content_type), param="body"
            )
        with self.store.transaction():
            ticket = self.find_upload(ticket.id) or ticket
            ticket.data, ticket.width, ticket.height = data, info.width, info.height
            ticket.pose = ticket.confidence = None
            self.store.put(UPLOAD, ticket.id, ticket, owner=ticket.team_id)
        return ticket

    def _ticket(self, team: Team, upload_id: str, now: datetime, param: str) -> UploadTicket:
        """A usable ticket: another team's is 404; unknown, expired, consumed or still empty is 400."""
        ticket = self.find_upload(upload_id)
        if ticket is not None and ticket.team_id != team.id:
            raise ResourceNotFoundError(param=param, kind="upload", id=upload_id)
        if ticket is None or ticket.consumed or ticket.data is None or now >= ticket.expires_at:
            raise UploadInvalidError(param=param, id=upload_id)
        return ticket

    def classify(self, team: Team, upload_id: str, now: datetime) -> UploadTicket:
        """Deterministic from the bytes; the pose is kept for the ref this ticket becomes."""
        with self.store.transaction():
            ticket = self._ticket(team, upload_id, now, "upload_id")
            assert ticket.data is not None
            ticket.pose, ticket.confidence = classification(ticket.data)
            self.store.put(UPLOAD, ticket.id, ticket, owner=team.id)
        return ticket

    # --- create -----------------------------------------------------------------------------------------

    def create(self, team: Team, req: CreateCharacterRequest, meta: dict[str, Any]) -> Character:
        """``meta``: ``now``, ``version``, ``base_url``. Uploads → ``ready`` now; ``generate`` → a 4-pose run."""
        now: datetime = meta["now"]
        if (req.upload_ids is not None) == bool(req.generate):
            raise ParameterInvalidCombinationError(EXACTLY_ONE, param="upload_ids")
        with self.store.transaction():  # a ticket is consumed by one create only
            return self._create(team, req, meta, self._tickets(team, req.upload_ids or [], now))

    def _create(
        self, team: Team, req: CreateCharacterRequest, meta: dict[str, Any], tickets: list[UploadTicket]
    ) -> Character:
        now: datetime = meta["now"]
        character = Character(
            id=self.ids.new("char", at=now, scope=team.id),
            team_id=team.id,
            name=req.name,
            attributes=dict(req.attributes or {}),
            client_reference_id=req.client_reference_id,
            aurous_version=meta["version"],
            created_at=now,
            updated_at=now,
            base_url=meta.get("base_url"),
            state=CharacterStatus.READY,
            refs=keyed([Ref("", t.pose or "other", t.content_type, data=t.data) for t in tickets]),
        )
        if req.generate:
            self._start(team, character, SYNTH_POSES, meta)
        else:
            self.store.put(KIND, character.id, character, owner=team.id)
        for ticket in tickets:
            ticket.consumed = True
            self.store.put(UPLOAD, ticket.id, ticket, owner=team.id)
        return character

    def _tickets(self, team: Team, upload_ids: list[str], now: datetime) -> list[UploadTicket]:
        """Every ticket usable, each once (a repeated id is already consumed by its first mention; inferred)."""
        tickets: list[UploadTicket] = []
        for index, upload_id in enumerate(upload_ids):
            param = f"upload_ids[{index}]"
            if upload_id in upload_ids[:index]:
                raise UploadInvalidError(param=param, id=upload_id)
            tickets.append(self._ticket(team, upload_id, now, param))
        return tickets

    # --- synthesis runs ---------------------------------------------------------------------------------

    def _duration(self, team: Team) -> timedelta:
        seconds = self.settings.character_synthesis_seconds
        if seconds is None:
            seconds = self.ids.randint(30_000, 90_000, scope=team.id) / 1000.0
        return timedelta(seconds=seconds / self.settings.generation_speed)

    def _start(self, team: Team, character: Character, poses: tuple[str, ...], meta: dict[str, Any]) -> None:
        """Hold the price (402 before anything changes), let the scenario hook see the run, schedule it."""
        now: datetime = meta["now"]
        number = character.runs + 1
        fresh = [Ref(pose, pose, seed=render_seed(character.id, pose, number)) for pose in poses]
        # Resynthesis replaces the full set, whatever force_all says; a regenerated pose replaces its refs.
        refs = fresh if poses == SYNTH_POSES else regenerated(character.refs, fresh[0])
        count = SYNTH_IMAGES if poses == SYNTH_POSES else REGENERATE_IMAGES
        cost = pricing.image_cost(meta["version"], count=count, enhance_prompt=False)
        step: scenarios.Step | None = meta.get("scenario")
        _, finish = scenarios.timeline(step, now, now + self._duration(team))
        run = Synthesis(character.id, number, poses, now, finish, cost, keyed(refs))
        status, error_message = scenarios.terminal(step)
        if status is JobStatus.FAILED:  # `[mock:fail=…]`-style scripts make the synthesis fail at its finish
            run.outcome, run.error_message = CharacterStatus.FAILED, error_message
        self.ledger.hold(team, run, now, error=InsufficientCreditsError)
        for listener in self.on_synthesis:
            listener(team, character, run)
        character.runs, character.synthesis, character.updated_at = number, run, now
        self.store.put(KIND, character.id, character, owner=team.id)
        self.due.push(team.id, (run.finish_at, character.id, run.run))

    def settle_due(self, team: Team, now: datetime) -> None:
        """Book every run of the team that finished by ``now``, in finish order."""
        next_at = self.due.next_at(team.id)
        if next_at is None or next_at > now:
            return
        with self.store.transaction():  # popped again inside: another request or worker may have settled them
            for _, character_id, number in self.due.pop_due(team.id, now):
                character: Character | None = self.store.get(KIND, character_id)
                run = character.running if character is not None else None
                if character is not None and run is not None and run.run == number:
                    self._settle(team, character, run)

    def _settle(self, team: Team, character: Character, run: Synthesis) -> None:
        view = character.view(run.finish_at)
        run.settled = True
        if view.status is CharacterStatus.FAILED:
            self.ledger.release(team, run, run.finish_at)
        else:
            self.ledger.commit(team, run, run.finish_at)
            character.refs = view.refs
        character.state, character.error_message, character.updated_at = view.status, view.error_message, run.finish_at
        self.store.put(KIND, character.id, character, owner=team.id)
        for listener in self.on_terminal:
            listener(team, character, view.status, run.finish_at)

    # --- read, list --------------------------------------------------------------------------------------

    def get(self, team: Team, character_id: str, *, param: str | None = None) -> Character:
        """The team's character; unknown, another team's and soft-deleted ones are 404 (inferred, §8.14)."""
        character: Character | None = self.store.get(KIND, character_id)
        if character is None or character.team_id != team.id or character.deleted_at is not None:
            raise ResourceNotFoundError(param=param, kind="character", id=character_id)
        return character

    def find(self, character_id: str) -> Character | None:
        """A character by id regardless of team (ref URLs are readable with their token alone)."""
        character: Character | None = self.store.get(KIND, character_id)
        return character

    def synthesizing(self, team: Team, character_id: str, now: datetime) -> bool:
        """Whether the team's character is still synthesizing at ``now`` (a forgotten one is not)."""
        character = self.find(character_id)
        if character is None or character.team_id != team.id:
            return False
        return character.view(now).status is CharacterStatus.SYNTHESIZING

    def served_ref(self, character: Character, key: str, token: str, now: datetime) -> Ref:
        """The ref behind a signed ref URL; a bad or expired token, a deleted character or a stale key is 404."""
        signed = outputs.verify(self.settings.signing_key, token, character.id, f"ref:{key}", unix_seconds(now))
        view = character.view(now)
        ref = next((ref for ref in view.refs if ref.key == key), None)
        if not signed or view.status is CharacterStatus.DELETED or ref is None:
            raise ResourceNotFoundError(kind="character ref", id=f"{character.id}/refs/{key}")
        return ref

    def list_characters(
        self, team: Team, now: datetime, *, limit: int, starting_after: str | None, status: str | None
    ) -> Page[Character]:
        """Newest first, soft-deleted excluded (so ``status=deleted`` lists nothing)."""
        rows: list[Character] = self.store.values(KIND, owner=team.id)
        rows = [row for row in reversed(rows) if row.deleted_at is None]
        if status is not None:
            rows = [row for row in rows if row.view(now).status == status]
        return paginate(rows, limit=limit, starting_after=starting_after)

    # --- update, delete, save ---------------------------------------------------------------------------

    def update(self, team: Team, character_id: str, req: UpdateCharacterRequest, now: datetime) -> Character:
        """Only ``name`` and ``attributes``; attributes are replaced wholesale, never merged."""
        with self.store.transaction():
            character = self.get(team, character_id, param="character_id")
            if req.name is not None:
                character.name = req.name
            if req.attributes is not None:
                character.attributes = dict(req.attributes)
            if req.model_fields_set:
                character.updated_at = now
            self.store.put(KIND, character.id, character, owner=team.id)
        return character

    def delete(self, team: Team, character_id: str, now: datetime) -> None:
        """``reviewing`` → gone; otherwise soft-deleted. A run in flight is cancelled and its hold released."""
        self.settle_due(team, now)
        with self.store.transaction():
            character = self.get(team, character_id)
            status = character.view(now).status
            if status is CharacterStatus.REVIEWING:
                self.store.delete(KIND, character.id)
                return
            run = character.running
            if run is not None:
                run.settled = True
                self.ledger.release(team, run, now)
            character.deleted_at = character.updated_at = now
            self.store.put(KIND, character.id, character, owner=team.id)
        if run is not None:
            for listener in self.on_terminal:
                listener(team, character, CharacterStatus.DELETED, now)

    def save(self, team: Team, character_id: str, now: datetime) -> Character:
        """``reviewing`` → ``ready`` (free); ``ready`` is a no-op; anything else is 400."""
        self.settle_due(team, now)
        with self.store.transaction():
            character = self.get(team, character_id)
            status = character.view(now).status
            if status is CharacterStatus.REVIEWING:
                character.state, character.updated_at = CharacterStatus.READY, now
                self.store.put(KIND, character.id, character, owner=team.id)
            elif status is not CharacterStatus.READY:
                self._refuse(character, status, "save", (CharacterStatus.REVIEWING, CharacterStatus.READY))
        return character

    # --- resynthesize, regenerate -----------------------------------------------------------------------

    def resynthesize(self, team: Team, character_id: str, meta: dict[str, Any]) -> Character:
        """Every pose again from the stored attributes: 4 images; the full ref set is replaced."""
        return self._rerun(team, character_id, SYNTH_POSES, "resynthesize", meta)

    def regenerate(self, team: Team, character_id: str, pose: str, meta: dict[str, Any]) -> Character:
        """One pose again: 1 image. Which states allow it is not documented; we take resynthesize's (inferred)."""
        if pose not in POSES:
            raise InvalidRequestStateError(BAD_POSE, param="pose")
        return self._rerun(team, character_id, (pose,), "refs/regenerate", meta)

    def _rerun(
        self, team: Team, character_id: str, poses: tuple[str, ...], operation: str, meta: dict[str, Any]
    ) -> Character:
        now: datetime = meta["now"]
        self.settle_due(team, now)
        with self.store.transaction():
            character = self.get(team, character_id)
            status = character.view(now).status
            if status not in ELIGIBLE:
                self._refuse(character, status, operation, ELIGIBLE)
            self._start(team, character, poses, meta)
        return character

    @staticmethod
    def _refuse(character: Character, status: str, operation: str, allowed: tuple[CharacterStatus, ...]) -> None:
        names = ", ".join(s.value for s in allowed)
        raise InvalidRequestStateError(
            NOT_ELIGIBLE.format(id=character.id, status=status, operation=operation, allowed=names)
        )

    # --- use in generations -----------------------------------------------------------------------------

    def require_ready(self, team: Team, character_id: str, now: datetime) -> Character:
        """For ``character_id`` on a generation: another team's or unknown → 404; not ``ready`` → 400."""
        character: Character | None = self.store.get(KIND, character_id)
        if character is None or character.team_id != team.id:
            raise ResourceNotFoundError(param="character_id", kind="character", id=character_id)
        if character.view(now).status is not CharacterStatus.READY:
            raise CharacterNotReadyError(param="character_id", id=character_id)
        return character

    def ref_urls(self, character: Character, base: str, now: datetime) -> list[str]:
        expires = unix_seconds(now + REF_URL_TTL)
        key = self.settings.signing_key
        return [ref_url(key, base, character.id, ref.key, expires) for ref in character.view(now).refs]

"""Character records (the character, its refs, a synthesis run, an upload ticket) and the request bodies.

A character's status is derived from the team's clock like a generation's: the latest synthesis run
carries the instant it finishes and the status it then reaches, so reading never needs a thread.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mockserver.core.models import Cost
from mockserver.core.requests import Body

POSES = ("portrait", "front", "side", "back", "other")
SYNTH_POSES = ("portrait", "front", "side", "back")
CONTENT_TYPES = {"jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# What a failed run reports when nothing more specific was scripted: a customer-safe code (reference §5.2).
DEFAULT_FAILURE = "provider_error"


class CharacterStatus(enum.StrEnum):
    """Character status; values are the wire strings (reference §2.6)."""

    SYNTHESIZING = "synthesizing"
    REVIEWING = "reviewing"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"


# A run may end in one of these; ``reviewing`` is the original (pre 2026-06-19) flow, reachable by scenarios.
RUN_OUTCOMES = (CharacterStatus.READY, CharacterStatus.REVIEWING, CharacterStatus.FAILED)


@dataclass(slots=True)
class Ref:
    """One reference image. Synthesized refs are rendered from ``seed``; uploaded refs keep their ``data``."""

    key: str  # the path segment of its URL: the pose, suffixed ``-2``, ``-3`` … when the pose repeats
    pose: str
    mime_type: str = "image/png"
    seed: int = 0
    data: bytes | None = None


def keyed(refs: list[Ref]) -> list[Ref]:
    """The refs with unique keys, in order: ``front``, ``front-2``, ``other`` …"""
    seen: dict[str, int] = {}
    for ref in refs:
        seen[ref.pose] = seen.get(ref.pose, 0) + 1
        ref.key = ref.pose if seen[ref.pose] == 1 else f"{ref.pose}-{seen[ref.pose]}"
    return refs


def render_seed(character_id: str, pose: str, run: int) -> int:
    """The picture of a synthesized ref depends on the character, the pose and the run that drew it."""
    digest = hashlib.sha256(f"{character_id}:{pose}:{run}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def classification(data: bytes) -> tuple[str, float]:
    """A pose and a confidence in 0.50–0.99, derived from the bytes alone (so classify is a pure read)."""
    digest = hashlib.sha256(data).digest()
    return POSES[digest[0] % len(POSES)], 0.5 + (digest[1] % 50) / 100


def regenerated(refs: list[Ref], fresh: Ref) -> list[Ref]:
    """``fresh`` takes the place of the first ref of its pose (later ones of that pose go), or comes last."""
    kept: list[Ref] = []
    placed = False
    for ref in refs:
        if ref.pose != fresh.pose:
            kept.append(replace(ref))  # a copy: re-keying must not touch the refs shown while the run is in flight
        elif not placed:
            kept.append(fresh)
            placed = True
    return kept if placed else [*kept, fresh]


@dataclass(slots=True)
class Synthesis:
    """One synthesis run (create with ``generate``, resynthesize, or one regenerated pose).

    Scenario hook: listeners of ``Characters.on_synthesis`` may set ``outcome`` (one of ``RUN_OUTCOMES``),
    ``error_message`` and ``finish_at`` (far in the future to stall) before the run is scheduled.
    ``id`` is the character's, so the ledger rows of the hold name the character.
    """

    id: str
    run: int
    poses: tuple[str, ...]
    started_at: datetime
    finish_at: datetime
    cost: Cost
    refs: list[Ref]  # the character's refs once the run succeeds
    outcome: CharacterStatus = CharacterStatus.READY
    error_message: str | None = None
    hold_id: str | None = None
    settled: bool = False


@dataclass(frozen=True, slots=True)
class View:
    """What a character looks like at one instant."""

    status: CharacterStatus
    refs: list[Ref]
    error_message: str | None
    updated_at: datetime


@dataclass(slots=True)
class Character:
    id: str
    team_id: str
    name: str
    attributes: dict[str, Any]
    client_reference_id: str | None
    aurous_version: str
    created_at: datetime
    updated_at: datetime
    base_url: str | None  # the URL it was created through: later payloads (webhooks) render ref URLs against it
    state: CharacterStatus  # the settled status; ``synthesizing`` is derived from ``synthesis``
    refs: list[Ref] = field(default_factory=list)
    error_message: str | None = None
    synthesis: Synthesis | None = None
    runs: int = 0
    deleted_at: datetime | None = None

    @property
    def running(self) -> Synthesis | None:
        """The run not yet settled (in flight, or finished but not booked yet)."""
        run = self.synthesis
        return run if run is not None and not run.settled else None

    def view(self, now: datetime) -> View:
        if self.deleted_at is not None:
            return View(CharacterStatus.DELETED, self.refs, self.error_message, self.updated_at)
        run = self.running
        if run is None:
            return View(self.state, self.refs, self.error_message, self.updated_at)
        if now < run.finish_at:
            return View(CharacterStatus.SYNTHESIZING, self.refs, None, self.updated_at)
        if run.outcome is CharacterStatus.FAILED:
            return View(CharacterStatus.FAILED, self.refs, run.error_message or DEFAULT_FAILURE, run.finish_at)
        return View(run.outcome, run.refs, None, run.finish_at)


@dataclass(slots=True)
class UploadTicket:
    """A ``upl_`` ticket: 24 h to be used, 15 min for its signed PUT URL."""

    id: str
    team_id: str
    filename: str
    content_type: str
    created_at: datetime
    expires_at: datetime
    url_expires_at: datetime
    data: bytes | None = None
    width: int | None = None
    height: int | None = None
    pose: str | None = None  # set by classify
    confidence: float | None = None
    consumed: bool = False


# --- request bodies (strict, like the generation bodies) ------------------------------------------------

Name = Annotated[str, StringConstraints(min_length=1)]
UploadId = Annotated[str, StringConstraints(min_length=1)]


class UploadInitRequest(Body):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    extension: Literal["jpeg", "jpg", "png", "webp"]
    content_type: Literal["image/jpeg", "image/png", "image/webp"]


class ClassifyRequest(Body):
    upload_id: UploadId


class Attributes(BaseModel):
    """The vendor's example keys are typed; any other key is free-form and kept as sent."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)

    gender: str | None = None
    age: int | None = None
    ethnicity: str | None = None
    hair_color: str | None = None
    hair_style: str | None = None
    eye_color: str | None = None
    body_type: str | None = None
    additional_details: str | None = None


class CreateCharacterRequest(Body):
    name: Name
    generate: bool | None = None
    upload_ids: Annotated[list[UploadId], Field(min_length=1, max_length=6)] | None = None
    attributes: dict[str, Any] | None = None
    client_reference_id: Annotated[str, StringConstraints(max_length=256)] | None = None


class UpdateCharacterRequest(Body):
    name: Name | None = None
    attributes: dict[str, Any] | None = None


UPDATABLE = tuple(UpdateCharacterRequest.model_fields)


class ResynthesizeRequest(Body):
    force_all: bool | None = None


class RegenerateRequest(Body):
    pose: str
    prompt_override: str | None = None

"""Image and video generations: validate, price, hold, create, read, list, cancel, settle on the clock.

Status is derived from the team's clock when a generation is read: each generation carries the
instants at which it starts processing and finishes, so advancing a virtual clock by an hour moves
any number of generations to their terminal state without a thread or a sleep. Credits settle
lazily: the first request of a team after a generation's finish instant commits or releases its hold.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from mockserver.core import pricing, scenarios, ssrf
from mockserver.core.catalogue import Catalogue
from mockserver.core.characters import Characters
from mockserver.core.due import DueQueue
from mockserver.core.errors import (
    GenerationNotCancellableError,
    MissingFieldError,
    MutuallyExclusiveInputError,
    ResourceNotFoundError,
    UnknownReferenceError,
)
from mockserver.core.files import Files
from mockserver.core.ledger import Ledger
from mockserver.core.models import Cost, Generation, JobStatus, Team
from mockserver.core.pagination import Page, paginate
from mockserver.core.requests import ImageRequest, VideoRequest
from mockserver.core.sizes import resolve_size
from mockserver.ids import IdSource
from mockserver.settings import Settings
from mockserver.store import Store

RUNNING = frozenset({JobStatus.PENDING, JobStatus.PROCESSING})

KIND = "generation"
DUE = "due"
MAX_SEED = 4_294_967_295
# Processing seconds per second of video, by resolution (inferred; Seedance renders take ~1 minute).
VIDEO_SECONDS_PER_SECOND = {"480p": 4.0, "720p": 7.0, "1080p": 12.0}


def _in_seconds(entry: tuple[Any, str]) -> tuple[float, str]:
    """A due entry as stored before its instant was kept in seconds (a datetime then)."""
    at, gen_id = entry
    return (at.timestamp() if isinstance(at, datetime) else at, gen_id)


def _origin(meta: dict[str, Any]) -> dict[str, Any]:
    """Who created a generation and through which base URL (for usage rows and later payloads)."""
    return {"api_key_id": meta.get("api_key_id"), "base_url": meta.get("base_url")}


class Generations:
    """The generation service; every method takes the team and that team's ``now``."""

    def __init__(
        self,
        store: Store,
        ids: IdSource,
        settings: Settings,
        catalogue: Catalogue,
        ledger: Ledger,
        files: Files,
        *,
        characters: Characters | None = None,
    ) -> None:
        self.store = store
        self.ids = ids
        self.settings = settings
        self.catalogue = catalogue
        self.ledger = ledger
        self.files = files
        self.characters = characters
        self.due = DueQueue(store, DUE, normalize=_in_seconds)
        self.on_create: list[Callable[[Team, Generation], None]] = []
        self.on_terminal: list[Callable[[Team, Generation, datetime], None]] = []

    # --- validation and pricing (shared by estimate and create) -----------------------------------

    def _check_reference(self, team: Team, value: str, param: str, now: datetime) -> str:
        """A ``file_`` id owned by the team (and not expired), or a URL that passes the SSRF rules."""
        if value.startswith("file_"):
            if self.files.find(team, value, now) is None:
                raise UnknownReferenceError(param=param, id=value)
            return value
        return ssrf.check_url(value, param=param)

    def _ready_character(self, team: Team, character_id: str, now: datetime) -> str:
        """The team's ``ready`` character (400 ``character_not_ready`` otherwise; unknown or another team's: 404)."""
        if self.characters is None:
            raise ResourceNotFoundError(param="character_id", kind="character", id=character_id)
        return self.characters.require_ready(team, character_id, now).id

    def _character_refs(self, team: Team, character_id: str, meta: dict[str, Any]) -> list[str]:
        assert self.characters is not None
        character = self.characters.require_ready(team, character_id, meta["now"])
        base = meta.get("base_url") or f"http://{self.settings.host}:{self.settings.port}"
        return self.characters.ref_urls(character, base, meta["now"])

    def _check_webhook_url(self, url: str | None) -> None:
        if url is not None:
            ssrf.check_url(url, param="webhook_url", allow_http_loopback=self.settings.webhook_allow_http_loopback)

    def _image_plan(self, team: Team, req: ImageRequest, version: str, now: datetime) -> dict[str, Any]:
        width, height, preset = resolve_size(req.size, req.width, req.height)
        refs = req.reference_image_urls or []
        if req.character_id is not None and refs:
            raise MutuallyExclusiveInputError(param="character_id")
        character_id = None
        if req.character_id is not None:
            character_id = self._ready_character(team, req.character_id, now)
        loras = None
        if req.lora_id is not None:
            lora = self.catalogue.find("image", req.lora_id, team.id)
            if lora is None:
                raise UnknownReferenceError(param="lora_id", id=req.lora_id)
            loras = [{"id": lora.id, "name": lora.name}]
        checked = [self._check_reference(team, ref, f"reference_image_urls[{i}]", now) for i, ref in enumerate(refs)]
        self._check_webhook_url(req.webhook_url)
        count = req.count or 1
        cost = pricing.image_cost(version, count=count, enhance_prompt=bool(req.enhance_prompt))
        return {
            "cost": cost,
            "width": width,
            "height": height,
            "size_preset": preset,
            "image_count": count,
            "loras": loras,
            "reference_image_urls": checked or None,
            "character_id": character_id,
            "inference_type": "i2i" if checked or character_id else "t2i",
        }

    def _video_plan(self, team: Team, req: VideoRequest, version: str, now: datetime) -> dict[str, Any]:
        lora = self.catalogue.find("video", req.video_lora_id, team.id)
        if lora is None:
            raise UnknownReferenceError(param="video_lora_id", id=req.video_lora_id)
        if req.last_frame_url is not None and req.first_frame_url is None:
            # Not stated upstream (reference §2.2); interpolation needs a first frame (inferred).
            raise MissingFieldError("first_frame_url is required when last_frame_url is set.", param="first_frame_url")
        frames = {
            name: self._check_reference(team, value, name, now)
            for name, value in (("first_frame_url", req.first_frame_url), ("last_frame_url", req.last_frame_url))
            if value is not None
        }
        self._check_webhook_url(req.webhook_url)
        resolution = req.resolution or lora.fields.get("default_resolution", "720p")
        duration = req.duration or lora.fields.get("default_duration", 5)
        return {
            "cost": pricing.video_cost(version, resolution=resolution, duration=duration),
            "video_resolution": resolution,
            "video_ratio": req.ratio or lora.fields.get("default_ratio", "16:9"),
            "video_duration": duration,
            "video_camera_fixed": req.camera_fixed,
            "watermark": req.watermark,
            "loras": [{"id": lora.id, "name": lora.name}],
            "frames": frames,
            "inference_type": "i2v" if frames else "t2v",
        }

    def estimate_image(self, team: Team, req: ImageRequest, version: str, now: datetime) -> Cost:
        cost: Cost = self._image_plan(team, req, version, now)["cost"]
        return cost

    def estimate_video(self, team: Team, req: VideoRequest, version: str, now: datetime) -> Cost:
        cost: Cost = self._video_plan(team, req, version, now)["cost"]
        return cost

    # --- create -------------------------------------------------------------------------------------

    def _seconds(self, team: Team, low: float, high: float) -> float:
        return self.ids.randint(int(low * 1000), int(high * 1000), scope=team.id) / 1000.0

    def _timeline(self, team: Team, kind: str, plan: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
        s = self.settings
        if kind == "image":
            pending = s.image_pending_seconds
            if pending is None:
                pending = self._seconds(team, 1, 3)
            processing = s.image_processing_seconds
            if processing is None:
                processing = self._seconds(team, 9, 27) * (1 + 0.25 * (plan["image_count"] - 1))
        else:
            pending = s.video_pending_seconds
            if pending is None:
                pending = self._seconds(team, 2, 6)
            processing = s.video_processing_seconds
            if processing is None:
                per_second = VIDEO_SECONDS_PER_SECOND[plan["video_resolution"]]
                processing = (20 + plan["video_duration"] * per_second) * self._seconds(team, 0.85, 1.15)
        speed = s.generation_speed
        started = now + timedelta(seconds=pending / speed)
        return started, started + timedelta(seconds=processing / speed)

    def _create(
        self, team: Team, kind: str, prompt: str, seed: int | None, plan: dict[str, Any], meta: dict[str, Any]
    ) -> Generation:
        now: datetime = meta["now"]
        if seed is None or seed == -1:
            seed = self.ids.randint(0, MAX_SEED, scope=team.id)
        # The default timeline is drawn even under a scenario, so a scripted outcome never shifts later ids.
        step: scenarios.Step | None = meta.get("scenario")
        started, finished = scenarios.timeline(step, *self._timeline(team, kind, plan, now))
        outcome, error_message = scenarios.terminal(step)
        prefix = "img" if kind == "image" else "vid"
        gen = Generation(
            id=self.ids.new(prefix, at=now, scope=team.id),
            team_id=team.id,
            media_type=kind,
            prompt=prompt,
            created_at=now,
            started_at=started,
            finish_at=finished,
            outcome=outcome,
            error_message=error_message,
            cost=plan.pop("cost"),
            aurous_version=meta["version"],
            creation_request_id=meta["request_id"],
            inference_type=plan.pop("inference_type"),
            seed=seed,
            params={**plan, **meta["params"], **scenarios.recorded(step)},
            webhook_url=meta["webhook_url"],
        )
        with self.store.transaction():
            self.ledger.hold(team, gen, now)
            self.store.put(KIND, gen.id, gen, owner=team.id)
            self._schedule(team, gen)
        for listener in self.on_create:
            listener(team, gen)
        return gen

    def create_image(self, team: Team, req: ImageRequest, meta: dict[str, Any]) -> Generation:
        """``meta``: ``now``, ``version``, ``request_id``, optional ``scenario`` (a step). 402 before any row exists."""
        plan = self._image_plan(team, req, meta["version"], meta["now"])
        if plan["character_id"] is not None:  # the generation shows the refs it was dispatched with
            plan["reference_image_urls"] = self._character_refs(team, plan["character_id"], meta)
        params = {
            "negative_prompt": req.negative_prompt,
            "cfg_rescale": req.cfg_rescale if req.cfg_rescale is not None else 0,
            "denoise_strength": req.denoise_strength,
            "steps": req.steps,
            "guidance_scale": req.guidance_scale,
        }
        meta = {**meta, "params": {**params, **_origin(meta)}, "webhook_url": req.webhook_url}
        return self._create(team, "image", req.prompt, req.seed, plan, meta)

    def create_video(self, team: Team, req: VideoRequest, meta: dict[str, Any]) -> Generation:
        plan = self._video_plan(team, req, meta["version"], meta["now"])
        meta = {**meta, "params": _origin(meta), "webhook_url": req.webhook_url}
        return self._create(team, "video", req.prompt or "", req.seed, plan, meta)

    # --- settlement on the clock ----------------------------------------------------------------------

    def _schedule(self, team: Team, gen: Generation) -> None:
        # Seconds, not datetimes: a shared store pickles the chunk again on every create, and a float pickles far
        # faster than a datetime (docs/redis-store.md).
        self.due.push(team.id, (gen.finish_at.timestamp(), gen.id))

    def settle_due(self, team: Team, now: datetime) -> None:
        """Commit or release the holds of every generation of the team that finished by ``now``."""
        at = now.timestamp()
        next_at = self.due.next_at(team.id)
        if next_at is None or next_at > at:
            return
        with self.store.transaction():  # popped again inside: another request or worker may have settled them
            for _, gen_id in self.due.pop_due(team.id, at):
                gen = self.store.get(KIND, gen_id)
                if gen is not None and not gen.settled:
                    self._settle(team, gen, gen.finish_at)

    def _settle(self, team: Team, gen: Generation, at: datetime) -> None:
        """Commit or release the hold once; a generation is never settled twice (its listeners fire once)."""
        if gen.settled:
            return
        gen.settled = True
        if gen.status_at(at) is JobStatus.SUCCEEDED:
            self.ledger.commit(team, gen, at)
        else:
            self.ledger.release(team, gen, at)
        self.store.put(KIND, gen.id, gen, owner=team.id)
        for listener in self.on_terminal:
            listener(team, gen, at)

    # --- read, list, cancel ---------------------------------------------------------------------------

    def get(self, team: Team, gen_id: str) -> Generation:
        gen: Generation | None = self.store.get(KIND, gen_id)
        if gen is None or gen.team_id != team.id:
            raise ResourceNotFoundError(kind="generation", id=gen_id)
        return gen

    def find(self, gen_id: str) -> Generation | None:
        """A generation by id regardless of team (output URLs are readable with a token alone)."""
        gen: Generation | None = self.store.get(KIND, gen_id)
        return gen

    def running(self, team: Team, gen_id: str, now: datetime) -> bool:
        """Whether the team's generation is still pending or processing at ``now`` (a forgotten one is not)."""
        gen = self.find(gen_id)
        return gen is not None and gen.team_id == team.id and gen.status_at(now) in RUNNING

    def list_generations(
        self, team: Team, *, limit: int, starting_after: str | None, ending_before: str | None
    ) -> Page[Generation]:
        rows: list[Generation] = self.store.values(KIND, owner=team.id)
        rows.reverse()
        return paginate(rows, limit=limit, starting_after=starting_after, ending_before=ending_before)

    def cancel(self, team: Team, gen_id: str, now: datetime) -> Generation:
        """pending/processing → cancelled (hold released); cancelled → no-op; other terminals → 400.

        A generation already settled is terminal whatever ``now`` says: ``now`` was read when the request began,
        and the team's clock may have moved (and settled it) while the request waited, e.g. under ``latency``.
        """
        with self.store.transaction():
            gen = self.get(team, gen_id)
            status = gen.status_at(max(now, gen.finish_at) if gen.settled else now)
            if status is JobStatus.CANCELLED:
                return gen
            if status.terminal:
                raise GenerationNotCancellableError(id=gen.id, status=status.value)
            gen.cancelled_at = now
            self._settle(team, gen, now)
            return gen

"""Handlers for images and videos: create, estimate, get, list, cancel, and the generation resource."""

from __future__ import annotations

import functools
import threading
from datetime import datetime
from typing import Any

import orjson
from starlette.datastructures import URL
from starlette.responses import Response

from mockserver.api.pipeline import Ctx, json_response, page_response, raw_json_response
from mockserver.clock import rfc3339, rfc3339_or_none, shift, unix_seconds
from mockserver.core import outputs, payload
from mockserver.core.errors import InvalidFormatError, ValueOutOfRangeError
from mockserver.core.models import Generation, JobStatus
from mockserver.core.requests import ImageRequest, VideoRequest
from mockserver.settings import Settings

V11_ONLY = (JobStatus.EXPIRED, JobStatus.MODERATION_REJECTED)


def base_url(ctx: Ctx) -> str:
    """Output URLs point at the configured public URL, or else at the URL the client called."""
    configured = ctx.emulator.settings.public_url
    if configured:
        return configured.rstrip("/")
    scope = ctx.request.scope
    server = scope.get("server")
    return _origin(scope.get("scheme", "http"), ctx.headers.get(b"host"), None if server is None else tuple(server))


@functools.lru_cache(maxsize=256)
def _origin(scheme: str, host: bytes | None, server: tuple[str, int] | None) -> str:
    """``scheme://netloc`` as Starlette's ``request.url`` has it for a request with these three parts.

    Cached: building the whole URL cost every poll about 5 µs (bench/README.md), and its scheme and netloc
    depend on nothing else, so a client that always calls the same host pays for it once.
    """
    scope = {"scheme": scheme, "server": server, "path": "/", "headers": [] if host is None else [(b"host", host)]}
    url = URL(scope=scope)
    return f"{url.scheme}://{url.netloc}"


def token_expiry(settings: Settings, now: datetime) -> int:
    """The expiry (Unix seconds) of the output tokens minted at ``now``."""
    return unix_seconds(now + shift(settings.output_token_ttl_seconds))


def output_token(settings: Settings, gen: Generation, index: str, now: datetime) -> str:
    return outputs.mint(settings.signing_key, gen.id, index, token_expiry(settings, now))


def wire_status(gen: Generation, now: datetime, settings: Settings) -> JobStatus:
    status = gen.status_at(now)
    if status in V11_ONLY and not settings.emit_v11_statuses:
        return JobStatus.FAILED  # v1.0 folds the guide-page statuses into `failed` (reference §3.1 P0-4)
    return status


def render(gen: Generation, now: datetime, base: str, settings: Settings) -> dict[str, Any]:
    """The GenerationResponse of reference §3, every key present."""
    status = wire_status(gen, now, settings)
    completed = gen.completed_at(now)
    p = gen.params
    image = gen.media_type == "image"
    output_urls = output_video_url = None
    if status is JobStatus.SUCCEEDED:
        if image:
            output_urls = [
                f"{base}/v1/images/{gen.id}/output/{i}?token={output_token(settings, gen, str(i), now)}"
                for i in range(p["image_count"])
            ]
        else:
            output_video_url = f"{base}/v1/videos/{gen.id}/output?token={output_token(settings, gen, 'video', now)}"
    # Terminal generations show what was charged: nothing unless they succeeded (inferred).
    cost = gen.cost.wire()
    if status.terminal and status is not JobStatus.SUCCEEDED:
        cost = {**cost, "amount": 0, "breakdown": {"base": 0, "enhance": 0}}
    duration_ms = None
    if completed is not None and completed > gen.started_at:
        duration_ms = int((completed - gen.started_at).total_seconds() * 1000)
    frames = p.get("frames", {})
    return {
        "object": "inference",
        "id": gen.id,
        "status": status.value,
        "prompt": gen.prompt,
        "created_at": rfc3339(gen.created_at),
        "media_type": gen.media_type,
        "negative_prompt": p.get("negative_prompt"),
        "output_urls": output_urls,
        "output_video_url": output_video_url,
        "reference_image_urls": p.get("reference_image_urls") if image else (list(frames.values()) or None),
        "error_message": gen.error_message if status is JobStatus.FAILED else None,
        "duration_ms": duration_ms,
        "cost": cost,
        "width": p.get("width"),
        "height": p.get("height"),
        "image_count": p.get("image_count"),
        "size_preset": p.get("size_preset"),
        "inference_type": gen.inference_type,
        "cfg_rescale": p.get("cfg_rescale"),
        "denoise_strength": p.get("denoise_strength"),
        "seed": gen.seed,
        "video_duration": p.get("video_duration"),
        "video_resolution": p.get("video_resolution"),
        "video_ratio": p.get("video_ratio"),
        "video_camera_fixed": p.get("video_camera_fixed"),
        "character_id": p.get("character_id"),
        "loras": p.get("loras"),
        "aurous_version": gen.aurous_version,
        "creation_request_id": gen.creation_request_id,
        "completed_at": rfc3339_or_none(completed),
    }


RENDERED_KEPT = 4096  # bodies kept by reply_body: about 4 MB; far more generations than a CI fleet polls at once
_rendered: dict[str, tuple[Generation, tuple[Any, ...], bytes]] = {}
_rendering = threading.Lock()


def reply_body(gen: Generation, now: datetime, base: str, settings: Settings) -> bytes:
    """``render`` as JSON bytes, re-used while nothing it depends on has changed.

    A client polls the same generation many times (every 100 ms in a CI fleet) and gets the same answer until
    its status moves, and a finished image's token expiry moves once a second; rendering was a quarter of a
    poll's CPU (bench/README.md). So the last bodies are kept, each with the record object it was rendered
    from (a record restored from a snapshot, re-created by a reset, or read from a shared store is another
    object and is rendered afresh) and the inputs that vary: the status, the cancellation, the origin, the
    token expiry of a succeeded generation, and the settings the rendering reads. The oldest go first.
    """
    status = wire_status(gen, now, settings)
    expires = token_expiry(settings, now) if status is JobStatus.SUCCEEDED else None
    # The status as its string: a key of atomic values only is a tuple the collector stops walking at its first look.
    key = (status.value, gen.cancelled_at, base, expires, settings.signing_key)
    cached = _rendered.get(gen.id)
    if cached is not None and cached[0] is gen and cached[1] == key:
        return cached[2]
    body = payload.kept(orjson.dumps(render(gen, now, base, settings)))
    with _rendering:  # apps in several threads of one process (tests) share the bodies
        _rendered.pop(gen.id, None)  # re-inserted last: the dict's order is the order of eviction
        _rendered[gen.id] = (gen, key, body)
        if len(_rendered) > RENDERED_KEPT:
            del _rendered[next(iter(_rendered))]
    return body


def _reply(ctx: Ctx, gen: Generation, status: int = 200) -> Response:
    return raw_json_response(reply_body(gen, ctx.now, base_url(ctx), ctx.emulator.settings), status)


def _meta(ctx: Ctx) -> dict[str, Any]:
    return {
        "now": ctx.now,
        "version": ctx.version,
        "request_id": ctx.request_id,
        "api_key_id": ctx.key.id,
        "base_url": base_url(ctx),  # later payloads (webhooks) render output URLs against it
        "scenario": ctx.scenario,  # a generation- or webhook-level outcome (api.scenarios)
    }


def _estimate(amount: dict[str, Any]) -> Response:
    return json_response(
        {"object": "estimate", "estimated_cost": {k: amount[k] for k in ("amount", "breakdown")}, "currency": "credit"}
    )


async def create_image(ctx: Ctx) -> Response:
    req = await ctx.parse(ImageRequest)
    return _reply(ctx, ctx.emulator.generations.create_image(ctx.team, req, _meta(ctx)), 201)


async def create_video(ctx: Ctx) -> Response:
    req = await ctx.parse(VideoRequest)
    return _reply(ctx, ctx.emulator.generations.create_video(ctx.team, req, _meta(ctx)), 201)


def still_running(ctx: Ctx, gen_id: str) -> bool:
    """Whether a generation a create made is still pending or processing (``Operation.running``)."""
    return ctx.emulator.generations.running(ctx.team, gen_id, ctx.now)


async def estimate_image(ctx: Ctx) -> Response:
    req = await ctx.parse(ImageRequest)
    return _estimate(ctx.emulator.generations.estimate_image(ctx.team, req, ctx.version, ctx.now).wire())


async def estimate_video(ctx: Ctx) -> Response:
    req = await ctx.parse(VideoRequest)
    return _estimate(ctx.emulator.generations.estimate_video(ctx.team, req, ctx.version, ctx.now).wire())


async def get_generation(ctx: Ctx) -> Response:
    return _reply(ctx, ctx.emulator.generations.get(ctx.team, ctx.path("id")))


async def get_video(ctx: Ctx) -> Response:
    """Inferred alias of ``getGeneration`` for ``vid_`` ids (reference §2.2)."""
    return await get_generation(ctx)


async def cancel_generation(ctx: Ctx) -> Response:
    return _reply(ctx, ctx.emulator.generations.cancel(ctx.team, ctx.path("id"), ctx.now))


def query_int(ctx: Ctx, name: str, default: int, low: int, high: int) -> int:
    raw = ctx.request.query_params.get(name)
    if raw is None:
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 12:
        raise InvalidFormatError(f"{name} must be an integer.", param=name)
    value = int(raw)
    if not low <= value <= high:
        raise ValueOutOfRangeError(f"{name} must be between {low} and {high}.", param=name)
    return value


async def list_generations(ctx: Ctx) -> Response:
    query = ctx.request.query_params
    limit = query_int(ctx, "limit", 20, 1, 100)
    page = ctx.emulator.generations.list_generations(
        ctx.team, limit=limit, starting_after=query.get("starting_after"), ending_before=query.get("ending_before")
    )
    base, settings = base_url(ctx), ctx.emulator.settings
    return page_response(page, lambda gen: render(gen, ctx.now, base, settings))

"""Output proxies: real PNG and MP4 bytes behind signed URLs, Range requests, 410 after retention.

These routes are readable with the signed ``?token=`` alone (or the owning team's API key), so they
do not go through the authenticated pipeline. Bytes come from the media cache as files, so
Starlette's ``FileResponse`` answers ``Range`` with 206/``Content-Range`` and the second download of
the same output costs no encoding.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response
from starlette.types import Receive, Scope, Send

from mockserver.api.errors import error_response
from mockserver.api.headers import request_headers
from mockserver.api.pipeline import api_key_from, request_id_of
from mockserver.clock import unix_seconds
from mockserver.core import outputs
from mockserver.core.emulator import Emulator
from mockserver.core.errors import (
    DomainError,
    InvalidApiKeyError,
    InvalidFormatError,
    MissingApiKeyError,
    OutputExpiredError,
    OutputNotAvailableError,
    ResourceNotFoundError,
)
from mockserver.core.models import Generation, JobStatus
from mockserver.core.scenarios import output_ttl
from mockserver.media import video_frame_size

BAD_TOKEN = "The output token is invalid or has expired."


def _authorize(request: Request, emulator: Emulator, gen: Generation, index: str, now: datetime) -> bool:
    """A valid token for this output, or the owning team's key; another team's key sees a 404.

    Returns True when the only credential is an authentic token that has expired: such a request
    still learns that the output itself expired (410), but nothing else.
    """
    token = request.query_params.get("token")
    expires = None
    if token is not None:
        expires = outputs.authentic_until(emulator.settings.signing_key, token, gen.id, index)
        if expires is not None and expires > unix_seconds(now):
            return False
    raw = api_key_from(request_headers(request.scope))
    if raw:
        team, _ = emulator.accounts.authenticate(raw, provision=False)
        if team.id != gen.team_id:
            raise ResourceNotFoundError(kind="generation", id=gen.id)
        return False
    if expires is not None:
        return True
    if token is not None:
        raise InvalidApiKeyError(BAD_TOKEN)
    if not emulator.settings.anonymous_outputs:
        raise MissingApiKeyError("Send the signed ?token= of the output URL or an X-Api-Key.")
    return False


def _servable(emulator: Emulator, request: Request, gen_id: str, index: str, kind: str) -> tuple[Generation, datetime]:
    gen = emulator.generations.find(gen_id)
    if gen is None or gen.media_type != kind:
        raise ResourceNotFoundError(kind="generation", id=gen_id)
    team = emulator.accounts.team(gen.team_id)
    now = emulator.accounts.now(team)
    stale_token = _authorize(request, emulator, gen, index, now)
    emulator.generations.settle_due(team, now)
    status = gen.status_at(now)
    if status is not JobStatus.SUCCEEDED:
        raise OutputNotAvailableError(id=gen.id, status=status.value)
    completed = gen.completed_at(now)
    settings = emulator.settings
    ttl = settings.output_ttl_image_seconds if kind == "image" else settings.output_ttl_video_seconds
    ttl = output_ttl(gen.params, ttl)  # scenario expire_early
    if completed is not None and now >= completed + timedelta(seconds=ttl):
        raise OutputExpiredError(id=gen.id)
    if stale_token:
        raise InvalidApiKeyError(BAD_TOKEN)
    return gen, now


def _serve(request: Request, path: Path, media_type: str) -> Response:
    """The file, honouring ``Range`` like Starlette does, but in the envelope for unsatisfiable ranges.

    A range Starlette cannot parse (another unit, ``bytes=5-2``) is ignored and the whole file is sent,
    as RFC 9110 §14.2 requires, instead of Starlette's plain-text 400.
    """
    headers = {"Cache-Control": "private, max-age=86400"}
    header = request.headers.get("range")
    if header is None:
        return FileResponse(path, media_type=media_type, headers=headers)
    size = path.stat().st_size
    try:
        FileResponse._parse_range_header(header, size)  # Starlette's own parser, so both agree
    except RangeNotSatisfiable:
        error = RangeNotSatisfiableError(size=size)
        error.headers["Content-Range"] = f"bytes */{size}"
        return error_response(error, request_id_of(request))
    except MalformedRangeHeader:
        return _WholeFileResponse(path, media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


class _WholeFileResponse(FileResponse):
    """A FileResponse that does not see the request's ``Range`` header."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name.lower() != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)


class RangeNotSatisfiableError(InvalidFormatError):
    """416: standard HTTP for a range beyond the file (inferred, reference §2.2)."""

    code = "value_out_of_range"
    status = 416
    message = "The requested range is not satisfiable (size {size})."


async def get_image_output(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    try:
        raw_index = str(request.path_params["index"])
        if not raw_index.isdigit() or len(raw_index) > 6:
            raise InvalidFormatError("index must be a non-negative integer.", param="index")
        gen, _ = _servable(emulator, request, str(request.path_params["id"]), raw_index, "image")
        index = int(raw_index)
        if index >= gen.params["image_count"]:
            raise ResourceNotFoundError(kind="output", id=f"{gen.id}/output/{index}")
        p = gen.params
        path = await run_in_threadpool(
            emulator.media.image, width=p["width"], height=p["height"], seed=gen.seed + index, prompt=gen.prompt
        )
    except DomainError as error:
        return error_response(error, request_id_of(request))
    return _serve(request, path, "image/png")


async def get_video_output(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    try:
        gen, _ = _servable(emulator, request, str(request.path_params["id"]), "video", "video")
        p = gen.params
        width, height = video_frame_size(p["video_resolution"], p["video_ratio"])
        # Encoding takes seconds: keep it off the event loop so other requests are not stalled.
        path = await run_in_threadpool(
            emulator.media.video,
            width=width,
            height=height,
            duration_s=p["video_duration"],
            seed=gen.seed,
            prompt=gen.prompt,
        )
    except DomainError as error:
        return error_response(error, request_id_of(request))
    return _serve(request, path, "video/mp4")

"""Handlers for ``/v1/characters``: upload tickets and their signed PUT, CRUD, synthesis runs and the ref images.

The PUT of an upload (``/_storage/uploads/{id}``) and the ref images (``/_storage/characters/{id}/refs/{key}``)
are emulator plumbing standing in for the vendor's storage: authorized by their signature alone, not in the spec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from mockserver.api.errors import error_response
from mockserver.api.generations import base_url, query_int
from mockserver.api.pipeline import Ctx, json_response, page_response, request_id_of, validate
from mockserver.clock import rfc3339, unix_seconds
from mockserver.core._character_records import (
    POSES,
    UPDATABLE,
    Attributes,
    Character,
    CharacterStatus,
    ClassifyRequest,
    CreateCharacterRequest,
    RegenerateRequest,
    ResynthesizeRequest,
    UpdateCharacterRequest,
    UploadInitRequest,
)
from mockserver.core.characters import BAD_POSE, MAX_UPLOAD_BYTES, REF_URL_TTL, ref_url
from mockserver.core.emulator import Emulator
from mockserver.core.errors import (
    DomainError,
    InvalidFormatError,
    InvalidRequestStateError,
    ResourceNotFoundError,
    TooManyRequestsError,
)
from mockserver.settings import Settings

POST_BUCKET, SYNTH_BUCKET = "characters_post", "characters_synthesize"
REF_SIDE = 1024
STATUSES = tuple(status.value for status in CharacterStatus)
BAD_STATUS = "status must be one of " + ", ".join(STATUSES) + "."
NOT_UPDATABLE = "{field} cannot be updated; only name and attributes are mutable."


def render(character: Character, now: datetime, base: str, settings: Settings) -> dict[str, Any]:
    """The character of reference §2.6, every key present; ref URLs are signed for ~24 h on every read."""
    view = character.view(now)
    expires = unix_seconds(now + REF_URL_TTL)
    return {
        "id": character.id,
        "object": "character",
        "name": character.name,
        "status": view.status.value,
        "refs": [
            {"pose": ref.pose, "url": ref_url(settings.signing_key, base, character.id, ref.key, expires)}
            for ref in view.refs
        ],
        "created_at": rfc3339(character.created_at),
        "updated_at": rfc3339(view.updated_at),
        "attributes": character.attributes,
        "error_message": view.error_message,
        "aurous_version": character.aurous_version,
        "client_reference_id": character.client_reference_id,
    }


def payload_base(emulator: Emulator, character: Character) -> str:
    """For webhook payloads: the configured public URL, else the URL the character was created through."""
    settings = emulator.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return character.base_url or f"http://{settings.host}:{settings.port}"


def _reply(ctx: Ctx, character: Character, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(render(character, ctx.now, base_url(ctx), ctx.emulator.settings), status, headers)


def _meta(ctx: Ctx) -> dict[str, Any]:
    return {"now": ctx.now, "version": ctx.version, "base_url": base_url(ctx), "scenario": ctx.scenario}


def _check_attributes(attributes: dict[str, Any] | None) -> None:
    """The vendor's example keys must have their documented types; other keys are free-form."""
    if attributes is not None:
        validate(Attributes, attributes, prefix="attributes")


# --- upload tickets ---------------------------------------------------------------------------------------


async def init_character_upload(ctx: Ctx) -> Response:
    req = await ctx.parse(UploadInitRequest)
    characters = ctx.emulator.characters
    ticket = characters.init_upload(ctx.team, req, ctx.now)
    return json_response(
        {
            "upload_id": ticket.id,
            "upload_url": characters.upload_url(base_url(ctx), ticket),
            "upload_headers": {"Content-Type": ticket.content_type},
            "expires_at": rfc3339(ticket.expires_at),
        }
    )


async def classify_character_upload(ctx: Ctx) -> Response:
    req = await ctx.parse(ClassifyRequest)
    ticket = ctx.emulator.characters.classify(ctx.team, req.upload_id, ctx.now)
    return json_response({"upload_id": ticket.id, "pose": ticket.pose, "confidence": ticket.confidence})


async def _limited_body(request: Request) -> bytes:
    """At most one byte over the limit is read: ``inspect_image`` then answers the documented 400."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            break
    return b"".join(chunks)


async def put_character_upload(request: Request) -> Response:
    """``PUT`` of the raw bytes to a ticket's signed URL: no API key, the signature is the credential."""
    emulator: Emulator = request.app.state.emulator
    upload_id = str(request.path_params["id"])
    try:
        characters = emulator.characters
        ticket = characters.find_upload(upload_id)
        if ticket is None:
            raise ResourceNotFoundError(kind="upload", id=upload_id)
        now = emulator.accounts.now(emulator.accounts.team(ticket.team_id))
        signature = request.query_params.get("signature", "")
        characters.authorize_upload(ticket, signature, now)
        data = await _limited_body(request)
        characters.receive_upload(ticket, data)
    except DomainError as error:
        return error_response(error, request_id_of(request))
    finally:
        await request.close()
    return json_response({"upload_id": ticket.id, "content_type": ticket.content_type, "size_bytes": len(data)})


# --- characters ---------------------------------------------------------------------------------------


def _draw(ctx: Ctx, bucket: str) -> dict[str, str]:
    """One token from ``bucket``, as the pipeline draws it, with the rate-limit headers to send."""
    decision = ctx.emulator.limiter.take(ctx.team.id, bucket, ctx.now)
    headers = decision.headers()
    if not decision.allowed:
        error = TooManyRequestsError(bucket=bucket, retry_after=decision.retry_after)
        error.headers.update({**headers, "Retry-After": str(decision.retry_after)})
        raise error
    return headers


async def create_character(ctx: Ctx) -> Response:
    """Creation draws from ``characters_synthesize`` with ``generate: true`` and from ``characters_post`` otherwise
    (reference §1.8), so the bucket is chosen here, after the body is read, rather than by the pipeline.
    """
    try:
        data = await ctx.json()
    except DomainError as error:
        error.headers.update(_draw(ctx, POST_BUCKET))
        raise
    headers = _draw(ctx, SYNTH_BUCKET if data.get("generate") is True else POST_BUCKET)
    try:
        req = validate(CreateCharacterRequest, data)
        _check_attributes(req.attributes)
        character = ctx.emulator.characters.create(ctx.team, req, _meta(ctx))
    except DomainError as error:
        error.headers.update(headers)
        raise
    return _reply(ctx, character, 201, headers)


async def list_characters(ctx: Ctx) -> Response:
    """``status`` filters on one state; an unknown value (``cancelled`` included) is 400 ``invalid_format``."""
    query = ctx.request.query_params
    limit = query_int(ctx, "limit", 20, 1, 100)
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidFormatError(BAD_STATUS, param="status")
    page = ctx.emulator.characters.list_characters(
        ctx.team, ctx.now, limit=limit, starting_after=query.get("starting_after"), status=status
    )
    base, settings = base_url(ctx), ctx.emulator.settings
    return page_response(page, lambda character: render(character, ctx.now, base, settings))


async def get_character(ctx: Ctx) -> Response:
    return _reply(ctx, ctx.emulator.characters.get(ctx.team, ctx.path("id")))


async def update_character(ctx: Ctx) -> Response:
    """Any key but ``name`` / ``attributes`` is refused, naming the first one; its code is inferred."""
    data = await ctx.json()
    for key in data:
        if key not in UPDATABLE:
            raise InvalidRequestStateError(NOT_UPDATABLE.format(field=key), param=key)
    req = validate(UpdateCharacterRequest, data)
    _check_attributes(req.attributes)
    return _reply(ctx, ctx.emulator.characters.update(ctx.team, ctx.path("id"), req, ctx.now))


async def delete_character(ctx: Ctx) -> Response:
    character_id = ctx.path("id")
    ctx.emulator.characters.delete(ctx.team, character_id, ctx.now)
    return json_response({"id": character_id, "object": "character", "deleted": True})


async def save_character(ctx: Ctx) -> Response:
    return _reply(ctx, ctx.emulator.characters.save(ctx.team, ctx.path("id"), ctx.now))


def still_synthesizing(ctx: Ctx, character_id: str) -> bool:
    """Whether a character a resynthesis or regeneration started is still synthesizing (``Operation.running``)."""
    return ctx.emulator.characters.synthesizing(ctx.team, character_id, ctx.now)


async def resynthesize_character(ctx: Ctx) -> Response:
    await ctx.parse(ResynthesizeRequest)  # force_all is forward-compatible only: the full set is replaced
    return _reply(ctx, ctx.emulator.characters.resynthesize(ctx.team, ctx.path("id"), _meta(ctx)))


async def regenerate_character_ref(ctx: Ctx) -> Response:
    """A ``pose`` outside the five is ``invalid_request_error`` (the character pages' code), whatever its type."""
    data = await ctx.json()
    if "pose" in data and data["pose"] not in POSES:
        raise InvalidRequestStateError(BAD_POSE, param="pose")
    req = validate(RegenerateRequest, data)  # prompt_override is accepted and, like upstream, unused
    return _reply(ctx, ctx.emulator.characters.regenerate(ctx.team, ctx.path("id"), req.pose, _meta(ctx)))


async def get_character_ref(request: Request) -> Response:
    """A ref image behind its signed URL: uploaded bytes as sent, synthesized poses as PNG from the media cache."""
    emulator: Emulator = request.app.state.emulator
    character_id, key = str(request.path_params["id"]), str(request.path_params["key"])
    try:
        character = emulator.characters.find(character_id)
        if character is None:
            raise ResourceNotFoundError(kind="character ref", id=f"{character_id}/refs/{key}")
        now = emulator.accounts.now(emulator.accounts.team(character.team_id))
        ref = emulator.characters.served_ref(character, key, request.query_params.get("token", ""), now)
        if ref.data is not None:
            return Response(ref.data, media_type=ref.mime_type)
        prompt = f"character {character.id} {ref.pose}"
        path = await run_in_threadpool(
            emulator.media.image, width=REF_SIDE, height=REF_SIDE, seed=ref.seed, prompt=prompt
        )
    except DomainError as error:
        return error_response(error, request_id_of(request))
    return FileResponse(path, media_type="image/png")

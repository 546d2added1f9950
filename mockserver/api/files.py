"""Handlers for ``/v1/files``: multipart upload, read (re-mints the 1 h signed URL), purge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mockserver.api.errors import error_response
from mockserver.api.generations import base_url
from mockserver.api.pipeline import Ctx, json_response, request_id_of
from mockserver.clock import rfc3339, unix_seconds
from mockserver.core import outputs
from mockserver.core.emulator import Emulator
from mockserver.core.errors import DomainError, InvalidFormatError, MissingFieldError, ResourceNotFoundError
from mockserver.core.files import PURPOSES, parse_metadata
from mockserver.core.models import StoredFile

URL_TTL = timedelta(hours=1)


async def _form(ctx: Ctx) -> FormData:
    try:
        return await ctx.request.form(max_files=2, max_fields=20, max_part_size=ctx.emulator.settings.max_upload_bytes)
    except HTTPException as exc:  # python-multipart rejected the body
        raise InvalidFormatError(f"Malformed multipart body: {exc.detail}") from None


async def upload_fingerprint(ctx: Ctx) -> Any:
    """Files replay on "same purpose + metadata" (reference §1.9), not on the bytes."""
    form = await _form(ctx)
    metadata = form.get("metadata")
    try:  # compared as canonical JSON when it parses, so key order does not matter
        parsed: Any = parse_metadata(metadata) if isinstance(metadata, str) else None
    except DomainError:
        parsed = str(metadata)
    return {"purpose": str(form.get("purpose")), "metadata": parsed}


def render(ctx: Ctx, stored: StoredFile) -> dict[str, Any]:
    expires = unix_seconds(min(ctx.now + URL_TTL, stored.expires_at))
    token = outputs.mint(ctx.emulator.settings.signing_key, stored.id, "file", expires)
    return {
        "id": stored.id,
        "object": "file",
        "purpose": stored.purpose,
        "mime_type": stored.mime_type,
        "size_bytes": stored.size_bytes,
        "width_px": stored.width_px,
        "height_px": stored.height_px,
        "url": f"{base_url(ctx)}/_storage/files/{stored.id}?token={token}",
        "expires_at": rfc3339(stored.expires_at),
        "created_at": rfc3339(stored.created_at),
        "metadata": stored.metadata,
    }


async def create_file(ctx: Ctx) -> Response:
    form = await _form(ctx)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise MissingFieldError("Missing required field: file.", param="file")
    purpose = form.get("purpose")
    if purpose is None:
        raise MissingFieldError("Missing required field: purpose.", param="purpose")
    if purpose not in PURPOSES:
        raise InvalidFormatError(f"purpose must be one of {', '.join(PURPOSES)}.", param="purpose")
    metadata_field = form.get("metadata")
    if isinstance(metadata_field, UploadFile):
        raise InvalidFormatError("metadata must be a string holding a JSON object.", param="metadata")
    metadata = parse_metadata(metadata_field)
    data = await upload.read()
    stored = ctx.emulator.files.create(ctx.team, data, str(purpose), metadata, ctx.now)
    return json_response(render(ctx, stored), 201)


async def get_file(ctx: Ctx) -> Response:
    return json_response(render(ctx, ctx.emulator.files.get(ctx.team, ctx.path("id"), ctx.now)))


async def delete_file(ctx: Ctx) -> Response:
    file_id = ctx.path("id")
    ctx.emulator.files.delete(ctx.team, file_id)
    return json_response({"deleted": True, "id": file_id, "object": "file"})


async def file_content(request: Request) -> Response:
    """The signed 1 h ``url`` of a file (emulator plumbing for the vendor's private bucket; not in the spec)."""
    emulator: Emulator = request.app.state.emulator
    file_id = str(request.path_params["id"])
    try:
        stored: StoredFile | None = emulator.store.get("file", file_id)
        if stored is None:
            raise ResourceNotFoundError(kind="file", id=file_id)
        now = emulator.accounts.now(emulator.accounts.team(stored.team_id))
        token = request.query_params.get("token", "")
        if now >= stored.expires_at or not outputs.verify(
            emulator.settings.signing_key, token, stored.id, "file", unix_seconds(now)
        ):
            raise ResourceNotFoundError(kind="file", id=file_id)
    except DomainError as error:
        return error_response(error, request_id_of(request))
    return Response(stored.data, media_type=stored.mime_type)

"""Handlers for ``POST /v1/embeddings`` and ``POST /v1/embeddings/estimate``: parse, call the service, render."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from mockserver.api.pipeline import Ctx, json_response, validate
from mockserver.core.embeddings import EmbeddingRequest, refuse_batch
from mockserver.core.errors import DomainError


async def _request(ctx: Ctx) -> EmbeddingRequest:
    raw = await ctx.json()
    refuse_batch(raw)
    return validate(EmbeddingRequest, raw)


def _tpm_headers(ctx: Ctx, error: DomainError) -> None:
    """The TPM trio on every answer of these routes (sheet §9), errors included (what is left, unchanged)."""
    if not any(name.startswith("X-RateLimit-TPM") for name in error.headers):
        error.headers.update(ctx.emulator.embeddings.tpm_peek(ctx.team, ctx.now).headers("X-RateLimit-TPM"))


async def create_embedding(ctx: Ctx) -> Response:
    try:
        req = await _request(ctx)
        meta: dict[str, Any] = {"api_key_id": ctx.key.id, "request_id": ctx.request_id}
        created = ctx.emulator.embeddings.create(ctx.team, req, ctx.now, meta)
    except DomainError as error:
        _tpm_headers(ctx, error)
        raise
    return json_response(created.body, headers=created.tpm.headers("X-RateLimit-TPM"))


async def estimate_embedding(ctx: Ctx) -> Response:
    """No dispatch, no charge, no hold, no usage row, no TPM debit (sheet §6.3)."""
    req = await _request(ctx)
    return json_response(ctx.emulator.embeddings.estimate(req))

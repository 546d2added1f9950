"""Handlers for ``GET /v1/models`` (the LLM catalogue) and the convenience ``GET /v1/models/{id}`` (sheet §14.22)."""

from __future__ import annotations

from starlette.responses import Response

from mockserver.api.pipeline import Ctx, json_response
from mockserver.core.errors import ResourceNotFoundError


async def list_models(ctx: Ctx) -> Response:
    """Accepts no query, path or body parameters (sheet §7): any sent are ignored."""
    return json_response({"object": "list", "data": [model.wire() for model in ctx.emulator.llm_models.list()]})


async def get_model(ctx: Ctx) -> Response:
    """A row by id or alias; unknown → 404 ``resource_not_found`` (non-vendor convenience for ``models.retrieve``)."""
    model_id = ctx.path("id")
    model = ctx.emulator.llm_models.find(model_id)
    if model is None:
        raise ResourceNotFoundError(kind="model", id=model_id)
    return json_response(model.wire())

"""Serves ``openapi.yaml`` as YAML and JSON (no auth: the vendor publishes its spec openly)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mockserver.api.pipeline import json_response
from mockserver.spec import control_spec_text, spec_document, spec_text


async def openapi_yaml(request: Request) -> Response:
    return Response(spec_text(), media_type="application/yaml")


async def openapi_json(request: Request) -> Response:
    return json_response(spec_document())


async def control_openapi_yaml(request: Request) -> Response:
    """``control-openapi.yaml``: the ``/_mock`` routes (guarded like them by the caller, never authenticated)."""
    return Response(control_spec_text(), media_type="application/yaml")

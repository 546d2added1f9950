"""Legacy routes: ``/v1/generations`` and ``/v1/video-generations`` redirect (308) to their successors."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from mockserver.api.errors import error_response
from mockserver.api.pipeline import request_id_of
from mockserver.core.emulator import Emulator
from mockserver.core.errors import RouteNotFoundError


class AnyPathConvertor(Convertor[str]):
    """Like Starlette's ``path`` but also matching newlines, so odd legacy sub-paths still redirect."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPathConvertor())

SUNSET = "Tue, 04 Aug 2026 00:00:00 GMT"
SUNSET_AT = datetime(2026, 8, 4, tzinfo=UTC)
DOCS_URL = "https://docs.aurous-labs.com/"
SUCCESSORS = {"/v1/generations": "/v1/images", "/v1/video-generations": "/v1/videos"}


def _redirect(location: str, deprecated: str) -> Response:
    return Response(
        status_code=308,
        headers={"Location": location, "Aurous-Deprecated": deprecated, "Sunset": SUNSET},
    )


async def legacy_redirect(request: Request) -> Response:
    """308 to the successor route, keeping the sub-path and query (sub-paths are inferred)."""
    emulator: Emulator = request.app.state.emulator
    path = request.url.path
    if not emulator.settings.legacy_redirects:
        return error_response(RouteNotFoundError(method=request.method, path=path), request_id_of(request))
    for old, new in SUCCESSORS.items():
        if path == old or path.startswith(old + "/"):
            target = new + path[len(old) :]
            break
    query = request.url.query
    # The decoded path may hold any character; a Location header must stay ASCII.
    return _redirect(quote(target, safe="/") + (f"?{query}" if query else ""), "route")


async def docs_redirect(request: Request) -> Response:
    """``/docs`` moved to the docs site; after the Sunset date it answers 404 (reference §1.1)."""
    emulator: Emulator = request.app.state.emulator
    if emulator.clock.now() >= SUNSET_AT:
        return error_response(RouteNotFoundError(method=request.method, path="/docs"), request_id_of(request))
    return _redirect(DOCS_URL, "docs")

"""Legacy routes: ``/v1/generations`` and ``/v1/video-generations`` redirect (308) to their successors until the
Sunset (2026-08-04) on the caller's clock, then answer 404 like ``/docs``."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from mockserver.api.errors import error_response
from mockserver.api.pipeline import caller, passive_rate_headers, request_id_of
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


BUCKETS = {"POST": "images_post", "GET": "get"}  # the successor's rate-limit class (inferred)


def _redirect(location: str, deprecated: str, headers: dict[str, str]) -> Response:
    return Response(
        status_code=308,
        headers={"Location": location, "Aurous-Deprecated": deprecated, "Sunset": SUNSET, **headers},
    )


def _gone(request: Request, path: str, headers: dict[str, str]) -> Response:
    error = RouteNotFoundError(method=request.method, path=path)
    error.headers.update(headers)
    return error_response(error, request_id_of(request))


def _context(request: Request) -> tuple[Emulator, datetime, dict[str, str]]:
    """The emulator, the caller's instant (its team's clock; the base clock without a valid key) and the
    ``X-RateLimit-*`` headers an authenticated caller gets (the rate-limits page: on every response)."""
    emulator: Emulator = request.app.state.emulator
    team = caller(request)
    now = emulator.accounts.now(team) if team is not None else emulator.clock.now()
    return emulator, now, passive_rate_headers(emulator, team, BUCKETS.get(request.method, "get"), now)


def _sunset_passed(emulator: Emulator, now: datetime) -> bool:
    """Past the Sunset instant (on the caller's clock) the redirects are gone: the changelog says the /docs redirect
    "goes away on this date; afterward /docs returns 404", the same deprecation pattern as the legacy routes, so
    they answer 404 too (inferred); ``legacy_after_sunset = "redirect"`` keeps redirecting."""
    return now >= SUNSET_AT and emulator.settings.legacy_after_sunset == "not_found"


async def legacy_redirect(request: Request) -> Response:
    """308 to the successor route, keeping the sub-path and query (sub-paths are inferred), until the Sunset."""
    emulator, now, headers = _context(request)
    path = request.url.path
    if not emulator.settings.legacy_redirects or _sunset_passed(emulator, now):
        return _gone(request, path, headers)
    for old, new in SUCCESSORS.items():
        if path == old or path.startswith(old + "/"):
            target = new + path[len(old) :]
            break
    query = request.url.query
    # The decoded path may hold any character; a Location header must stay ASCII.
    return _redirect(quote(target, safe="/") + (f"?{query}" if query else ""), "route", headers)


async def docs_redirect(request: Request) -> Response:
    """``/docs`` moved to the docs site; after the Sunset date it answers 404 (reference §1.1)."""
    emulator, now, headers = _context(request)
    if _sunset_passed(emulator, now):
        return _gone(request, "/docs", headers)
    return _redirect(DOCS_URL, "docs", headers)

"""The dashboard at ``/_mock/ui``: one HTML shell and its static files, shipped in the package (``mockserver/ui``).

The page holds no data: its script reads the documented control routes (``control-openapi.yaml``) with the key
typed into it (or taken from the URL fragment ``#key=…``, which never reaches the server) and marks its requests
with ``Aurous-Mock-Dashboard``, so its reads never fill the journal it shows. The guard is the control plane's:
off beyond loopback without a token; with a token the shell and its files load (there the token is typed once
and sent as a header by every request), and every route with data needs it. A strict Content-Security-Policy
allows the package's own script only, and the script builds the page with DOM text nodes, never HTML strings.
"""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from mockserver.api import control
from mockserver.api.errors import error_response
from mockserver.api.pipeline import request_id_of
from mockserver.core.errors import AuthenticationError, DomainError, RouteNotFoundError

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
SHELL = UI_DIR / "templates" / "dashboard.html"
STATIC = UI_DIR / "static"
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:{extra}; "
    "media-src 'self'{extra}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _refusal(request: Request) -> DomainError | None:
    """The control plane's guard, except that with a token the shell and its files load without it (no data)."""
    refused = control.refusal(request)
    settings = request.app.state.emulator.settings
    if isinstance(refused, AuthenticationError) and settings.control_plane and settings.control_token is not None:
        return None
    return refused


@functools.cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


@functools.cache
def _assets() -> frozenset[str]:
    """The files the page may load: exactly those shipped, so no path ever leaves the directory."""
    return frozenset(path.name for path in STATIC.iterdir() if path.suffix in MEDIA_TYPES)


def _headers(public_url: str | None) -> dict[str, str]:
    extra = ""
    if public_url:  # output URLs point there: thumbnails and the video player load from it
        parts = urlsplit(public_url)
        extra = f" {parts.scheme}://{parts.netloc}"
    return {
        "Content-Security-Policy": POLICY.format(extra=extra),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


async def dashboard_page(request: Request) -> Response:
    """The shell: the layout and the script tag; everything shown comes from the control plane."""
    refused = _refusal(request)
    if refused is not None:
        return error_response(refused, request_id_of(request))
    headers = _headers(request.app.state.emulator.settings.public_url)
    return Response(_read(SHELL), media_type="text/html; charset=utf-8", headers=headers)


async def dashboard_asset(request: Request) -> Response:
    """One of the page's static files (its script and style sheet)."""
    refused = _refusal(request)
    if refused is not None:
        return error_response(refused, request_id_of(request))
    name = str(request.path_params["name"])
    if name not in _assets():
        return error_response(RouteNotFoundError(method=request.method, path=request.url.path), request_id_of(request))
    path = STATIC / name
    headers = _headers(request.app.state.emulator.settings.public_url)
    return Response(_read(path), media_type=MEDIA_TYPES[path.suffix], headers=headers)

"""``create_app``: wires settings, store, clock and ids into a Starlette application. Wiring only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from mockserver.api.dispatch import DirectRoutes
from mockserver.api.errors import error_response
from mockserver.api.middleware import ConventionsMiddleware
from mockserver.api.pipeline import caller, passive_rate_headers, request_id_of
from mockserver.api.routes import PUBLIC, routes
from mockserver.api.scenarios import install as install_scenarios
from mockserver.api.webhooks import install
from mockserver.clock import Clock
from mockserver.core.emulator import Emulator
from mockserver.core.errors import (
    DomainError,
    InvalidFormatError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RouteNotFoundError,
)
from mockserver.core.shared import StoredPositions, base_clock
from mockserver.ids import IdSource
from mockserver.media import MediaCache, inspect_image
from mockserver.settings import Settings, load_settings
from mockserver.store import Store, open_store
from mockserver.webhooks import HttpxSender, Sender, WebhookDispatcher

UNROUTED_BUCKET = "get"


class _Application(Starlette):
    """Starlette without its outermost layer, ``ServerErrorMiddleware``: :class:`ConventionsMiddleware` answers every
    unhandled error itself (in the envelope, never Starlette's plain-text 500), so that layer only added a frame to
    each request and a wrapper to each ``send``."""

    emulator: Emulator  # also ``state.emulator``; an attribute of its own is read without State's __getattr__

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if not isinstance(stack, ServerErrorMiddleware):  # pragma: no cover - a Starlette that builds it otherwise
            return stack
        return stack.app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 become the upstream envelope (never its plain text)."""
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    error: DomainError
    if exc.status_code == 405:
        error = MethodNotAllowedError(method=method, path=path)
        error.headers.update(exc.headers or {})
    elif exc.status_code == 413:
        error = PayloadTooLargeError(limit=request.app.state.emulator.settings.max_upload_bytes)
    elif exc.status_code == 400:
        error = InvalidFormatError(str(exc.detail))
    else:
        error = RouteNotFoundError(method=method, path=path)
    if exc.status_code in (404, 405):  # an authenticated request's 404 / 405 reports its read bucket (inferred)
        team = caller(request)
        emulator = request.app.state.emulator
        now = emulator.accounts.now(team) if team is not None else emulator.clock.now()
        error.headers.update(passive_rate_headers(emulator, team, UNROUTED_BUCKET, now))
    return error_response(error, request_id_of(request))


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    store: Store | None = None,
    ids: IdSource | None = None,
    sender: Sender | None = None,
) -> Starlette:
    """Build the emulator. Collaborators not given are built from ``settings``; webhooks go through ``sender``.

    Without ``store`` the one ``settings.store`` names is opened here, and closed when the lifespan ends.
    """
    settings = settings or load_settings()
    opened: Store | None = None
    with contextlib.ExitStack() as undo:  # on failure, close what was opened so far
        if store is None:
            store = opened = open_store(settings.store)
            undo.callback(opened.close)
        media = MediaCache(settings.media_cache_dir, max_bytes=settings.media_cache_max_bytes)
        undo.callback(media.close)
        emulator = Emulator(
            settings=settings,
            store=store,
            clock=clock or base_clock(store, settings),
            ids=ids or IdSource(settings.seed, positions=StoredPositions(store) if store.shared else None),
            media=media,
            inspect_image=inspect_image,
        )
        undo.callback(emulator.close)
        install(emulator)
        install_scenarios(emulator, PUBLIC)  # may raise ScenarioFileError (the CLI reports it)
        undo.pop_all()
    sender = sender or HttpxSender(
        max_connections=settings.webhook_max_in_flight, allow_loopback=settings.webhook_allow_http_loopback
    )
    dispatcher = WebhookDispatcher(emulator.webhooks, emulator.accounts, sender, settings, settle=emulator.settle_due)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker = asyncio.create_task(dispatcher.run()) if settings.webhook_background else None
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await dispatcher.aclose()
            emulator.close()
            if opened is not None:
                opened.close()

    table = routes()
    app = _Application(
        lifespan=lifespan,
        routes=table,
        middleware=[
            Middleware(ConventionsMiddleware, emulator=emulator),
            Middleware(DirectRoutes, table=table, on_http_error=_http_error),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.emulator = app.emulator = emulator
    app.state.dispatcher = dispatcher
    return app

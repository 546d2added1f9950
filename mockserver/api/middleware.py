"""ASGI middleware: a request id and the version echo on every response, and no 500 without an envelope."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.api.errors import error_body
from mockserver.api.headers import assign, has
from mockserver.api.scenarios import ConnectionDropped, drop_connection
from mockserver.core.emulator import Emulator
from mockserver.core.errors import InternalError, PayloadTooLargeError
from mockserver.core.versions import HEADER as VERSION_HEADER
from mockserver.core.versions import echo_version

log = logging.getLogger("mockserver")
VERSION_KEY = VERSION_HEADER.lower().encode("latin-1")


class ConventionsMiddleware:
    """Mints ``Aurous-Request-Id`` before routing and stamps it (and ``Aurous-Version``) on every response."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.emulator.ids.new("req", at=self.emulator.clock.now(), scope="req")
        scope.setdefault("state", {})["request_id"] = request_id
        headers = Headers(scope=scope)
        version = echo_version(headers.get(VERSION_HEADER))
        started = False

        async def stamped(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                raw = message.get("headers", [])
                stamps = {"Aurous-Request-Id": request_id}
                if not has(raw, VERSION_KEY):
                    stamps[VERSION_HEADER] = version
                message["headers"] = assign(raw, stamps)
            await send(message)

        limit = self.emulator.settings.max_upload_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._answer(PayloadTooLargeError(limit=limit), request_id, stamped)
            return
        try:
            await self.app(scope, receive, stamped)
        except ConnectionDropped:
            # The scenario `drop`: close the connection unanswered (never a 500 envelope). In process
            # (TestClient, httpx's ASGITransport) there is no connection, so the exception reaches the caller.
            if started or not await drop_connection(receive):
                raise
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await self._answer(InternalError(), request_id, stamped)

    @staticmethod
    async def _answer(error: Any, request_id: str, send: Send) -> None:
        body = orjson.dumps(error_body(error, request_id))
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

"""ASGI middleware: a request id and the version echo on every response, and no 500 without an envelope."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable
from http import HTTPStatus
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.api.errors import error_body
from mockserver.api.headers import STAMPED, VERSION_KEY, assign, has, request_headers, text
from mockserver.api.scenarios import ConnectionDropped, drop_connection
from mockserver.core.emulator import Emulator
from mockserver.core.errors import (
    DomainError,
    HeadersTooLargeError,
    InternalError,
    PayloadTooLargeError,
    UriTooLongError,
)
from mockserver.core.versions import HEADER as VERSION_HEADER
from mockserver.core.versions import echo_version

log = logging.getLogger("mockserver")


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
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        # The server's own receive: a stream that must drop its connection closes it through it. It is a bound
        # method of the server's per-request object, which holds this scope: a reference cycle that only the
        # garbage collector would free, so it goes when the request ends (bench/README: tail latency).
        state["raw_receive"] = receive
        try:
            await self._handle(scope, receive, send, state, request_id)
        finally:
            del state["raw_receive"]

    async def _handle(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any], request_id: str) -> None:
        headers = request_headers(scope)
        version = echo_version(text(headers, VERSION_KEY))
        started = False

        def stamped(message: Message) -> Awaitable[None]:
            # A plain function handing back the server's own awaitable: no coroutine of its own per message.
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                raw = message.get("headers", [])
                if raw is not state.get(STAMPED):  # the pipeline's responses carry both already (api.pipeline)
                    stamps = {"Aurous-Request-Id": request_id}
                    if not has(raw, VERSION_KEY):
                        stamps[VERSION_HEADER] = version
                    message["headers"] = assign(raw, stamps)
            return send(message)

        refused = self._refusal(scope, headers)
        if refused is not None:
            await self._answer(refused, request_id, stamped)
            return
        try:
            await self.app(scope, self._bounded(receive, headers), stamped)
        except PayloadTooLargeError as error:  # a streamed body outgrew the cap where no handler catches it
            if started:
                raise
            await self._answer(error, request_id, stamped)
        except ConnectionDropped:
            # The scenario `drop`: close the connection unanswered (never a 500 envelope). In process
            # (TestClient, httpx's ASGITransport) there is no connection, so the exception reaches the caller.
            if started or not await drop_connection(receive):
                raise
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await self._answer(InternalError(), request_id, stamped)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> DomainError | None:
        """The limits checked before routing: request target, request head, declared body size."""
        settings = self.emulator.settings
        target = len(scope.get("raw_path") or b"") + len(scope["query_string"])
        if target > settings.max_url_bytes:
            return UriTooLongError(limit=settings.max_url_bytes)
        raw = scope["headers"]
        head = sum(map(len, itertools.chain.from_iterable(raw))) + 4 * len(raw)  # name: value\r\n
        if head + target > settings.max_header_bytes:
            return HeadersTooLargeError(limit=settings.max_header_bytes)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > settings.max_upload_bytes:
            return PayloadTooLargeError(limit=settings.max_upload_bytes)
        return None

    def _bounded(self, receive: Receive, headers: dict[bytes, bytes]) -> Receive:
        """``receive``, capped at the upload limit unless the request's framing already bounds its body."""
        return receive if _framed(headers) else _capped(receive, self.emulator.settings.max_upload_bytes)

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


def _framed(headers: dict[bytes, bytes]) -> bool:
    """Whether the request's body is bounded by its framing: a declared ``Content-Length`` (checked against the cap
    before routing), or neither it nor ``Transfer-Encoding``, which in HTTP/1.1 means no body at all."""
    return b"transfer-encoding" not in headers and headers.get(b"content-length", b"0").isdigit()


def _capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :class:`PayloadTooLargeError` once the body outgrows ``limit`` bytes.

    ``Content-Length`` is checked before routing; this bounds chunked bodies too (multipart file parts are
    spooled to disk by Starlette without a limit of their own).
    """
    received = 0

    async def capped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLargeError(limit=limit)
        return message

    return capped


def raw_refusal(emulator: Emulator, error: DomainError) -> bytes:
    """A whole HTTP/1.1 answer in the envelope, for the server's protocol to write when no request reaches the app
    (a malformed or oversized request head); it closes the connection."""
    request_id = emulator.ids.new("req", at=emulator.clock.now(), scope="req")
    body = orjson.dumps(error_body(error, request_id))
    head = [
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        f"aurous-request-id: {request_id}",
        f"{VERSION_HEADER.lower()}: {echo_version(None)}",
    ]
    return "\r\n".join([*head, "", ""]).encode("latin-1") + body

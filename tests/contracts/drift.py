"""Drifted targets for the kit's tests: ASGI wrappers that bend one convention of a conformant emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def rewrite_request(app, matches: Callable[[Scope], bool], rewrite: Callable[[Headers, bytes], tuple[Headers, bytes]]):
    """Requests that ``matches`` reach the app with ``rewrite(headers, body)`` applied."""

    async def drifted(scope, receive, send):
        if scope["type"] != "http" or not matches(scope):
            await app(scope, receive, send)
            return
        headers, body = rewrite(list(scope["headers"]), await _body(receive))
        headers = [(k, v) for k, v in headers if k != b"content-length"] + [(b"content-length", b"%d" % len(body))]
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app({**scope, "headers": headers}, replay, send)

    return drifted


def drop_request_headers(app, *names: bytes):
    """The target never sees these request headers."""
    return rewrite_request(app, lambda scope: True, lambda h, b: ([(k, v) for k, v in h if k.lower() not in names], b))


def rewrite_json_response(app, matches: Callable[[Scope], bool], rewrite: Callable[[Any], Any]):
    """JSON answers to requests that ``matches`` go out as ``rewrite(body)``."""

    async def drifted(scope, receive, send):
        if scope["type"] != "http" or not matches(scope):
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = json.dumps(rewrite(json.loads(b"".join(chunks)))).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", b"%d" % len(body))]})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await app(scope, receive, capture)

    return drifted


def strip_response_headers(app, *names: bytes):
    """The emulator minus some response headers."""

    async def drifted(scope, receive, send):
        async def without(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(k, v) for k, v in message["headers"] if k.lower() not in names]}
            await send(message)

        await app(scope, receive, without)

    return drifted


def post_to(path: str) -> Callable[[Scope], bool]:
    return lambda scope: scope["method"] == "POST" and scope["path"] == path


class Recorder:
    """Records (method, path) of every request that reaches the app."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)

"""A request leaves no reference cycle behind: what it allocated is freed by reference counting, so the garbage
collector has nothing to find and no collection stalls the requests in flight (bench/README: p99 at 32 connections).

The server is played by an object shaped like uvicorn's per-request ``RequestResponseCycle``: it holds the scope,
and the ``receive`` and ``send`` it hands the app are its bound methods. Anything the app keeps in the scope that
leads back to them (``scope["state"]``) closes a cycle only the collector frees.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.types import ASGIApp, Message

from tests.conftest import new_api_key

CHAT_MODEL = "aurous-grow-2.0-pro"
EMBEDDING_MODEL = "aurous-embed-vision-1.0"


class Cycle:
    """One request as uvicorn runs it: the scope and the two callables, bound to this object."""

    def __init__(self, method: str, path: str, key: str, body: bytes = b"") -> None:
        headers = [(b"host", b"testserver"), (b"x-api-key", key.encode())]
        if body:
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        self.body = body
        self.status = 0
        self.chunks: list[bytes] = []

    async def receive(self) -> Message:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    async def run(self, app: ASGIApp) -> tuple[int, Any]:
        await app(self.scope, self.receive, self.send)
        body = b"".join(self.chunks)
        return self.status, orjson.loads(body) if body else None


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Automatic collections off for the test, so only the test's own ``gc.collect()`` finds garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _cyclic_garbage() -> list[Any]:
    """What a full collection finds unreachable (kept for inspection instead of freed)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    return found


async def _requests(app: ASGIApp, key: str) -> list[int]:
    """A create, polls, a cancel, a balance, a list, a chat completion, an embedding and refusals: the statuses."""
    create = orjson.dumps({"prompt": "a lighthouse at dusk", "size": "square"})
    status, created = await Cycle("POST", "/v1/images", key, create).run(app)
    statuses = [status]
    for method, path, body in (
        ("GET", f"/v1/images/{created['id']}", None),
        ("GET", f"/v1/images/{created['id']}", None),
        ("POST", f"/v1/images/{created['id']}/cancel", {}),
        ("GET", "/v1/balance", None),
        ("GET", "/v1/images", None),
        ("POST", "/v1/chat/completions", {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]}),
        ("POST", "/v1/embeddings", {"model": EMBEDDING_MODEL, "input": "hi"}),
        ("POST", "/v1/images", {"prompt": 7}),  # refused by validation
        ("GET", "/nope", None),
    ):
        payload = orjson.dumps(body) if body is not None else b""
        statuses.append((await Cycle(method, path, key, payload).run(app))[0])
    return statuses


def test_requests_leave_no_reference_cycles(app: ASGIApp, collector_off: None) -> None:
    async def scenario() -> tuple[list[int], list[Any]]:
        await _requests(app, new_api_key())  # warm: first-use caches and lazy imports may build cycles once
        gc.collect()  # frees them (what _cyclic_garbage keeps would come back as garbage of the next collection)
        statuses = await _requests(app, new_api_key())
        return statuses, _cyclic_garbage()

    statuses, garbage = asyncio.run(scenario())
    assert statuses == [201, 200, 200, 200, 200, 200, 200, 200, 400, 404]
    cycles = [item for item in garbage if isinstance(item, Cycle)]
    assert not cycles, f"{len(cycles)} requests were freed only by the garbage collector"
    assert not garbage, sorted({type(item).__qualname__ for item in garbage})

"""The emulator's HTTP protocol writes a response's head with its body (``mockserver.server.HeadWithBody``).

The protocol runs as uvicorn runs it, on a real event loop, fed bytes as a connection would feed them; the transport
records what would reach the socket, write by write: one write per whole answer, and a head that never waits
longer than the loop step for a body that comes later (streams), or that never comes (HEAD).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from mockserver.server import BoundedHttpToolsProtocol, HeadWithBody

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Recorded(asyncio.Transport):
    """What the socket would get, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: Any) -> None:
        assert not self.closing, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connect(app: App, loop: asyncio.AbstractEventLoop) -> tuple[BoundedHttpToolsProtocol, Recorded]:
    config = uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning")
    config.load()
    protocol = BoundedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = Recorded()
    protocol.connection_made(transport)
    return protocol, transport


async def steps(count: int = 3) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def whole(body: bytes, *, status: int = 200) -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


GET = b"GET /v1/balance HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("body", [b'{"credits":1}', b"x" * 100_000, b""])
def test_a_whole_answer_is_one_write(body: bytes) -> None:
    async def scenario() -> None:
        protocol, transport = connect(whole(body), asyncio.get_running_loop())
        protocol.data_received(GET)
        await steps()
        assert len(transport.writes) == 1
        head, _, sent = transport.writes[0].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert sent == body

    asyncio.run(scenario())


def test_answers_on_one_connection_keep_their_order() -> None:
    async def scenario() -> None:
        protocol, transport = connect(whole(b"one"), asyncio.get_running_loop())
        for _ in range(3):
            protocol.data_received(GET)
            await steps()
        assert len(transport.writes) == 3
        assert all(write.endswith(b"\r\n\r\none") for write in transport.writes)

    asyncio.run(scenario())


def test_a_stream_head_goes_out_before_its_first_chunk_comes() -> None:
    later = asyncio.Event()

    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await later.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def scenario() -> None:
        protocol, transport = connect(stream, asyncio.get_running_loop())
        protocol.data_received(GET)
        await steps()
        assert len(transport.writes) == 1  # the head alone, while the stream waits
        assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert transport.writes[0].endswith(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in transport.writes[0]
        later.set()
        await steps()
        assert transport.writes[1:] == [b"9\r\ndata: 1\n\n\r\n", b"0\r\n\r\n"]

    asyncio.run(scenario())


@pytest.mark.parametrize("close", [False, True], ids=["kept-alive", "closing"])
def test_a_head_answer_has_no_body_and_its_head_still_goes_out(close: bool) -> None:
    """No body write follows a HEAD answer's head: it goes out at the end of the step, or before the close."""
    connection = b"Connection: close\r\n" if close else b""

    async def scenario() -> None:
        protocol, transport = connect(whole(b"none"), asyncio.get_running_loop())
        protocol.data_received(b"HEAD /v1/balance HTTP/1.1\r\nHost: x\r\n" + connection + b"\r\n")
        await steps()
        assert transport.closing is close
        assert len(transport.writes) == 1
        assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert transport.writes[0].endswith(b"\r\n\r\n")

    asyncio.run(scenario())


def test_a_held_head_is_dropped_when_the_peer_is_gone() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        transport = Recorded()
        writer = HeadWithBody(transport, loop)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.close()  # the connection was lost before the end of the step
        await steps()  # the pending flush neither writes to a closed transport nor raises
        assert transport.writes == []
        writer.flush()
        assert transport.writes == []

    asyncio.run(scenario())


def test_a_continue_goes_out_before_the_body_is_read() -> None:
    body = b'{"prompt":"x"}'

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        data = message["body"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(data))]})
        await send({"type": "http.response.body", "body": data})

    async def scenario() -> None:
        protocol, transport = connect(echo, asyncio.get_running_loop())
        protocol.data_received(
            b"POST /v1/images HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        await steps()
        assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]  # the client waits for it before sending
        protocol.data_received(body)
        await steps()
        assert len(transport.writes) == 2
        assert transport.writes[1].endswith(b"\r\n\r\n" + body)

    asyncio.run(scenario())

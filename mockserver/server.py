"""The uvicorn configuration of ``serve`` and ``ServerThread``: an HTTP protocol whose request head is bounded.

uvicorn's httptools protocol buffers a request head of any size (a 20 MB header line is parsed and handed on)
and answers malformed HTTP with a plain-text 400. :class:`BoundedHttpToolsProtocol` stops a head at
``max_header_bytes`` with ``431`` and answers malformed requests with ``400 invalid_format``, both in the
envelope with a request id, then closes the connection. A response's head goes out in one write with its body
(:class:`HeadWithBody`). Apps other than the emulator get uvicorn's defaults; ``serve --workers N`` uses
:class:`SharedHttpProtocol`, bound in each worker process.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mockserver.api.middleware import raw_refusal
from mockserver.core.emulator import Emulator
from mockserver.core.errors import DomainError, HeadersTooLargeError, InvalidFormatError

MALFORMED = "The request is not valid HTTP/1.1."
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"  # uvicorn's interim answer: its client waits for it, and for no more


class HeadWithBody:
    """The transport a request's cycle writes through: its first write (the response head) waits for the next one.

    uvicorn writes a response's head and its body separately, and on a connection with nothing queued each write
    is a system call of its own: two per answer, a tenth of a poll's CPU under load (bench/README). Held, the head
    goes out with the body's first write; when no body write follows in the same step of the loop (a stream
    whose first chunk comes later, a HEAD answer), it goes out alone once that step ends. A ``100 Continue`` is
    never held.
    """

    __slots__ = ("_first", "_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        if self._first and data != CONTINUE:
            self._first = False
            self._held = data
            self._loop.call_soon(self.flush)
            return
        held, self._held = self._held, None
        self.transport.write(data if held is None else b"".join((held, data)))

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self.transport.is_closing():  # a peer gone meanwhile gets nothing
            self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # anything else the cycle may use: the connection's own transport
        return getattr(self.transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools' protocol, refusing request heads over :attr:`max_head_bytes` and malformed requests in the envelope.

    The head is counted in received bytes until the parser has every header, so the memory it holds is bounded
    by the limit plus one read (a body arriving in the same read is not counted).
    """

    max_head_bytes: ClassVar[int] = 32 * 1024
    emulator: ClassVar[Emulator | None] = None  # mints the request ids of the refusals

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head: int | None = 0  # bytes of the head read so far; None while a body is read
        self._writer: HeadWithBody | None = None  # the latest cycle's, whose held head goes before any other write

    def data_received(self, data: bytes) -> None:
        if self._head is not None:
            self._head += len(data)
        super().data_received(data)
        if self._head is not None and self._head > self.max_head_bytes and not self.transport.is_closing():
            self._refuse(HeadersTooLargeError(limit=self.max_head_bytes))

    def on_headers_complete(self) -> None:
        self._head = None
        self._flush()  # the previous answer's head, if it is still held (a HEAD answer), goes first
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.transport is self.transport:
            self._writer = self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head = 0

    def send_400_response(self, msg: str) -> None:
        self._refuse(InvalidFormatError(MALFORMED))

    def shutdown(self) -> None:
        self._flush()
        super().shutdown()

    def _flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _refuse(self, error: DomainError) -> None:
        self._flush()
        answering = self.cycle is not None and not self.cycle.response_complete
        if self.emulator is not None and not answering:  # never interleave with a response being written
            self.transport.write(raw_refusal(self.emulator, error))
        self.transport.close()


def protocol_for(emulator: Emulator) -> type[BoundedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to ``emulator``'s limit and request ids."""

    bound = emulator

    class EmulatorHttpProtocol(BoundedHttpToolsProtocol):
        max_head_bytes = bound.settings.max_header_bytes
        emulator = bound

    return EmulatorHttpProtocol


class SharedHttpProtocol(BoundedHttpToolsProtocol):
    """The protocol of ``serve --workers N``: uvicorn imports it by name in each worker process, where
    :func:`bind_worker` gives it that process's emulator before the first connection."""


def bind_worker(emulator: Emulator) -> None:
    SharedHttpProtocol.emulator = emulator
    SharedHttpProtocol.max_head_bytes = emulator.settings.max_header_bytes


def config(app: Any, **options: Any) -> uvicorn.Config:
    """``uvicorn.Config`` for ``app``; the emulator's app (``app.state.emulator``) gets the bounded protocol."""
    emulator = getattr(getattr(app, "state", None), "emulator", None)
    if isinstance(emulator, Emulator):
        options.setdefault("http", protocol_for(emulator))
    return uvicorn.Config(app, **options)

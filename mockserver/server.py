"""The uvicorn configuration of ``serve`` and ``ServerThread``: an HTTP protocol whose request head is bounded.

uvicorn's httptools protocol buffers a request head of any size (a 20 MB header line is parsed and handed on)
and answers malformed HTTP with a plain-text 400. :class:`BoundedHttpToolsProtocol` stops a head at
``max_header_bytes`` with ``431`` and answers malformed requests with ``400 invalid_format``, both in the
envelope with a request id, then closes the connection. Apps other than the emulator get uvicorn's defaults;
``serve --workers N`` uses :class:`SharedHttpProtocol`, bound in each worker process.
"""

from __future__ import annotations

from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mockserver.api.middleware import raw_refusal
from mockserver.core.emulator import Emulator
from mockserver.core.errors import DomainError, HeadersTooLargeError, InvalidFormatError

MALFORMED = "The request is not valid HTTP/1.1."


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

    def data_received(self, data: bytes) -> None:
        if self._head is not None:
            self._head += len(data)
        super().data_received(data)
        if self._head is not None and self._head > self.max_head_bytes and not self.transport.is_closing():
            self._refuse(HeadersTooLargeError(limit=self.max_head_bytes))

    def on_headers_complete(self) -> None:
        self._head = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head = 0

    def send_400_response(self, msg: str) -> None:
        self._refuse(InvalidFormatError(MALFORMED))

    def _refuse(self, error: DomainError) -> None:
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

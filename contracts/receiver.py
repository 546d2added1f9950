"""A webhook receiver for the suites: :func:`contracts.listen.build_app` under uvicorn in a thread.

It binds 127.0.0.1 only (port 0 picks a free one), records every delivery in a :class:`~contracts.listen.Listener`
and answers 200; the suite verifies signatures itself, once it knows the endpoint secret. The kit never imports
``mockserver``, so this is its own small twin of ``mockserver.testing.ServerThread``.

Example:
    >>> with ReceiverThread(Listener()) as receiver:  # doctest: +SKIP
    ...     receiver.url
    'http://127.0.0.1:40123'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Self

import uvicorn

from contracts.listen import Listener, Received, build_app

__all__ = ["ReceiverThread"]

STARTUP_TIMEOUT = 10.0
POLL_SECONDS = 0.02


class ReceiverThread:
    """The receiver on ``127.0.0.1:port``; ``url`` is where the target must POST (``public_url`` when tunnelled)."""

    def __init__(self, listener: Listener, *, port: int = 0, public_url: str | None = None) -> None:
        config = uvicorn.Config(
            build_app(listener), host="127.0.0.1", port=port, lifespan="off", log_level="warning", access_log=False
        )
        self.listener, self.public_url = listener, public_url
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="aurous-contracts-receiver", daemon=True)
        self.url = ""

    def start(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the webhook receiver did not start (is the port free?)")
            time.sleep(POLL_SECONDS)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = (self.public_url or f"http://127.0.0.1:{port}").rstrip("/")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=STARTUP_TIMEOUT)

    def wait_until(self, done: Callable[[list[Received]], bool], timeout: float) -> list[Received]:
        """Poll the deliveries until ``done(received)`` holds or ``timeout`` seconds passed; return them."""
        deadline = time.monotonic() + timeout
        while True:
            received = list(self.listener.received)
            if done(received) or time.monotonic() >= deadline:
                return received
            time.sleep(POLL_SECONDS)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Running a server or a run from the command line: ``serve``, ``listen``, ``drift-proxy`` and ``check`` share it.

- :func:`bind` binds the listening socket itself, so ``--port 0`` can report the port it got, and turns a port
  that cannot be bound into one line (which port, and ``--port 0``) and exit status 1 instead of a traceback.
- :func:`run` runs an ASGI app under uvicorn on that socket, calls ``ready`` only once uvicorn serves and owns
  SIGINT/SIGTERM (so a signal right after a "Ready" line is a clean stop, never a hang), and ends on either
  signal with :data:`INTERRUPTED` or :data:`TERMINATED`, no traceback.
- :func:`interruptible` gives a run that is not a server (``check``) the same exit statuses.

It imports only the standard library and uvicorn, so the emulator's ``serve`` can use it without loading the kit.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TextIO

import uvicorn

__all__ = [
    "CANNOT_LISTEN",
    "INTERRUPTED",
    "STARTUP_FAILED",
    "TERMINATED",
    "CannotListenError",
    "bind",
    "bind_or_report",
    "interruptible",
    "run",
    "url_of",
]

INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C, as the shell reports it
TERMINATED = 128 + signal.SIGTERM  # 143: `kill`, `docker stop`
CANNOT_LISTEN = 1
STARTUP_FAILED = 1
BACKLOG = 2048  # uvicorn's default
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PORT_IN_USE = "port {port} is already in use on {host}; stop what uses it, or pass --port 0 to pick a free port"


class CannotListenError(Exception):
    """The socket could not be bound; ``str()`` is the one line to show (after the program's name)."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        if error.errno == errno.EADDRINUSE:
            reason = PORT_IN_USE.format(port=port, host=host)
        else:
            reason = error.strerror or str(error)
        super().__init__(f"cannot listen on {host}:{port}: {reason}")


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening (a client that connects before uvicorn is up waits in the
    backlog instead of being refused). Raises :class:`CannotListenError`."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise CannotListenError(host, port, exc) from None
    sock.set_inheritable(True)
    return sock


def bind_or_report(program: str, host: str, port: int, err: TextIO) -> socket.socket | None:
    """:func:`bind`, or None after printing ``<program>: cannot listen on …`` on ``err`` (exit with 1 then)."""
    try:
        return bind(host, port)
    except CannotListenError as exc:
        print(f"{program}: {exc}", file=err, flush=True)
        return None


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, calling ``ready`` once it serves: ``startup`` runs inside uvicorn's signal capture."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit and self._ready is not None:
            self._ready()


def run(config: uvicorn.Config, sock: socket.socket, *, ready: Callable[[], None] | None = None) -> int:
    """Serve ``config``'s app on ``sock`` until SIGINT or SIGTERM; the exit status.

    0 when the server stopped on its own, :data:`INTERRUPTED` (130) after SIGINT, :data:`TERMINATED` (143)
    after SIGTERM (each after a graceful shutdown), :data:`STARTUP_FAILED` when the app never started
    (uvicorn has logged why). A signal that arrives before uvicorn installs its own handlers is caught here
    and stops the server as soon as it starts; uvicorn hands the signals it caught back to this handler.
    """
    server = _Server(config, ready)

    def stop(signum: int) -> None:
        server.should_exit = True

    with _stopping(stop) as received:
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
    if received:
        return 128 + received[0]
    return 0 if server.started else STARTUP_FAILED


@contextmanager
def _stopping(stop: Callable[[int], None]) -> Iterator[list[int]]:
    """SIGINT and SIGTERM are recorded in the yielded list, then call ``stop`` (main thread only)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, original in previous.items():
            signal.signal(sig, original)


class _Stopped(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM during :func:`interruptible` (a KeyboardInterrupt, so
    libraries that stop cleanly on Ctrl-C stop cleanly on SIGTERM too)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int) -> None:
    raise _Stopped(signum)


def interruptible(program: str, body: Callable[[], int], err: TextIO) -> int:
    """Run ``body`` (a command that is not a server); SIGINT or SIGTERM ends it with 130 or 143 and one line
    on ``err`` instead of a traceback. ``finally`` blocks inside ``body`` still run (e.g. the kit deletes the
    webhook endpoint it registered)."""
    try:
        with _stopping(_raise_stopped) as received:
            status = body()
        if received:  # the signal's exception was swallowed (raised inside a gc callback or a __del__): still stopped
            raise _Stopped(received[0])
        return status
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, _Stopped) else signal.SIGINT
        print(f"{program}: stopped by {signal.Signals(signum).name}", file=err, flush=True)
        return 128 + signum
    except BrokenPipeError:
        # The reader of our output went away (``… | head``): end as a tool killed by SIGPIPE would, quietly.
        # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE

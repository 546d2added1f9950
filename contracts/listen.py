"""A local webhook receiver, ``aurous-mock listen``: verifies, prints and optionally forwards each delivery.

It is the Stripe CLI ``listen`` experience for Aurous, and the pytest plugin reuses :class:`Listener` and
:func:`build_app` in-process. Deliveries that fail verification are answered 400 and never forwarded; a forward
runs after the answer is sent, so the target's status or failure never changes what the sender sees.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from contracts.serving import CANNOT_LISTEN, bind_or_report, run, url_of
from contracts.signature import DEFAULT_TOLERANCE, HEADER, SignatureVerificationError, verify_signature

__all__ = ["FORWARD_TIMEOUT", "Listener", "Received", "build_app", "main", "ready_line", "serve"]

FORWARD_TIMEOUT = 10.0  # the sender's own deadline (reference §5.5)
FORWARDED_HEADERS = ("content-type", "user-agent")  # plus every aurous-* header


@dataclass
class Received:
    """One delivery as the listener saw it (headers keyed in lower case)."""

    received_at: datetime
    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any  # the parsed JSON, or None when the body is not JSON
    verified: bool
    error: str | None  # why verification failed; None when it passed or was not attempted
    status: int  # what the listener answered
    forward_status: int | None = None
    forward_error: str | None = None

    @property
    def event_type(self) -> str | None:
        return _text(self.payload.get("event")) if isinstance(self.payload, dict) else None

    @property
    def event_id(self) -> str | None:
        return _text(self.payload.get("id")) if isinstance(self.payload, dict) else None

    @property
    def endpoint_id(self) -> str | None:
        """The emulator-only ``Aurous-Webhook-Id`` header: the endpoint the delivery is for (``we_…``)."""
        return self.headers.get("aurous-webhook-id")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _describe(received: Received) -> str:
    """``image.completed  evt_…  img_… succeeded`` (what is known of the payload)."""
    payload = received.payload
    if not isinstance(payload, dict):
        kind = "non-JSON body" if payload is None else f"JSON {type(payload).__name__}"
        return f"({kind}, {len(received.body)} bytes)"
    data = payload.get("data")
    subject = [_text(data.get("id")), _text(data.get("status"))] if isinstance(data, dict) else []
    parts = [received.event_type or "(no event type)", received.event_id, " ".join(filter(None, subject))]
    return "  ".join(filter(None, parts))


def _notes(received: Received) -> str:
    notes = [f"endpoint {received.endpoint_id}"] if received.endpoint_id else []
    if isinstance(received.payload, dict) and received.payload.get("synthetic") is True:
        notes.append("synthetic")
    if not received.verified and received.error is None:
        notes.append("unverified")
    return f"  ({', '.join(notes)})" if notes else ""


class Listener:
    """Collects deliveries and prints them: one line each, or the JSON body alone with ``as_json``.

    With ``as_json`` the events go to ``out`` one per line (ready for ``jq``); everything else (rejections,
    forward results) goes to ``err``. The pytest plugin passes no streams and reads ``received``.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        as_json: bool = False,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.out, self.err, self.as_json, self.clock = out, err, as_json, clock
        self.received: list[Received] = []
        self._changed = threading.Condition()

    def record(self, received: Received) -> None:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()
        self._emit(received)

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """Block until at least ``count`` deliveries arrived (from another thread); return them all."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.received)} of {count} webhook deliveries arrived within {timeout} s")
            return list(self.received)

    def clear(self) -> None:
        with self._changed:
            self.received.clear()

    def line(self, received: Received) -> str:
        """The human-readable line for a delivery."""
        stamp, what = _stamp(received.received_at), f"{_describe(received)}{_notes(received)}"
        if received.error is not None:
            return f"{stamp}  ✗ signature rejected ({received.status}): {received.error}  — {what}"
        return f"{stamp}  {'✓' if received.verified else '·'} {what}"

    def forwarded(self, received: Received, url: str) -> None:
        """Print what the forward target made of a delivery."""
        stamp = _stamp(self.clock())
        what = received.event_id or received.endpoint_id or received.path
        if received.forward_error is not None:
            self._print(f"{stamp}  → forward to {url} failed: {received.forward_error}  [{what}]", error=self.as_json)
        else:
            self._print(f"{stamp}  → [{received.forward_status}] POST {url}  [{what}]", error=self.as_json)

    def _emit(self, received: Received) -> None:
        if self.as_json and received.error is None and received.payload is not None:
            self._print(json.dumps(received.payload, ensure_ascii=False, separators=(",", ":")))
        else:
            self._print(self.line(received), error=self.as_json)

    def _print(self, text: str, *, error: bool = False) -> None:
        stream = self.err if error else self.out
        if stream is not None:
            print(text, file=stream, flush=True)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return None


async def _forward(listener: Listener, received: Received, url: str) -> None:
    headers = {
        name: value
        for name, value in received.headers.items()
        if name.startswith("aurous-") or name in FORWARDED_HEADERS
    }
    try:
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT) as client:
            response = await client.post(url, content=received.body, headers=headers)
        received.forward_status = response.status_code
    except httpx.HTTPError as exc:
        received.forward_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    listener.forwarded(received, url)


def build_app(
    listener: Listener,
    secret: str | None = None,
    tolerance: int | None = DEFAULT_TOLERANCE,
    status: int = 200,
    forward_to: str | None = None,
) -> Starlette:
    """A Starlette app answering POST on any path: 400 on a bad signature (if ``secret`` is set), else ``status``."""

    async def receive(request: Request) -> Response:
        body = await request.body()
        verified, error = False, None
        if secret is not None:
            try:
                verify_signature(body, request.headers.get(HEADER), secret, tolerance)
                verified = True
            except SignatureVerificationError as exc:
                error = str(exc)
        received = Received(
            received_at=listener.clock(),
            path=request.url.path,
            headers=dict(request.headers),
            body=body,
            payload=_parse_json(body),
            verified=verified,
            error=error,
            status=400 if error is not None else status,
        )
        listener.record(received)
        if error is not None:
            return PlainTextResponse(error, status_code=400)
        task = BackgroundTask(_forward, listener, received, forward_to) if forward_to else None
        return Response(status_code=status, background=task)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


def _mask(secret: str) -> str:
    """Enough of the secret to tell which one is in use, never all of it."""
    prefix = secret[: secret.index("_") + 1] if "_" in secret[:8] else ""
    return f"{prefix}…{secret[-4:]}" if len(secret) >= len(prefix) + 16 else f"{prefix}…"


def ready_line(url: str, secret: str | None, tolerance: int | None) -> str:
    if secret is None:
        return f"Ready! Listening on {url}  (no --secret: deliveries are not verified)"
    window = "no timestamp tolerance" if tolerance is None else f"tolerance {tolerance} s"
    return f"Ready! Listening on {url}  (verifying {HEADER} with {_mask(secret)}, {window})"


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    secret: str | None = None,
    tolerance: int | None = DEFAULT_TOLERANCE,
    status: int = 200,
    forward_to: str | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the listener under uvicorn until SIGINT/SIGTERM; the exit status (``contracts.serving.run``: 0, 1 when
    the port cannot be bound, 130 after SIGINT, 143 after SIGTERM).

    The Ready line is printed only once uvicorn serves and owns the signals, so a sender (or a Ctrl-C) that
    acts on it meets a listener that answers (or stops cleanly).
    """
    out, err = out or sys.stdout, err or sys.stderr
    sock = bind_or_report("aurous-mock listen", host, port, err)
    if sock is None:
        return CANNOT_LISTEN
    listener = Listener(out=out, err=err, as_json=as_json)
    config = uvicorn.Config(
        build_app(listener, secret, tolerance, status, forward_to),
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    notice = err if as_json else out  # with --json, stdout carries events only
    url = url_of(sock)

    def ready() -> None:
        print(ready_line(url, secret, tolerance), file=notice, flush=True)
        if forward_to:
            print(f"  forwarding accepted deliveries to {forward_to}", file=notice, flush=True)

    return run(config, sock, ready=ready)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``aurous-mock listen`` (the options are declared in ``mockserver.cli``)."""
    for stream in (sys.stdout, sys.stderr):
        # A terminal that cannot show ✓/✗ gets escapes rather than a crash mid-delivery.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    return serve(
        host=args.host,
        port=args.port,
        secret=args.secret,
        tolerance=args.tolerance,
        status=args.status,
        forward_to=args.forward_to,
        as_json=args.json,
    )

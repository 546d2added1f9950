"""A reverse proxy that forwards everything to an Aurous API and answers with named drifts, ``aurous-mock drift-proxy``.

Point ``aurous-mock check`` at it to see what the kit reports for each kind of drift. In-process, with no network,
:class:`DriftProxy` wraps an ASGI app (``DriftProxy(create_app(), ["rename-field"])``); given a URL it forwards
with ``httpx.AsyncClient``. Upstream URLs in answers (output URLs, ``Location``) are rewritten to the proxy's own.

========================  ===========================================================================================
``undocumented-enum``     a ``pending`` generation says ``"status": "queued"`` (v1.0 never emits ``queued``)
``rename-field``          generation bodies call ``created_at`` ``created``
``drop-header``           no ``Aurous-Request-Id`` on any response
``wrong-status``          creates answer ``200`` instead of ``201``
``bad-signature-secret``  endpoint create / rotate answers a ``secret`` other than the one deliveries are signed with
``never-expire``          an expired output (``410``) is served ``200`` with bytes
``overcharge``            estimates answer half of what the create then charges
========================  ===========================================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from contracts.serving import CANNOT_LISTEN, bind_or_report, run, url_of

__all__ = ["DRIFTS", "Drift", "DriftProxy", "Reply", "main", "parse_drifts", "serve"]

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]
IN_PROCESS_UPSTREAM = "http://upstream.drift-proxy.invalid"
# Hop-by-hop headers, and those httpx sets itself.
_REQUEST_SKIP = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade"})
_REPLY_SKIP = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"})
_OUTPUT_PATH = re.compile(r"^/v1/(?:images/[^/]+/output/\d+|videos/[^/]+/output)$")
_ESTIMATE_PATHS = frozenset({"/v1/images/estimate", "/v1/videos/estimate"})
_REMEMBERED_OUTPUTS = 32
# Bytes served for an expired output the proxy never saw fresh: a 1×1 PNG, and an MP4 that is only its ftyp box.
_PLACEHOLDER_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63606060600000"
    "00050001a5f645400000000049454e44ae426082"
)
_PLACEHOLDER_MP4 = bytes.fromhex("000000186674797069736f6d0000020069736f6d6d703432")
_UNSET: Any = object()


@dataclass
class Reply:
    """The upstream's answer to one request, as the drifts rewrite it before the client sees it."""

    method: str
    path: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    outputs: OrderedDict[str, tuple[str, bytes]] = field(default_factory=OrderedDict)  # fresh output bytes, by path
    changed: bool = False  # the parsed document was modified and must be serialized again
    _document: Any = _UNSET

    @property
    def document(self) -> Any:
        """The JSON body (parsed once, modifiable in place; set ``changed``), or ``None`` for anything else."""
        if self._document is _UNSET:
            self._document = None
            if "json" in (self.header("content-type") or ""):
                try:
                    self._document = json.loads(self.body)
                except ValueError:
                    pass
        return self._document

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name), None)

    def drop_header(self, name: str) -> None:
        self.headers = [(key, value) for key, value in self.headers if key.lower() != name]

    def replace_body(self, body: bytes, content_type: str) -> None:
        self.drop_header("content-type")
        self.headers.append(("content-type", content_type))
        self.body, self._document, self.changed = body, None, False

    def rendered(self, upstream: str, proxy: str) -> bytes:
        body = json.dumps(self._document, separators=(",", ":")).encode() if self.changed else self.body
        if self.document is None:
            return body
        return body.replace(upstream.encode(), proxy.encode())


@dataclass(frozen=True)
class Drift:
    """One named way an API can drift from its contract; ``apply`` rewrites a reply in place."""

    name: str
    summary: str
    apply: Callable[[Reply], None]


def _generations(document: Any) -> Iterator[dict[str, Any]]:
    """Every generation object in a body: the resource itself, or a list's items."""
    if isinstance(document, dict):
        if document.get("object") == "inference":
            yield document
        for value in document.values():
            yield from _generations(value)
    elif isinstance(document, list):
        for item in document:
            yield from _generations(item)


def _undocumented_enum(reply: Reply) -> None:
    for generation in _generations(reply.document):
        if generation.get("status") == "pending":
            generation["status"], reply.changed = "queued", True


def _rename_field(reply: Reply) -> None:
    # Not `status`: a renamed status would hide `undocumented-enum` (and every status-driven check) when combined.
    for generation in _generations(reply.document):
        if "created_at" in generation:
            renamed = {("created" if key == "created_at" else key): value for key, value in generation.items()}
            generation.clear()
            generation.update(renamed)  # in place and in the same position, as a renamed column would be
            reply.changed = True


def _drop_header(reply: Reply) -> None:
    reply.drop_header("aurous-request-id")


def _wrong_status(reply: Reply) -> None:
    if reply.status == 201:
        reply.status = 200


def _bad_signature_secret(reply: Reply) -> None:
    document = reply.document
    if isinstance(document, dict) and document.get("object") == "webhook_endpoint":
        secret = document.get("secret")
        if isinstance(secret, str):  # only create and rotate show it
            wrong = "whsec_" + hashlib.sha256(secret.encode()).hexdigest()[:32]
            document["secret"], document["secret_preview"] = wrong, f"{wrong[:9]}...{wrong[-4:]}"
            reply.changed = True


def _never_expire(reply: Reply) -> None:
    if reply.method != "GET" or not _OUTPUT_PATH.match(reply.path):
        return
    if reply.status == 200:
        reply.outputs[reply.path] = (reply.header("content-type") or "application/octet-stream", reply.body)
        while len(reply.outputs) > _REMEMBERED_OUTPUTS:
            reply.outputs.popitem(last=False)
    elif reply.status == 410:
        video = reply.path.startswith("/v1/videos/")
        fallback = ("video/mp4", _PLACEHOLDER_MP4) if video else ("image/png", _PLACEHOLDER_PNG)
        content_type, content = reply.outputs.get(reply.path, fallback)
        reply.status = 200
        reply.replace_body(content, content_type)


def _half(value: Any) -> Any:
    return value / 2 if isinstance(value, int | float) and not isinstance(value, bool) else value


def _overcharge(reply: Reply) -> None:
    document = reply.document
    if reply.path not in _ESTIMATE_PATHS or reply.status != 200 or not isinstance(document, dict):
        return
    cost = document.get("estimated_cost")
    if isinstance(cost, dict):
        cost["amount"] = _half(cost.get("amount"))
        breakdown = cost.get("breakdown")
        if isinstance(breakdown, dict):
            cost["breakdown"] = {name: _half(value) for name, value in breakdown.items()}
        reply.changed = True


# In the order they apply; each leaves what the others change intact, so any combination shows every drift.
DRIFTS: dict[str, Drift] = {
    drift.name: drift
    for drift in (
        Drift(
            "undocumented-enum", "a pending generation says status 'queued' (v1.0 never emits it)", _undocumented_enum
        ),
        Drift("rename-field", "generation bodies call 'created_at' 'created'", _rename_field),
        Drift("drop-header", "no Aurous-Request-Id on any response", _drop_header),
        Drift("wrong-status", "creates answer 200 instead of 201", _wrong_status),
        Drift(
            "bad-signature-secret",
            "endpoint create/rotate answers another secret than deliveries are signed with",
            _bad_signature_secret,
        ),
        Drift("never-expire", "an expired output (410) is served 200 with bytes", _never_expire),
        Drift("overcharge", "estimates answer half of what the create then charges", _overcharge),
    )
}


def parse_drifts(values: Iterable[str]) -> list[str]:
    """Drift names from repeatable, comma-separated values (``all`` means every drift), in the order they apply.

    Example:
        >>> parse_drifts(["wrong-status,drop-header"])
        ['drop-header', 'wrong-status']
    """
    names = {name.strip() for value in values for name in value.split(",") if name.strip()}
    if "all" in names:
        return list(DRIFTS)
    unknown = sorted(names - set(DRIFTS))
    if unknown:
        raise ValueError(f"unknown drift {', '.join(unknown)}; choose from {', '.join(DRIFTS)} (or all)")
    return [name for name in DRIFTS if name in names]


class DriftProxy:
    """An ASGI app forwarding every request to ``upstream`` (a URL, or an ASGI app called in-process).

    Example:
        >>> proxy = DriftProxy("http://127.0.0.1:8080", ["rename-field", "wrong-status"])
        >>> proxy.drifts
        ['rename-field', 'wrong-status']
    """

    def __init__(self, upstream: str | ASGIApp, drifts: Iterable[str] = (), *, timeout: float = 60.0) -> None:
        self.drifts = parse_drifts(drifts)
        self._apply = [DRIFTS[name].apply for name in self.drifts]
        self.app: ASGIApp | None = None if isinstance(upstream, str) else upstream
        self.upstream = upstream.rstrip("/") if isinstance(upstream, str) else IN_PROCESS_UPSTREAM
        self.timeout = timeout
        self._outputs: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)  # the wrapped app starts and stops as if served itself
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def _http(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [
            (key.decode("latin-1"), value.decode("latin-1"))
            for key, value in scope["headers"]
            if key.decode("latin-1").lower() not in _REQUEST_SKIP
        ]
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = self.upstream + path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        try:
            answer = await self._send(scope["method"], url, headers, bytes(body))
        except httpx.HTTPError as exc:
            reply = Reply(scope["method"], scope["path"], 502, [("content-type", "text/plain")], b"")
            reply.body = f"drift proxy: the upstream {self.upstream} did not answer: {exc!r}".encode()
        else:
            kept = [(key, value) for key, value in answer.headers.multi_items() if key.lower() not in _REPLY_SKIP]
            reply = Reply(scope["method"], scope["path"], answer.status_code, kept, answer.content, self._outputs)
            for apply in self._apply:
                apply(reply)
        content = reply.rendered(self.upstream, _own_base(scope))
        location = reply.header("location")
        if location is not None and location.startswith(self.upstream):
            reply.drop_header("location")
            reply.headers.append(("location", _own_base(scope) + location[len(self.upstream) :]))
        raw = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in reply.headers]
        raw.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        await send({"type": "http.response.body", "body": content})

    async def _send(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> httpx.Response:
        if self.app is not None:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, timeout=self.timeout) as client:
                return await client.request(method, url, headers=headers, content=body)
        loop = asyncio.get_running_loop()
        if loop not in self._clients:  # one pool per event loop (uvicorn has one)
            self._clients[loop] = httpx.AsyncClient(timeout=self.timeout)
        return await self._clients[loop].request(method, url, headers=headers, content=body)


def _own_base(scope: MutableMapping[str, Any]) -> str:
    """The proxy's URL as the client called it, so rewritten URLs lead back through the proxy."""
    host = next((value.decode("latin-1") for key, value in scope["headers"] if key.lower() == b"host"), None)
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def describe() -> str:
    """One line per drift: ``name  summary``."""
    width = max(map(len, DRIFTS))
    return "\n".join(f"  {drift.name:<{width}}  {drift.summary}" for drift in DRIFTS.values())


def serve(upstream: str, drifts: Iterable[str], *, host: str = "127.0.0.1", port: int = 0) -> int:
    """Run the proxy under uvicorn until SIGINT/SIGTERM; the exit status (``contracts.serving.run``: 0, 1 when the
    port cannot be bound, 130 after SIGINT, 143 after SIGTERM). The banner is printed once the proxy serves."""
    proxy = DriftProxy(upstream, drifts)
    sock = bind_or_report("aurous-mock drift-proxy", host, port, sys.stderr)
    if sock is None:
        return CANNOT_LISTEN
    url = url_of(sock)

    def ready() -> None:
        print(f"aurous-mock drift-proxy on {url} -> {proxy.upstream}", flush=True)  # noqa: T201
        for name in proxy.drifts or ["(none: answers are forwarded unchanged)"]:
            drift = DRIFTS.get(name)
            print(f"  drift {name}: {drift.summary}" if drift else f"  {name}", flush=True)  # noqa: T201

    return run(uvicorn.Config(proxy, log_level="warning", access_log=False, lifespan="on"), sock, ready=ready)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``aurous-mock drift-proxy`` (the options are declared in ``mockserver.cli``)."""
    if args.list:
        print(describe())  # noqa: T201
        return 0
    if not args.upstream:
        print("aurous-mock drift-proxy: --upstream URL is required", file=sys.stderr)  # noqa: T201
        return 2
    try:
        drifts = parse_drifts(args.drift or [])
    except ValueError as exc:
        print(f"aurous-mock drift-proxy: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return serve(args.upstream, drifts, host=args.host, port=args.port)

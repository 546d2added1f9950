"""Experiment: how far a hand-fused request path gets against bare Starlette (bench/README.md, "Targets not met").

``GET /v1/balance`` written as one function straight against ASGI messages, doing the documented work of the
pipeline (request id, size limits, auth, scope, clock, settlement, rate limit, version, scenario check, journal,
seven headers) without the pipeline's glue or Starlette's objects; anything unusual (another route, an error, a
scenario) goes to the app before any side effect. Not part of the emulator: it exists to measure. Run it:

    python bench/experiments/fused_balance.py [--duration 8] [--repeat 3]

It serves the emulator as shipped, the emulator behind ``FusedBalance``, and bare Starlette, each under the same
uvicorn settings as ``run.py``, drives ``GET /v1/balance`` with wrk, and prints requests/s and server CPU per
request (medians of interleaved rounds).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette

from mockserver.api.headers import first_values, text
from mockserver.api.pipeline import api_key_from
from mockserver.core.accounts import require_scope
from mockserver.core.emulator import Emulator
from mockserver.core.errors import DomainError
from mockserver.core.journal import Entry, clip
from mockserver.core.versions import resolve_version


class FusedBalance:
    """ASGI middleware answering ``GET /v1/balance`` itself, in front of the whole emulator app."""

    def __init__(self, app: Any, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/v1/balance":
            await self.app(scope, receive, send)
            return
        em = self.emulator
        settings = em.settings
        headers = first_values(scope["headers"])
        raw = scope["headers"]
        target = len(scope.get("raw_path") or b"") + len(scope["query_string"])
        head = sum(map(len, itertools.chain.from_iterable(raw))) + 4 * len(raw)
        if (
            target > settings.max_url_bytes
            or head + target > settings.max_header_bytes
            or b"aurous-mock-scenario" in headers
            or em.scenarios.file_rules
        ):
            await self.app(scope, receive, send)
            return
        try:
            team, key = em.accounts.authenticate(api_key_from(headers))
            require_scope(key, "read")
            version = resolve_version(text(headers, b"aurous-version"), team.default_api_version)
        except DomainError:
            await self.app(scope, receive, send)
            return
        if em.scenarios.has_rules(team):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = em.ids.new("req", at=em.clock.now(), scope="req")
        now = em.accounts.now(team)
        em.generations.settle_due(team, now)
        em.characters.settle_due(team, now)
        decision = em.limiter.take(team.id, "get", now)
        if not decision.allowed:
            raise RuntimeError("experiment: no 429 path (run it with the bench's unlimited buckets)")
        body = orjson.dumps(
            {
                "credits": team.credits,
                "held_credits": team.held,
                "available_credits": team.available,
                "currency": "credit",
                "billing_mode": team.billing_mode,
            }
        )
        out = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
            (b"x-ratelimit-limit", b"%d" % decision.limit),
            (b"x-ratelimit-remaining", b"%d" % decision.remaining),
            (b"x-ratelimit-reset", b"%d" % decision.reset),
            (b"aurous-version", version.encode()),
            (b"aurous-request-id", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body})
        if em.journal.size > 0:
            em.journal.record(
                team.id,
                Entry(
                    id="jnl_" + request_id.partition("_")[2],
                    at=now,
                    operation="getBalance",
                    control=False,
                    method="GET",
                    path=scope["path"],
                    query=scope.get("query_string", b""),
                    status=200,
                    request_id=request_id,
                    request_headers=raw,
                    request_body=None,
                    request_size=0,
                    response_headers=out,
                    response_body=clip(body),
                    response_size=len(body),
                    duration_ms=(time.perf_counter() - started) * 1000,
                ),
            )


# --- the measurement ------------------------------------------------------------------------------------------


def shipped() -> Starlette:
    """The emulator as ``run.py`` serves it (an app factory for ``uvicorn --factory``)."""
    from mockserver.app import create_app

    return create_app()


def fused() -> Any:
    """The same emulator with :class:`FusedBalance` in front of it (outside Starlette's middleware stack)."""
    app = shipped()
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: FusedBalance(build(), app.state.emulator)  # type: ignore[method-assign]
    return app


def main(argv: list[str] | None = None) -> int:
    bench = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(bench))
    import inprocess
    import loadgen

    parser = argparse.ArgumentParser(prog="bench/experiments/fused_balance.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run (8)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (3)")
    args = parser.parse_args(argv)
    env = {
        "AUROUS_MOCK_RATE_LIMITS": orjson.dumps(inprocess.UNLIMITED).decode(),
        "PYTHONPATH": str(Path(__file__).parent),
    }
    servers = []
    for name, app in (("shipped", "fused_balance:shipped"), ("fused", "fused_balance:fused"), ("starlette", None)):
        port = loadgen.free_port()
        if app is None:
            command = loadgen.uvicorn_command("baseline_app:app", port)
        else:
            command = [*loadgen.uvicorn_command(app, port), "--factory"]
        servers.append(loadgen.Server(name, command, port, env=env, key=inprocess.KEY))
    load = loadgen.Load("get.lua", path="/v1/balance")
    runs: dict[str, list[dict[str, Any]]] = {server.name: [] for server in servers}
    try:
        for server in servers:
            server.start()
            loadgen.run_wrk(server, load, duration=1, connections=32, threads=1)  # warm-up
        for _ in range(args.repeat):
            for server in servers:
                runs[server.name].append(
                    loadgen.run_wrk(server, load, duration=args.duration, connections=32, threads=1)
                )
    finally:
        for server in servers:
            server.stop()
    starlette_rps = statistics.median(r["rps"] for r in runs["starlette"])
    print("| GET /v1/balance | req/s | server CPU µs/req | vs Starlette |\n|---|---:|---:|---:|")  # noqa: T201
    for name, found in runs.items():
        rps = statistics.median(r["rps"] for r in found)
        cpu = statistics.median(r["server_cpu_us"] for r in found)
        print(f"| {name} | {rps:,.0f} | {cpu:.0f} | {rps / starlette_rps:.2f} × |")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 16's LLM figures: a 1,000-token stream under the virtual clock, and polls during real-time streams.

    python bench/llm.py [--runs 20] [--streams 100] [--stream-tokens 200] [--json out.json]

1. **1,000-token stream, virtual clock** (target < 50 ms): ``POST /v1/chat/completions`` with ``stream: true`` and
   ``max_tokens: 1000`` whose reply is long enough to be cut at exactly 1,000 tokens (a ``json_schema`` response
   format asking for 400 strings), timed from sending to ``data: [DONE]``: in process (the ASGI app called
   directly, no server) and over loopback HTTP (``aurous-mock serve --clock virtual`` in a subprocess). The same
   request with ``stream: false`` separates producing the reply from streaming it. Medians of ``--runs``.
2. **Polls during 100 real-time streams** (target: p99 < 20 ms): ``aurous-mock serve`` on the system clock (time to
   first token 250 ms, 80 tokens/s, the defaults) in a subprocess; ``--streams`` concurrent streamed prose replies
   (``max_tokens: --stream-tokens``) from one client process, while a second process polls ``GET /v1/balance``
   back to back (5 ms apart) for the first two seconds; p50 / p99 of the poll latency, and the same poll with no
   stream running as the reference.

Every server is a subprocess on a free 127.0.0.1 port with rate limits off, stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

MODEL = "aurous-grow-2.0-pro"
STEADY_AFTER = 0.5  # seconds after the streams start: every one admitted (the burst of 100 creates is over)
KEY = "al_live_" + "b" * 64
LONG_SCHEMA = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "minItems": 400, "items": {"type": "string", "enum": ["the sea is wide and deep"]}}
    },
    "required": ["items"],
}


def long_body(*, stream: bool, max_tokens: int = 1000) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "A long list, please"}],
        "max_tokens": max_tokens,
        "stream": stream,
        "response_format": {"type": "json_schema", "json_schema": {"name": "long", "schema": LONG_SCHEMA}},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(clock: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "AUROUS_MOCK_RATE_LIMITS_ENABLED": "false", "AUROUS_MOCK_DEFAULT_CREDITS": "1000000000"}
    argv = [sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--clock", clock, "--seed", "7"]
    process = subprocess.Popen([*argv, "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/v1/balance", headers={"X-Api-Key": KEY}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("aurous-mock serve did not start")
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def completion_tokens(sse: str) -> int:
    frames = [line[6:] for line in sse.split("\n") if line.startswith("data: ") and line != "data: [DONE]"]
    usage = json.loads(frames[-1]).get("usage") or {}
    return int(usage.get("completion_tokens", -1))


async def inprocess_runs(runs: int) -> dict[str, float]:
    """The ASGI app called directly (httpx's ASGITransport collects the whole stream)."""
    from mockserver import Settings, create_app

    app = create_app(Settings(clock="virtual", seed=7, rate_limits_enabled=False, default_credits=1e9))
    transport = httpx.ASGITransport(app=app)
    times: dict[str, list[float]] = {"stream": [], "json": []}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers={"X-Api-Key": KEY}) as client:
        for kind in ("stream", "json"):
            for _ in range(runs + 1):  # the first run warms up
                started = time.perf_counter()
                response = await client.post("/v1/chat/completions", json=long_body(stream=kind == "stream"))
                times[kind].append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            if kind == "stream":
                assert completion_tokens(response.text) == 1000
    return {kind: statistics.median(values[1:]) * 1000 for kind, values in times.items()}


def http_runs(base: str, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"stream": [], "json": []}
    with httpx.Client(base_url=base, headers={"X-Api-Key": KEY}, timeout=60) as client:
        for kind in ("stream", "json"):
            for _ in range(runs + 1):
                started = time.perf_counter()
                response = client.post("/v1/chat/completions", json=long_body(stream=kind == "stream"))
                times[kind].append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            if kind == "stream":
                assert completion_tokens(response.text) == 1000
    return {kind: statistics.median(values[1:]) * 1000 for kind, values in times.items()}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def poller(base: str, seconds: float) -> list[tuple[float, float]]:
    """Back-to-back ``GET /v1/balance`` for ``seconds``: (wall-clock start, latency in ms), in its own process."""
    latencies: list[tuple[float, float]] = []
    with httpx.Client(base_url=base, headers={"X-Api-Key": KEY}, timeout=60) as client:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            wall, started = time.time(), time.perf_counter()
            response = client.get("/v1/balance")
            latencies.append((wall, (time.perf_counter() - started) * 1000))
            assert response.status_code == 200
            time.sleep(0.005)
    return latencies


def poll_in_subprocess(base: str, seconds: float) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--poller", base, "--poll-seconds", str(seconds)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def latencies_of(process: subprocess.Popen[str]) -> list[tuple[float, float]]:
    out, _ = process.communicate(timeout=300)
    return [(float(wall), float(ms)) for wall, ms in json.loads(out)]


async def streams_for(base: str, streams: int, tokens: int) -> tuple[list[int], float]:
    """``streams`` concurrent streamed prose replies (``max_tokens: tokens``); their completion tokens, wall time."""
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(base_url=base, headers={"X-Api-Key": KEY}, timeout=300, limits=limits) as client:

        async def one(index: int) -> int:
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": f"Tell me about topic number {index}"}],
                "max_tokens": tokens,
                "stream": True,
            }
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                text = "".join([chunk async for chunk in response.aiter_text()])
            return completion_tokens(text)

        started = time.perf_counter()
        counts = await asyncio.gather(*(one(i) for i in range(streams)))
        return list(counts), time.perf_counter() - started


def polls_during_streams(base: str, streams: int, tokens: int) -> dict[str, Any]:
    idle = [ms for _, ms in latencies_of(poll_in_subprocess(base, 3.0))]
    busy_poller = poll_in_subprocess(base, 2.0)
    time.sleep(0.3)  # the poller's interpreter is up before the streams start
    began = time.time()
    counts, wall = asyncio.run(streams_for(base, streams, tokens))
    polled = latencies_of(busy_poller)
    busy = [ms for at, ms in polled if at + ms / 1000 >= began]  # every poll answered after the streams began
    # Once every stream is admitted and streaming (its first token is due 250 ms after admission): steady state.
    steady = [ms for at, ms in polled if at >= began + STEADY_AFTER]
    return {
        "streams": streams,
        "max_tokens_per_stream": tokens,
        "stream_tokens_median": statistics.median(counts),
        "streams_wall_s": round(wall, 2),
        "idle_polls": len(idle),
        "idle_poll_p50_ms": round(percentile(idle, 50), 2),
        "idle_poll_p99_ms": round(percentile(idle, 99), 2),
        "busy_polls": len(busy),
        "busy_poll_p50_ms": round(percentile(busy, 50), 2),
        "busy_poll_p99_ms": round(percentile(busy, 99), 2),
        "busy_poll_max_ms": round(max(busy), 2),
        "steady_polls": len(steady),
        "steady_poll_p50_ms": round(percentile(steady, 50), 2) if steady else None,
        "steady_poll_p99_ms": round(percentile(steady, 99), 2) if steady else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--stream-tokens", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--poller", help=argparse.SUPPRESS)  # internal: run the poller against this URL
    parser.add_argument("--poll-seconds", type=float, default=2.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.poller:
        sys.stdout.write(json.dumps(poller(args.poller, args.poll_seconds)))
        return 0
    results: dict[str, Any] = {}
    inproc = asyncio.run(inprocess_runs(args.runs))
    results["virtual_1000_tokens_inprocess_ms"] = {k: round(v, 1) for k, v in inproc.items()}
    with serve("virtual") as base:
        results["virtual_1000_tokens_http_ms"] = {k: round(v, 1) for k, v in http_runs(base, args.runs).items()}
    with serve("system") as base:
        results["realtime"] = polls_during_streams(base, args.streams, args.stream_tokens)
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

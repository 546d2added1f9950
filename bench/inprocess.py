"""In-process measurements: the emulator's ASGI app called directly, with no socket and no HTTP client.

Used by ``run.py`` (the clock-advance, memory and media-cache steps) and ``profile.py`` (the hot paths).
A request here passes the whole pipeline and middleware (auth, rate limit, journal, rendering) but not
uvicorn's HTTP parsing, so these numbers isolate our own per-request cost.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.types import Message

from mockserver.app import create_app
from mockserver.settings import Settings

KEY = "al_live_bench0000000000000000000000000000000000000000000000000000000000"
IMAGE_BODY = {"prompt": "a lighthouse at dusk, volumetric fog", "size": "square"}
# Buckets far above anything a benchmark sends: the limiter still runs, but never answers 429.
UNLIMITED = {
    name: {"capacity": 1_000_000_000, "per_minute": 1_000_000_000}
    for name in ("get", "images_post", "estimate_post", "files_post")
}


def bench_settings(**overrides: Any) -> Settings:
    """The emulator as the HTTP benchmark runs it: virtual clock, fixed seed, unlimited buckets, journal on."""
    values: dict[str, Any] = {
        "clock": "virtual",
        "seed": 7,
        "rate_limits": UNLIMITED,
        "webhook_background": False,
        **overrides,
    }
    return Settings(**values)


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Client:
    """Calls the ASGI app the way uvicorn would, one request at a time, on one event loop."""

    app: Starlette
    key: str = KEY
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    def call(self, method: str, path: str, body: Any = None, *, query: str = "") -> Reply:
        return self.loop.run_until_complete(self.acall(method, path, body, query=query))

    def repeat(self, count: int, method: str, path: str, body: Any = None) -> None:
        """``count`` calls in one go on the loop, so the loop's own start and stop stay out of the timing."""

        async def calls() -> None:
            for _ in range(count):
                await self.acall(method, path, body)

        self.loop.run_until_complete(calls())

    async def acall(self, method: str, path: str, body: Any = None, *, query: str = "") -> Reply:
        raw = b"" if body is None else orjson.dumps(body)
        headers = [(b"host", b"127.0.0.1:8080"), (b"x-api-key", self.key.encode())]
        if body is not None:
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
        }
        sent = False
        reply = Reply(0, [], b"")

        async def receive() -> Message:
            nonlocal sent
            if sent:  # like a client that stays connected: a streaming response ends this wait by itself
                await asyncio.Event().wait()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                reply.status, reply.headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                reply.body += message.get("body", b"")

        await self.app(scope, receive, send)
        return reply

    def close(self) -> None:
        self.app.state.emulator.close()
        self.loop.close()


def client(settings: Settings | None = None) -> Client:
    return Client(create_app(settings or bench_settings()))


def expect(reply: Reply, status: int) -> Reply:
    if reply.status != status:
        raise RuntimeError(f"expected {status}, got {reply.status}: {reply.body[:300]!r}")
    return reply


def prepare(c: Client, credits: float = 1e12) -> None:
    """Give the bench team enough credits that no create is refused (it stays metered: holds still happen)."""
    expect(c.call("PATCH", "/_mock/team", {"credits": credits}), 200)


def create_images(c: Client, count: int, body: dict[str, Any] | None = None) -> list[str]:
    ids = []
    for _ in range(count):
        ids.append(expect(c.call("POST", "/v1/images", body or IMAGE_BODY), 201).json()["id"])
    return ids


def timed(c: Client, count: int, method: str, path: str, body: Any = None) -> float:
    """CPU seconds per request, best of three rounds of ``count`` requests.

    CPU time of this process, not wall time: on a shared two-core machine, wall time mostly measures
    how long other processes held the core, while CPU time is what one request costs us.
    """
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        c.repeat(count, method, path, body)
        best = min(best, time.process_time() - started)
    return best / count


def rss_bytes() -> int:
    """Resident memory of this process now (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- the steps run.py reports -----------------------------------------------------------------------


def per_request(count: int) -> dict[str, float]:
    """Microseconds per poll, create and balance request through the app (no HTTP parsing)."""
    c = client()
    try:
        prepare(c)
        ids = create_images(c, 100)
        expect(c.call("POST", "/_mock/clock/advance", {"seconds": 3600}), 200)
        poll = f"/v1/images/{ids[0]}"
        return {
            "poll_us": timed(c, count, "GET", poll) * 1e6,
            "create_us": timed(c, max(1, count // 4), "POST", "/v1/images", IMAGE_BODY) * 1e6,
            "balance_us": timed(c, count, "GET", "/v1/balance") * 1e6,
        }
    finally:
        c.close()


def clock_advance(count: int) -> dict[str, float]:
    """Seconds for one ``POST /_mock/clock/advance`` that drives ``count`` pending generations to terminal."""
    c = client()
    try:
        prepare(c)
        create_images(c, count)
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        expect(c.call("POST", "/_mock/clock/advance", {"seconds": 3600}), 200)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        balance = expect(c.call("GET", "/v1/balance"), 200).json()
        if balance["held_credits"] != 0:
            raise RuntimeError(f"generations left unsettled after the advance: {balance}")
        return {"generations": count, "seconds": seconds, "cpu_seconds": cpu_seconds}
    finally:
        c.close()


def memory(count: int) -> dict[str, float]:
    """RSS after ``count`` image creations through the app (journal on, at its default bound)."""
    gc.collect()
    before = rss_bytes()
    c = client()
    try:
        prepare(c)
        started = time.perf_counter()
        for _ in range(count):
            c.call("POST", "/v1/images", IMAGE_BODY)
        elapsed = time.perf_counter() - started
        gc.collect()
        emulator = c.app.state.emulator
        journal_entries = len(emulator.journal.entries(emulator.accounts.team_id_of(KEY)))
        generations = emulator.store.count("generation")
        if generations != count:
            raise RuntimeError(f"{generations} generations stored, {count} expected")
        return {
            "generations": count,
            "rss_mb": rss_bytes() / 2**20,
            "rss_before_mb": before / 2**20,
            "journal_entries": journal_entries,
            "journal_bound": emulator.settings.journal_size,
            "seconds": elapsed,
        }
    finally:
        c.close()


def video_cache(duration: int, resolution: str) -> dict[str, float]:
    """Download one video output twice: the encodes the media cache counts, and each download's time."""
    c = client()
    try:
        prepare(c)
        body = {"video_lora_id": "seedance-1-pro", "resolution": resolution, "duration": duration}
        gen = expect(c.call("POST", "/v1/videos", body), 201).json()
        expect(c.call("POST", "/_mock/clock/advance", {"seconds": 3600}), 200)
        url = expect(c.call("GET", f"/v1/images/{gen['id']}"), 200).json()["output_video_url"]
        path, _, query = url.partition("://")[2].partition("/")[2].partition("?")
        media = c.app.state.emulator.media
        times, renders = [], []
        for _ in range(2):
            started = time.perf_counter()
            reply = expect(c.call("GET", "/" + path, query=query), 200)
            times.append(time.perf_counter() - started)
            renders.append(media.renders)
        return {
            "duration": duration,
            "resolution": resolution,
            "first_s": times[0],
            "second_s": times[1],
            "encodes_first": renders[0],
            "encodes_second": renders[1] - renders[0],
            "bytes": len(reply.body),
        }
    finally:
        c.close()


STEPS = {"per_request": per_request, "clock_advance": clock_advance, "memory": memory}


def main(argv: list[str]) -> None:
    """``python bench/inprocess.py STEP ARG...``: run one step in a fresh process and print its result as JSON.

    ``run.py`` starts each step this way, so that one step's memory or garbage never weighs on the next.
    """
    step, *args = argv
    if step == "video_cache":
        result = video_cache(int(args[0]), args[1])
    else:
        result = STEPS[step](int(args[0]))
    print(orjson.dumps(result).decode())  # noqa: T201


if __name__ == "__main__":
    main(sys.argv[1:])

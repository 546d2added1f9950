"""Profile the emulator's hot paths in process with pyinstrument: poll, create and balance.

    pip install -e '.[bench]'                       # pyinstrument
    python bench/hotpath.py poll                    # a call tree of 20,000 polls, in the terminal
    python bench/hotpath.py create --html out.html  # or as an HTML page
    python bench/hotpath.py poll --sections         # CPU per request by section of the pipeline

Requests go through the whole app (middleware, pipeline, journal, rendering) but not uvicorn; see
``inprocess.py``. bench/README.md says what the profiles showed and what was changed.
"""

from __future__ import annotations

import argparse
import collections
import functools
import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling modules

import inprocess

from mockserver.api import middleware, pipeline
from mockserver.api import scenarios as api_scenarios

try:
    from pyinstrument import Profiler
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("pyinstrument is missing: pip install -e '.[bench]' (or pip install pyinstrument)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/hotpath.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=["poll", "create", "balance"])
    parser.add_argument("--requests", type=int, default=20_000, help="requests to profile (creates: a quarter)")
    parser.add_argument("--html", metavar="PATH", help="write an HTML call tree instead of printing one")
    parser.add_argument("--sections", action="store_true", help="CPU per request by pipeline section instead")
    args = parser.parse_args(argv)
    if args.sections:
        return sections(args.path, args.requests)

    client = inprocess.client()
    try:
        inprocess.prepare(client)
        ids = inprocess.create_images(client, 100)
        client.call("POST", "/_mock/clock/advance", {"seconds": 3600})  # polls see finished images
        client.repeat(1000, "GET", "/v1/balance")  # warm up before sampling
        profiler = Profiler(interval=0.0002)
        with profiler:
            if args.path == "poll":
                client.repeat(args.requests, "GET", f"/v1/images/{ids[0]}")
            elif args.path == "create":
                client.repeat(args.requests // 4, "POST", "/v1/images", inprocess.IMAGE_BODY)
            else:
                client.repeat(args.requests, "GET", "/v1/balance")
    finally:
        client.close()
    if args.html:
        Path(args.html).write_text(profiler.output_html(), encoding="utf-8")
    else:
        print(profiler.output_text(unicode=True, color=False))  # noqa: T201
    return 0


SPENT: collections.Counter[str] = collections.Counter()


def _timed(section: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` adding its CPU time to ``SPENT[section]`` (2–3 µs of overhead per call)."""
    clock = time.thread_time_ns
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return await function(*args, **kwargs)
            finally:
                SPENT[section] += clock() - started

        return timed_async

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[section] += clock() - started

    return timed


def sections(path: str, requests: int) -> int:
    """CPU µs per request spent in each part of the pipeline, the rest being middleware, Starlette and client."""
    client = inprocess.client()
    emulator = client.app.state.emulator
    try:
        inprocess.prepare(client)
        ids = inprocess.create_images(client, 100)
        client.call("POST", "/_mock/clock/advance", {"seconds": 3600})
        method, target, body = {
            "poll": ("GET", f"/v1/images/{ids[0]}", None),
            "create": ("POST", "/v1/images", inprocess.IMAGE_BODY),
            "balance": ("GET", "/v1/balance", None),
        }[path]
        for name, owner, attribute in (
            ("request ids (middleware)", emulator.ids, "new"),
            ("authentication", emulator.accounts, "authenticate"),
            ("team clock", emulator.accounts, "now"),
            ("settlement check", emulator.generations, "settle_due"),
            ("settlement check", emulator.characters, "settle_due"),
            ("rate limit", emulator.limiter, "take"),
            ("scenario resolution", api_scenarios, "apply"),
            ("scenario resolution + handler", pipeline, "_handle"),
            ("journal", pipeline, "record"),
            ("response headers (pipeline)", pipeline, "assign_raw"),
            ("response headers (middleware)", middleware, "assign"),
        ):
            setattr(owner, attribute, _timed(name, getattr(owner, attribute)))
        client.repeat(1000, method, target, body)
        SPENT.clear()
        started = time.thread_time_ns()
        client.repeat(requests, method, target, body)
        total = time.thread_time_ns() - started
    finally:
        client.close()
    SPENT["handler (read, render, JSON)"] = SPENT.pop("scenario resolution + handler") - SPENT["scenario resolution"]
    print(f"| {path}: section | CPU µs per request |\n|---|---:|")  # noqa: T201
    for name, spent in SPENT.most_common():
        print(f"| {name} | {spent / requests / 1000:.1f} |")  # noqa: T201
    rest = (total - sum(SPENT.values())) / requests / 1000
    print(f"| the rest: pipeline glue, middleware, Starlette, the in-process client | {rest:.1f} |")  # noqa: T201
    print(f"| **total** (timing adds 2–3 µs per section) | **{total / requests / 1000:.1f}** |")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Profile the emulator's hot paths in process with pyinstrument: poll, create and balance.

    pip install -e '.[bench]'                       # pyinstrument
    python bench/hotpath.py poll                    # a call tree of 20,000 polls, in the terminal
    python bench/hotpath.py create --html out.html  # or as an HTML page

Requests go through the whole app (middleware, pipeline, journal, rendering) but not uvicorn; see
``inprocess.py``. bench/README.md says what the profiles showed and what was changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling modules

import inprocess

try:
    from pyinstrument import Profiler
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("pyinstrument is missing: pip install -e '.[bench]' (or pip install pyinstrument)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/hotpath.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=["poll", "create", "balance"])
    parser.add_argument("--requests", type=int, default=20_000, help="requests to profile (creates: a quarter)")
    parser.add_argument("--html", metavar="PATH", help="write an HTML call tree instead of printing one")
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())

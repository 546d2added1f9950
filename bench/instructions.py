"""Instructions per request: the emulator served over HTTP under callgrind, one connection, counted, not timed.

    python bench/instructions.py                      # poll, create and balance, the working tree
    python bench/instructions.py --compare-ref HEAD~3 # and the emulator as of a git ref, side by side

CPU time on a shared virtual machine moves by ±15 % from one run to the next, more than most changes to the hot
path; an instruction count does not (the same tree gives the same count to within 0.3 %, whatever else the
machine does). The server runs under ``valgrind --tool=callgrind`` with counting off while it starts and while
the requests warm it up; it is switched on for the measured requests only (``callgrind_control``), so the count
is the server's whole per-request work: uvicorn and httptools, the event loop, the app. One sequential client on
one keep-alive connection: what a request costs, not how requests queue. Memory stalls are not counted: read it
beside the CPU time of run.py, not instead of it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling modules

import loadgen
import report
from inprocess import IMAGE_BODY, KEY, UNLIMITED
from loadgen import ROOT

WORKLOADS = ("poll", "create", "balance")
POLL_IDS = 20
WARM_UP = 300
INSTALL = "apt-get install valgrind"


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


@contextmanager
def _counted_server(source: Path | None, out: Path) -> Iterator[tuple[int, str]]:
    """``python -m mockserver serve`` under callgrind, counting off; ``source``: an older tree (its directory first
    on the path, as run.py's ``before``). Yields the process id (valgrind's is the server's) and the base URL."""
    port = loadgen.free_port()
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--clock", "virtual", "--seed", "7",
        "--log-level", "warning",
    ]  # fmt: skip
    env = {"AUROUS_MOCK_RATE_LIMITS": json.dumps(UNLIMITED)}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    with loadgen.Server("counted", command, port, env=env, key=KEY, cwd=source or ROOT) as server:
        assert server.process is not None
        yield server.process.pid, server.base_url


def _control(pid: int, *options: str) -> None:
    subprocess.run(["callgrind_control", *options, str(pid)], check=True, capture_output=True)


def measure(workload: str, requests: int, source: Path | None = None, *, warm_up: int = WARM_UP) -> float:
    """Instructions the server executes per ``workload`` request, over ``requests`` counted ones."""
    return rounds(workload, requests, 1, source, warm_up=warm_up)[0]


def rounds(
    workload: str, requests: int, count: int, source: Path | None = None, *, warm_up: int = WARM_UP
) -> list[float]:
    """Instructions per ``workload`` request in each of ``count`` rounds of ``requests``, one server for all: each
    round is a dump of its own (a dump starts the next count from zero)."""
    with tempfile.TemporaryDirectory(prefix="aurous-callgrind-") as scratch:
        out = Path(scratch) / "callgrind.out"
        with _counted_server(source, out) as (pid, base_url):
            with httpx.Client(base_url=base_url, headers={"X-Api-Key": KEY}, timeout=120) as client:
                client.patch("/_mock/team", json={"credits": 1e12}).raise_for_status()
                ids = [client.post("/v1/images", json=IMAGE_BODY).json()["id"] for _ in range(POLL_IDS)]
                client.post("/_mock/clock/advance", json={"seconds": 3600}).raise_for_status()

                def run(count: int) -> None:
                    for n in range(count):
                        if workload == "poll":
                            reply = client.get(f"/v1/images/{ids[n % POLL_IDS]}")
                        elif workload == "create":
                            reply = client.post("/v1/images", json=IMAGE_BODY)
                        else:
                            reply = client.get("/v1/balance")
                        reply.raise_for_status()

                run(warm_up)
                for _ in range(count):
                    _control(pid, "--instr=on")
                    run(requests)
                    _control(pid, "--instr=off")
                    _control(pid, "--dump")
        dumps = [Path(scratch) / f"callgrind.out.{n}" for n in range(1, count + 1)]  # the last file: counting off
        return [_summary(dump) / requests for dump in dumps]


def _summary(path: Path) -> int:
    """The events a callgrind output file counted (its ``totals:`` line; a dump's ``summary:`` says 0)."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    return 0


def measure_all(requests: int, source: Path | None = None) -> dict[str, float]:
    return {workload: measure(workload, requests, source) for workload in WORKLOADS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/instructions.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="counted requests per workload (1000)")
    parser.add_argument("--compare-ref", metavar="GIT_REF", help="also count the emulator as of GIT_REF")
    args = parser.parse_args(argv)
    if not available():
        sys.exit(f"valgrind is missing ({INSTALL})")
    results = {"emulator": measure_all(args.requests)}
    if args.compare_ref:
        with tempfile.TemporaryDirectory(prefix="aurous-bench-ref-") as tree:
            results["before"] = measure_all(args.requests, loadgen.export_ref(args.compare_ref, Path(tree)))
    print(report.instructions_table({"instructions": results, "meta": {"compare_ref": args.compare_ref}}))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

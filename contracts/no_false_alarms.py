"""The kit never cries wolf: ``--profile full`` against one long-running emulator, seed after seed, a fresh key each
time, then more runs while a :class:`~contracts.neighbour.NoisyNeighbour` works in the same team. Every run must
end with no finding and exit 0.

    python -m contracts.no_false_alarms                       # seeds 1–20, then 5 noisy runs (seeds 21–25)
    python -m contracts.no_false_alarms --seeds 3 --noisy 1   # the short version CI runs (with fewer examples)
    python -m contracts.no_false_alarms --target http://127.0.0.1:8080

Without ``--target`` it starts ``aurous-mock serve --clock virtual --port 0`` itself (a subprocess: the kit never
imports the emulator) and stops it at the end. It prints one line per run (exit code, findings, wall time) and each
finding of a run that had any; its own exit code is 0 only when every run was clean.
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import contracts
from contracts.check import FULL
from contracts.neighbour import NoisyNeighbour
from contracts.report import CheckResult
from contracts.targets import Target

__all__ = ["Run", "emulator", "main", "soak"]

# The function, bound on the package again: importing the `contracts.check` submodule binds the module under its name.
check: Callable[..., CheckResult] = contracts.__getattr__("check")
BANNER = re.compile(r"serving on (http://\S+)")
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Run:
    seed: int
    noisy: bool
    exit_code: int
    findings: int
    seconds: float
    summary: str
    neighbour_actions: int = 0


@contextmanager
def emulator(python: str = sys.executable) -> Iterator[str]:
    """``aurous-mock serve --clock virtual --port 0`` in a subprocess; yields its URL, stops it on exit."""
    command = [python, "-m", "mockserver", "serve", "--clock", "virtual", "--port", "0", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, deadline = None, time.monotonic() + START_TIMEOUT
        while url is None and time.monotonic() < deadline and process.stdout is not None:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            found = BANNER.search(line)
            url = found.group(1) if found else None
        if url is None:
            raise RuntimeError(f"the emulator did not start: {' '.join(command)}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _one(url: str, seed: int, *, noisy: bool, max_examples: int, report: str | None) -> Run:
    key = f"al_live_{secrets.token_hex(16)}"  # a fresh key: a new team, as a new user's CI would have
    target = Target.from_url(url, api_key=key)
    options = {"profile": FULL, "seed": seed, "max_examples": max_examples}
    folder = None if report is None else f"{report}/{'noisy-' if noisy else ''}seed-{seed}"
    started = time.monotonic()
    neighbour = NoisyNeighbour(url, key, seed=seed) if noisy else None
    result: CheckResult
    if neighbour is None:
        result = check(target, report_dir=folder, **options)
    else:
        with neighbour:
            result = check(target, report_dir=folder, **options)
    seconds = time.monotonic() - started
    actions = neighbour.total if neighbour is not None else 0
    return Run(seed, noisy, result.exit_code, len(result.findings), seconds, result.summary(), actions)


def soak(
    url: str,
    seeds: int,
    noisy: int,
    *,
    max_examples: int = 10,
    report: str | None = None,
    progress: Callable[[str], None] | None = None,
    first_seed: int = 1,
) -> list[Run]:
    """``seeds`` quiet runs (seeds ``first_seed``…), then ``noisy`` runs with a neighbour (the seeds after them)."""
    runs = []
    quiet = range(first_seed, first_seed + seeds)
    plan = [(seed, False) for seed in quiet] + [(first_seed + seeds + n, True) for n in range(noisy)]
    for seed, busy in plan:
        run = _one(url, seed, noisy=busy, max_examples=max_examples, report=report)
        runs.append(run)
        if progress is not None:
            extra = f", neighbour made {run.neighbour_actions} requests" if busy else ""
            progress(
                f"{'noisy' if busy else 'quiet'} seed {seed}: exit {run.exit_code}, {run.findings} finding(s), "
                f"{run.seconds:.1f} s{extra}"
            )
            if run.exit_code != 0:
                progress(run.summary)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.no_false_alarms", description=__doc__.split("\n")[0])
    parser.add_argument("--target", metavar="URL", help="a running emulator (default: start one)")
    parser.add_argument("--seeds", type=int, default=20, help="quiet runs, seeds 1…N (default 20)")
    parser.add_argument("--first-seed", type=int, default=1, help="the first quiet run's seed (default 1)")
    parser.add_argument("--noisy", type=int, default=5, help="runs with the noisy neighbour (default 5)")
    parser.add_argument("--max-examples", type=int, default=10, help="as check --max-examples (default 10)")
    parser.add_argument("--report", metavar="DIR", help="write each run's report under DIR")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)  # noqa: T201

    with _target(args.target) as url:
        runs = soak(
            url,
            args.seeds,
            args.noisy,
            max_examples=args.max_examples,
            report=args.report,
            progress=say,
            first_seed=args.first_seed,
        )
    clean = sum(run.exit_code == 0 for run in runs)
    slowest = max((run.seconds for run in runs), default=0.0)
    say(f"{clean} of {len(runs)} runs clean; slowest {slowest:.1f} s")
    return 0 if clean == len(runs) else 1


@contextmanager
def _target(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url.rstrip("/")
        return
    with emulator() as started:
        yield started


if __name__ == "__main__":
    sys.exit(main())

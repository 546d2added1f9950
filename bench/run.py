"""Benchmark harness for issue 7: the emulator against bare Starlette and Prism, on loopback, with wrk; and
the uvicorn floor (a plain ASGI callable) under the Starlette baseline, for what the server itself costs.

    python bench/run.py                      # the full run (about 15 minutes on 2 cores)
    python bench/run.py --quick              # short runs and small workloads (about 2 minutes)
    python bench/run.py --json out.json      # also write every measurement as JSON

It installs nothing: when wrk or Prism is missing it says what to install and measures the rest. See
bench/README.md for what each number means and the latest results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling modules

import instructions
import loadgen
import redis_step
import report
from inprocess import IMAGE_BODY, KEY, UNLIMITED
from loadgen import BENCH, ROOT, Load, Server

POLL_IDS = 50  # finished and 50 pending generations the polls cycle through
EMULATORS = (report.EMULATOR, report.BEFORE)


@dataclass(frozen=True)
class Plan:
    """What one run measures, from the command line."""

    duration: float
    connections: int
    threads: int
    repeat: int
    cold_runs: int
    generations: int
    advance: int
    per_request: int
    image_first: int
    video_first: int
    video: tuple[int, str]
    http: bool
    prism: bool
    redis: bool
    only_redis: bool
    compare_ref: str | None
    instructions: bool = False

    def wrk(self, server: Server, load: Load, duration: float | None = None) -> dict[str, Any]:
        """One wrk run with this plan's connections and threads."""
        return loadgen.run_wrk(
            server, load, duration=duration or self.duration, connections=self.connections, threads=self.threads
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        quick = args.quick
        return cls(
            duration=args.duration or (3.0 if quick else 10.0),
            connections=args.connections,
            threads=args.threads,
            repeat=args.repeat or (1 if quick else 3),
            cold_runs=1 if quick else 5,
            generations=args.generations or (5_000 if quick else report.TARGET_GENERATIONS),
            advance=2_000 if quick else report.TARGET_ADVANCE,
            per_request=2_000 if quick else 20_000,
            image_first=3 if quick else 20,
            video_first=1 if quick else 2,
            video=(2, "480p") if quick else report.TARGET_VIDEO,
            http=not args.no_http,
            prism=not args.no_prism,
            redis=not args.no_redis and not args.no_http,
            only_redis=args.only_redis,
            compare_ref=args.compare_ref,
            instructions=args.instructions,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, small workloads (a smoke test)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10; quick 3)")
    parser.add_argument("--connections", type=int, default=report.TARGET_CONNECTIONS, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1: the other core is the server's)")
    parser.add_argument("--repeat", type=int, help="interleaved runs per workload and server (default 3; quick 1)")
    parser.add_argument("--generations", type=int, help="generations for the memory step (default 100000)")
    parser.add_argument("--no-http", action="store_true", help="only the in-process steps (no servers, no wrk)")
    parser.add_argument("--no-prism", action="store_true", help="skip the Prism baseline")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis step (emulator on --store redis)")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions per request under callgrind (valgrind)"
    )
    parser.add_argument("--only-redis", action="store_true", help="only the Redis step (and its targets)")
    parser.add_argument(
        "--compare-ref", metavar="GIT_REF", help="also run the emulator as of GIT_REF (git archive): before/after"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a measured target fails")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = Plan.from_args(args)
    results: dict[str, Any] = {"meta": _meta(plan, argv), "http": {}, "cold_start": {}, "inprocess": {}}
    skipped: list[str] = results["meta"]["skipped"]
    if plan.http and loadgen.wrk_binary() is None:
        skipped.append(f"HTTP workloads and cold starts: wrk is not installed ({loadgen.INSTALL_WRK})")
    elif plan.http and not plan.only_redis:
        prism = plan.prism and loadgen.prism_binary() is not None
        if plan.prism and not prism:
            skipped.append(f"Prism baseline: not installed (from the repository root: {loadgen.INSTALL_PRISM})")
        _http_steps(plan, results, prism=prism)
    if plan.redis and loadgen.wrk_binary() is not None:
        if shutil.which("redis-server") is None:
            skipped.append(f"the Redis step: redis-server is not installed ({redis_step.INSTALL_REDIS})")
        else:
            results["redis"] = redis_step.measure(lambda server, load: plan.wrk(server, load), plan.repeat, _log)
    if not plan.only_redis:
        results["inprocess"] = _inprocess_steps(plan)
    if plan.compare_ref and not plan.only_redis:
        with tempfile.TemporaryDirectory(prefix="aurous-bench-ref-") as tree:
            source = loadgen.export_ref(plan.compare_ref, Path(tree))
            results["inprocess_before"] = _inprocess_steps(plan, only=("per_request",), source=source)
            if plan.instructions and instructions.available():
                _log(f"instructions per request under callgrind ({plan.compare_ref})")
                results.setdefault("instructions", {})["before"] = instructions.measure_all(1000, source)
    if plan.instructions and not instructions.available():
        skipped.append(f"instructions per request: valgrind is not installed ({instructions.INSTALL})")
    elif plan.instructions and not plan.only_redis:
        _log("instructions per request under callgrind")
        results.setdefault("instructions", {})["emulator"] = instructions.measure_all(1000)
    results["ratios"] = report.ratios(results["http"])
    results["targets"] = report.targets(results)
    print(report.markdown(results))  # noqa: T201
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    failed = report.gate(results["targets"])
    if failed:
        _log(f"targets failed: {', '.join(failed)}")
    return 1 if args.strict and failed else 0


def _meta(plan: Plan, argv: Sequence[str] | None) -> dict[str, Any]:
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "command": f"python bench/run.py {shown}".strip(),
        "duration": plan.duration,
        "connections": plan.connections,
        "threads": plan.threads,
        "repeat": plan.repeat,
        "load_average": os.getloadavg(),
        "wrk": loadgen.tool_version(["wrk", "--version"]) if loadgen.wrk_binary() else None,
        "prism": loadgen.PRISM_VERSION if loadgen.prism_binary() else None,
        "compare_ref": plan.compare_ref,
        "skipped": [],
    }


def _log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)  # noqa: T201


# --- HTTP: the servers under wrk ----------------------------------------------------------------------------


def _emulator(port: int, source: Path | None = None) -> Server:
    """``aurous-mock serve``; with ``source``, the older tree there (``--compare-ref``), as ``before``."""
    # Buckets far above anything the load sends: the limiter still runs, but never answers 429.
    env = {"AUROUS_MOCK_RATE_LIMITS": json.dumps(UNLIMITED)}
    if source is None:
        return Server(report.EMULATOR, loadgen.emulator_command(port), port, env=env, key=KEY)
    env["PYTHONPATH"] = str(source)
    return Server(report.BEFORE, loadgen.emulator_command(port, module=True), port, env=env, key=KEY, cwd=source)


def _starlette(port: int, files: Path) -> Server:
    return Server(
        report.STARLETTE,
        loadgen.uvicorn_command("baseline_app:app", port),
        port,
        env={"BENCH_FILES": str(files)},
        key=KEY,
    )


def _floor(port: int) -> Server:
    """The uvicorn floor: a plain ASGI callable with the Starlette baseline's API answers, same uvicorn."""
    return Server(report.FLOOR, loadgen.uvicorn_command("baseline_app:floor", port), port, key=KEY)


def _prism(port: int) -> Server:
    return Server(report.PRISM, loadgen.prism_command(port), port, key=KEY)


@dataclass
class Seeded:
    """What the load needs from the emulator: generations to poll and output URLs to download."""

    poll_ids: list[str]
    image_urls: list[str]  # the first one is the cached download, the rest are downloaded once each
    video_urls: list[str]


def _seed(server: Server, plan: Plan) -> Seeded:
    with httpx.Client(base_url=server.base_url, headers={"X-Api-Key": KEY}, timeout=60) as client:

        def create(path: str, body: dict[str, Any]) -> str:
            reply = client.post(path, json=body)
            reply.raise_for_status()
            return str(reply.json()["id"])

        client.patch("/_mock/team", json={"credits": 1e12}).raise_for_status()  # metered: holds still happen
        done = [create("/v1/images", IMAGE_BODY) for _ in range(POLL_IDS)]
        images = [create("/v1/images", {**IMAGE_BODY, "seed": seed}) for seed in range(1, plan.image_first + 2)]
        duration, resolution = plan.video
        video = {"video_lora_id": "seedance-1-pro", "duration": duration, "resolution": resolution}
        videos = [create("/v1/videos", {**video, "seed": seed}) for seed in range(1, plan.video_first + 2)]
        client.post("/_mock/clock/advance", json={"seconds": 3600}).raise_for_status()
        pending = [create("/v1/images", IMAGE_BODY) for _ in range(POLL_IDS)]
        image_urls = [client.get(f"/v1/images/{gen}").json()["output_urls"][0] for gen in images]
        video_urls = [client.get(f"/v1/images/{gen}").json()["output_video_url"] for gen in videos]
    return Seeded(done + pending, image_urls, video_urls)


def _path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _http_steps(plan: Plan, results: dict[str, Any], *, prism: bool) -> None:
    loadgen.compile_bytecode(ROOT / "mockserver")
    with tempfile.TemporaryDirectory(prefix="aurous-bench-") as scratch:
        files, source = Path(scratch) / "files", None
        files.mkdir()
        if plan.compare_ref:
            source = loadgen.export_ref(plan.compare_ref, Path(scratch) / "ref")
        results["cold_start"] = _cold_starts(plan, source)
        servers = [_emulator(loadgen.free_port()), _starlette(loadgen.free_port(), files), _floor(loadgen.free_port())]
        if source is not None:
            servers.insert(1, _emulator(loadgen.free_port(), source))
        if prism:
            servers.append(_prism(loadgen.free_port()))
        try:
            for server in servers:
                _log(f"starting {server.name}")
                server.start()
                results["cold_start"].setdefault(server.name, {})["first_start_s"] = server.startup_seconds
            seeded = {server.name: _seed(server, plan) for server in servers if server.name in EMULATORS}
            _api_loads(plan, servers, seeded, results["http"])
            by_name = {server.name: server for server in servers}
            emulator, starlette = by_name[report.EMULATOR], by_name[report.STARLETTE]
            _downloads(plan, emulator, starlette, seeded[report.EMULATOR], files, results["http"])
            results["server_rss_mb"] = emulator.rss_bytes() / 2**20
        finally:
            for server in servers:
                server.stop()


def _cold_starts(plan: Plan, source: Path | None) -> dict[str, Any]:
    """Seconds from spawning each server to its first 200, on fresh processes (median of several)."""
    makers: list[Callable[[int], Server]] = [_emulator, lambda port: _starlette(port, BENCH)]
    if source is not None:
        makers.insert(1, lambda port: _emulator(port, source))
    found: dict[str, Any] = {}
    for make in makers:
        runs = []
        for _ in range(plan.cold_runs):
            with make(loadgen.free_port()) as server:
                runs.append(server.startup_seconds)
        found[server.name] = {"runs": runs, "median_s": statistics.median(runs)}
        _log(f"cold start {server.name}: {found[server.name]['median_s']:.3f} s")
    return found


def _loads(seeded: Seeded | None) -> dict[str, Load]:
    ids = tuple(seeded.poll_ids) if seeded else ("img_01JZ0000000000000000000000",)  # baselines ignore the id
    return {
        "poll": Load("poll.lua", ids=ids),
        "mix": Load("mix.lua", ids=ids),
        "balance": Load("get.lua", path="/v1/balance"),
    }


def _api_loads(plan: Plan, servers: list[Server], seeded: dict[str, Seeded], http: dict[str, Any]) -> None:
    """Each workload on each server, ``repeat`` times, interleaved so that a burst of noise hits every server."""
    loads = {server.name: _loads(seeded.get(server.name)) for server in servers}
    for server in servers:  # a short warm-up: first requests allocate what later ones reuse
        plan.wrk(server, loads[server.name]["poll"], duration=1)
    for round_ in range(plan.repeat):
        for workload in ("poll", "mix", "balance"):
            for server in servers:
                run = plan.wrk(server, loads[server.name][workload])
                http.setdefault(workload, {}).setdefault(server.name, {"runs": []})["runs"].append(run)
                _log(f"round {round_ + 1} {workload} {server.name}: {run['rps']:.0f} req/s, p99 {run['p99_ms']:.1f} ms")
    for by_server in http.values():
        for entry in by_server.values():
            entry["median"] = report.median_run(entry["runs"])


def _downloads(
    plan: Plan, emulator: Server, starlette: Server, seeded: Seeded, files: Path, http: dict[str, Any]
) -> None:
    """(d): each output downloaded once (timed one by one: every first download renders), then one output
    under wrk (cached), against bare Starlette serving the same bytes with ``FileResponse``."""
    for kind, urls in (("image", seeded.image_urls), ("video", seeded.video_urls)):
        cached, firsts = urls[0], urls[1:]
        http[f"{kind}_first"] = {report.EMULATOR: _first_downloads(firsts)}
        body = httpx.get(cached, timeout=300).content  # renders it: from now on it is cached
        name = f"{kind}.{'png' if kind == 'image' else 'mp4'}"
        (files / name).write_bytes(body)
        entry: dict[str, Any] = {}
        for round_ in range(plan.repeat):
            for server, path in ((emulator, _path_of(cached)), (starlette, f"/files/{name}")):
                run = plan.wrk(server, Load("get.lua", path=path))
                entry.setdefault(server.name, {"runs": []})["runs"].append(run)
                _log(f"round {round_ + 1} {kind} cached {server.name}: {run['rps']:.0f} req/s")
        for server_entry in entry.values():
            server_entry["median"] = report.median_run(server_entry["runs"])
        http[f"{kind}_cached"] = entry


def _first_downloads(urls: list[str]) -> dict[str, Any]:
    times, failed = [], 0
    with httpx.Client(timeout=600) as client:
        for url in urls:
            started = time.perf_counter()
            reply = client.get(url)
            times.append(time.perf_counter() - started)
            failed += reply.status_code != 200
    mean = statistics.fmean(times)
    run = {
        "requests": len(times),
        "rps": 1 / mean,
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": _percentile(times, 0.99) * 1000,
        "non2xx": failed,
        "socket_errors": 0,
    }
    _log(f"first downloads: {len(times)}, median {run['p50_ms']:.0f} ms")
    return {"runs": [run], "median": report.median_run([run])}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- in process ---------------------------------------------------------------------------------------------


def _inprocess_steps(plan: Plan, only: Sequence[str] = (), source: Path | None = None) -> dict[str, Any]:
    """Each step in a fresh Python process (``inprocess.py``), so none inherits another's memory; with
    ``source``, against the emulator found there (``--compare-ref``)."""
    steps = {
        "per_request": [str(plan.per_request)],
        "clock_advance": [str(plan.advance)],
        "memory": [str(plan.generations)],
        "video_cache": [str(plan.video[0]), plan.video[1]],
    }
    env = {**os.environ, "PYTHONPATH": str(source)} if source is not None else None
    found = {}
    for step, args in steps.items():
        if only and step not in only:
            continue
        _log(f"in process: {step} {' '.join(args)}" + (f" ({plan.compare_ref})" if source else ""))
        done = subprocess.run(
            [sys.executable, str(BENCH / "inprocess.py"), step, *args],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            env=env,
        )
        if done.returncode != 0:
            raise RuntimeError(f"in-process step {step} failed:\n{done.stderr}")
        found[step] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


if __name__ == "__main__":
    sys.exit(main())

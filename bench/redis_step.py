"""Redis as a first-class backend (issue 18 §3), a step of ``run.py``: the emulator on ``--store redis://…``
against the same emulator in memory, same run, same machine, one worker each; and ``--workers 2`` on Redis.

Workloads: (a) polls of seeded generations (``poll.lua``) and (e) creates (``create.lua``, rotating through
``KEYS`` teams as a CI fleet's tests would). Each wrk run also measures the CPU that ``redis-server`` spent, so
the cost of a request on Redis is the worker's CPU plus Redis's. Two cores cannot show what a second worker
adds to the total (wrk needs one, the workers and Redis share the other): for ``--workers 2`` the step reports
requests/s and CPU per request, which is what a machine with spare cores would multiply.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import loadgen
import report
from inprocess import IMAGE_BODY, KEY, UNLIMITED
from loadgen import Load, Server

KEYS = 32  # teams the create load rotates through
POLL_IDS = 50  # finished generations, and as many pending, that the polls cycle through
INSTALL_REDIS = "apt-get install redis-server"
Wrk = Callable[[Server, Load], dict[str, Any]]


def create_keys() -> tuple[str, ...]:
    return tuple(f"al_live_{n:064x}" for n in range(1, KEYS + 1))


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A throw-away ``redis-server`` on a free loopback port, nothing saved: ``(url, pid)``; stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(f"redis-server is not installed: {INSTALL_REDIS}")
    with tempfile.TemporaryDirectory(prefix="aurous-bench-redis-") as directory:
        port = loadgen.free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""]
        command += ["--appendonly", "no", "--daemonize", "no"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(port, process)
            yield f"redis://127.0.0.1:{port}/0", process.pid
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    import redis  # the emulator's own dependency

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(redis.RedisError):
            if redis.Redis(port=port).ping():
                return
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def emulator(name: str, store: str, *, workers: int = 1) -> Server:
    """``aurous-mock serve`` on ``store`` with ``workers`` processes; its CPU counted over all of them."""
    port = loadgen.free_port()
    command = [*loadgen.emulator_command(port), "--store", store, "--workers", str(workers)]
    env = {"AUROUS_MOCK_RATE_LIMITS": json.dumps(UNLIMITED)}
    return Server(name, command, port, env=env, key=KEY, group=True)


def seed(server: Server) -> list[str]:
    """Credits for every key the loads use, and generations to poll: half finished, half pending."""
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for key in (KEY, *create_keys()):
            client.patch("/_mock/team", json={"credits": 1e12}, headers={"X-Api-Key": key}).raise_for_status()
        headers = {"X-Api-Key": KEY}

        def create() -> str:
            reply = client.post("/v1/images", json=IMAGE_BODY, headers=headers)
            reply.raise_for_status()
            return str(reply.json()["id"])

        done = [create() for _ in range(POLL_IDS)]
        client.post("/_mock/clock/advance", json={"seconds": 3600}, headers=headers).raise_for_status()
        return done + [create() for _ in range(POLL_IDS)]


def measure(wrk: Wrk, repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The workloads on every server, ``repeat`` rounds interleaved; medians per workload and server."""
    found: dict[str, Any] = {}
    with redis_server() as (url, redis_pid):
        servers = [
            emulator(report.REDIS_MEMORY, "memory"),
            emulator(report.REDIS_ONE, f"{url}?prefix=bench-one"),
            emulator(report.REDIS_TWO, f"{url}?prefix=bench-two", workers=2),
        ]
        try:
            loads = {}
            for server in servers:
                log(f"starting {server.name}")
                server.start()
                ids = tuple(seed(server))
                loads[server.name] = {
                    "poll": Load("poll.lua", ids=ids),
                    "create": Load("create.lua", keys=create_keys()),
                }
                wrk(server, loads[server.name]["poll"])  # warm-up (and the caches of the lease holder)
            for round_ in range(repeat):
                for workload in ("poll", "create"):
                    for server in servers:
                        before = loadgen.process_cpu_seconds(redis_pid)
                        run = wrk(server, loads[server.name][workload])
                        spent = loadgen.process_cpu_seconds(redis_pid) - before
                        run["redis_cpu_us"] = spent / run["requests"] * 1e6 if run["requests"] else None
                        found.setdefault(workload, {}).setdefault(server.name, {"runs": []})["runs"].append(run)
                        log(f"redis round {round_ + 1} {workload} {server.name}: {run['rps']:.0f} req/s")
        finally:
            for server in servers:
                server.stop()
    for by_server in found.values():
        for entry in by_server.values():
            entry["median"] = report.median_run(entry["runs"])
    return found

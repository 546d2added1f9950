"""Servers under test as subprocesses on free loopback ports, and wrk runs against them.

Every server runs in its own process group and is always stopped (``Server`` is a context manager), and
every wrk run has a fixed duration, so a benchmark never leaves anything behind or runs unbounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua"
PRISM_DIR = BENCH / ".prism"
PRISM_BIN = PRISM_DIR / "node_modules" / ".bin" / "prism"
PRISM_VERSION = "5.14.2"
INSTALL_WRK = "apt-get install wrk   (Debian/Ubuntu; or build https://github.com/wg/wrk)"
INSTALL_PRISM = f"npm install --prefix bench/.prism @stoplight/prism-cli@{PRISM_VERSION}"
READY_TIMEOUT = 60.0
RESULT_MARK = "BENCH_RESULT "


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def prism_binary() -> Path | None:
    return PRISM_BIN if PRISM_BIN.exists() else None


def tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def uvicorn_command(app: str, port: int) -> list[str]:
    """The bare baseline under uvicorn with what ``aurous-mock serve`` uses: one worker, loop and http
    ``auto`` (uvloop, httptools), lifespan on, access log off."""
    return [
        sys.executable, "-m", "uvicorn", app, "--app-dir", str(BENCH), "--host", "127.0.0.1", "--port", str(port),
        "--loop", "auto", "--http", "auto", "--lifespan", "on", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def emulator_command(port: int, *, module: bool = False) -> list[str]:
    """``aurous-mock serve`` (``python -m mockserver serve`` with ``module``: the source in the working directory)."""
    script = Path(sys.executable).with_name("aurous-mock")
    start = [str(script)] if script.exists() and not module else [sys.executable, "-m", "mockserver"]
    return [*start, "serve", "--port", str(port), "--clock", "virtual", "--seed", "7", "--log-level", "warning"]


def export_ref(ref: str, into: Path) -> Path:
    """The emulator's source at git ``ref`` under ``into`` (``git archive``), byte-compiled, to run beside ours."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "mockserver", "openapi.yaml", "control-openapi.yaml"],
        capture_output=True,
        check=True,
    )
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    compile_bytecode(into / "mockserver")
    return into


def compile_bytecode(*packages: Path) -> None:
    """Write ``.pyc`` files as an installed package has them (this machine sets PYTHONDONTWRITEBYTECODE=1,
    which would otherwise make every cold start compile the emulator from source)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *map(str, packages)], check=True)


def prism_command(port: int) -> list[str]:
    return [str(PRISM_BIN), "mock", str(ROOT / "openapi.yaml"), "-h", "127.0.0.1", "-p", str(port)]


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def group_pids(pgid: int) -> list[int]:
    """The processes of process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text(encoding="ascii").rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # pgrp
                found.append(int(entry.name))
    return found


@dataclass
class Server:
    """One server under test: started on ``port``, ready when ``ready_path`` answers 200."""

    name: str
    command: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    key: str = ""
    cwd: Path = ROOT
    ready_path: str = "/v1/balance"
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0
    group: bool = False  # count the CPU of its whole process group (workers), not only of the process started

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends the server and any children it forked
        )
        self.startup_seconds = self._wait_ready(started)
        return self

    def _wait_ready(self, started: float) -> float:
        """Seconds from spawning the process to the first 200 on ``ready_path``."""
        deadline = started + READY_TIMEOUT
        headers = {"X-Api-Key": self.key} if self.key else {}
        with httpx.Client(timeout=1.0) as client:
            while time.perf_counter() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with status {self.process.returncode} while starting")
                try:
                    if client.get(self.base_url + self.ready_path, headers=headers).status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
        raise RuntimeError(f"{self.name} did not answer 200 on {self.ready_path} within {READY_TIMEOUT:.0f} s")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's process has used so far; with ``group``, every process of its
        group (``serve --workers N``: the supervisor and its workers)."""
        assert self.process is not None
        if not self.group:
            return process_cpu_seconds(self.process.pid)
        return sum(process_cpu_seconds(pid) for pid in group_pids(self.process.pid))

    def rss_bytes(self) -> int:
        assert self.process is not None
        try:
            text = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        except OSError:
            return 0
        line = next((line for line in text.splitlines() if line.startswith("VmRSS:")), "VmRSS: 0 kB")
        return int(line.split()[1]) * 1024

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid  # the group this process leads (start_new_session)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Load:
    """One wrk run: a Lua script from ``bench/lua`` and its inputs."""

    script: str
    path: str = "/"
    ids: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # BENCH_KEYS: the keys create.lua rotates through


def run_wrk(server: Server, load: Load, *, duration: float, connections: int, threads: int) -> dict[str, Any]:
    """Drive ``server`` for ``duration`` seconds; requests/s, p50/p99 (ms) and the failed answers."""
    wrk = wrk_binary()
    if wrk is None:
        raise RuntimeError(f"wrk is not installed: {INSTALL_WRK}")
    env = {**os.environ, "BENCH_KEY": server.key, "BENCH_PATH": load.path, "BENCH_IDS": ",".join(load.ids)}
    env["BENCH_KEYS"] = ",".join(load.keys or (server.key,))
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "10s",
        "-s", str(LUA / load.script), server.base_url,
    ]  # fmt: skip
    cpu = server.cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=duration + 60, check=False)
    cpu = server.cpu_seconds() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    result = parse_wrk(done.stdout)
    # The server's own CPU per answer: unlike requests/s, it hardly moves when other processes share the cores.
    result["server_cpu_us"] = cpu / result["requests"] * 1e6 if result["requests"] else None
    return result


def parse_wrk(output: str) -> dict[str, Any]:
    """The ``BENCH_RESULT`` line our ``done()`` prints, turned into requests/s and milliseconds."""
    line = next((line for line in output.splitlines() if line.startswith(RESULT_MARK)), None)
    if line is None:
        raise RuntimeError(f"no {RESULT_MARK.strip()} line in wrk's output:\n{output}")
    raw = json.loads(line[len(RESULT_MARK) :])
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non2xx": raw["non2xx"],
        "socket_errors": errors,
        "mb_per_s": raw["bytes"] / seconds / 2**20 if seconds else 0.0,
    }

"""Helpers shared by the whole suite: the upstream error envelope (reference §1.7), the CLI as a subprocess."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

DOC_URL_BASE = "https://docs.aurous-labs.com/errors#"
REQUEST_ID = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")
ENVELOPE_FIELDS = {"type", "code", "message", "param", "doc_url", "request_id"}


def error_type_for(status: int) -> str:
    """The envelope ``type`` the newest ``/errors`` map (reference §1.7) gives an HTTP status."""
    if status in (400, 402, 409, 413, 414, 416, 422, 431):  # 413, 414, 416, 431: standard HTTP, emulator choices
        return "invalid_request"
    if status in (401, 403):
        return "authentication"
    if status in (404, 405, 410):
        return "not_found"
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server_error"
    raise AssertionError(f"no error type is documented for HTTP {status}")


def assert_envelope(
    response: httpx.Response,
    status: int,
    code: str,
    param: str | None = None,
    *,
    message: str | None = None,
) -> dict[str, Any]:
    """Check that ``response`` is exactly the upstream error envelope; return its ``error`` object.

    ``param`` is compared exactly (``None`` by default); ``message`` only when given.
    """
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert "Aurous-Version" in response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    extra = {"status"} if "provider" in code else set()
    assert ENVELOPE_FIELDS <= set(error) <= ENVELOPE_FIELDS | extra, error
    assert error["type"] == error_type_for(status), error
    assert error["code"] == code, error
    assert error["param"] == param, error
    assert isinstance(error["message"], str)
    assert error["message"]
    if message is not None:
        assert error["message"] == message, error
    assert error["doc_url"] == DOC_URL_BASE + code
    assert REQUEST_ID.match(error["request_id"]), error["request_id"]
    assert error["request_id"] == response.headers["Aurous-Request-Id"]
    return dict(error)


# --- the console script as a subprocess ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


@dataclass
class CliProcess:
    """A running ``python -m mockserver …``: its stdout lines arrive on ``lines``, stderr goes to ``stderr_path``."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[str]
    stderr_path: Path

    def first_line(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """The first stdout line (the banner), which must match ``pattern``."""
        try:
            first = self.lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no first line; stderr: {self.stderr_path.read_text()}")
        match = pattern.match(first)
        assert match, first
        return match


@contextlib.contextmanager
def cli_process(tmp_path: Path, *args: str, stop: signal.Signals = signal.SIGTERM) -> Iterator[CliProcess]:
    """Run the console script with a clean environment; ``stop`` it (then kill it if it hangs) on exit.

    It runs in a process group of its own and the signal goes to the whole group, so ``serve --workers N``
    stops with its workers (``SIGKILL`` kills them all, as a crash of the machine would).
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUROUS_MOCK_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    stderr_path = tmp_path / "stderr.log"
    command = [sys.executable, "-m", "mockserver", *args]
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
            start_new_session=True,
        ) as proc,
    ):
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            yield CliProcess(proc, lines, stderr_path)
        finally:
            _signal_group(proc, stop)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            reader.join(timeout=5)


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


# --- a real redis-server for the store tests ----------------------------------------------------------------------

NO_REDIS = "redis-server is not installed here (apt-get install redis-server; .ci/run installs it)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """``redis-server`` on a free 127.0.0.1 port, data in ``directory``, nothing saved; stopped on exit.

    Yields its URL (``redis://127.0.0.1:PORT/0``). A port taken between choosing and binding is retried.
    """
    binary = shutil.which("redis-server")
    assert binary is not None, NO_REDIS
    for _ in range(5):
        port = free_port()
        log = directory / f"redis-{port}.log"
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(log)]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if _answers(port, proc):
                yield f"redis://127.0.0.1:{port}/0"
                return
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    pytest.fail(f"redis-server did not start; see {directory}")


def _answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    """Whether the server on ``port`` answers PING before it exits or ``START_TIMEOUT`` passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.02)
    return False

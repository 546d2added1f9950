"""Every command ends cleanly: a port in use is one line and exit 1; SIGINT is 130 and SIGTERM 143, no traceback.

``contracts.serving`` is the one place that binds, announces readiness and maps signals to exit statuses, for
``serve`` (one process or ``--workers N``), ``listen``, ``drift-proxy`` and ``check``.
"""

from __future__ import annotations

import io
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import drift, listen
from contracts.serving import INTERRUPTED, PORT_IN_USE, TERMINATED
from mockserver.cli import main as cli_main
from tests.helpers import cli_process

SERVE_BANNER = re.compile(r"^aurous-mock \S+ serving on (http://127\.0\.0\.1:\d+)$")
LISTEN_READY = re.compile(r"^Ready! Listening on (http://127\.0\.0\.1:\d+)")
PROXY_BANNER = re.compile(r"^aurous-mock drift-proxy on (http://127\.0\.0\.1:\d+)")
CHECK_LINE = re.compile(r"^(ok|FAIL|skip)")
CHECK_START_SECONDS = 240  # loading Schemathesis and a first operation take ~40 s on a busy machine
EXIT = {signal.SIGINT: INTERRUPTED, signal.SIGTERM: TERMINATED}
SIGNALS = [pytest.param(signal.SIGINT, id="sigint"), pytest.param(signal.SIGTERM, id="sigterm")]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        yield int(blocker.getsockname()[1])


def _in_use_line(program: str, port: int) -> str:
    return f"{program}: cannot listen on 127.0.0.1:{port}: {PORT_IN_USE.format(port=port, host='127.0.0.1')}\n"


def test_serve_on_a_port_in_use_says_which_and_exits_1(taken_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--port", str(taken_port), "--clock", "virtual"]) == 1
    captured = capsys.readouterr()
    assert captured.err == _in_use_line("aurous-mock serve", taken_port)
    assert "--port 0" in captured.err
    assert captured.out == ""


def test_listen_and_drift_proxy_share_the_port_in_use_line(taken_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    assert listen.serve(port=taken_port, out=io.StringIO(), err=err) == 1
    assert err.getvalue() == _in_use_line("aurous-mock listen", taken_port)
    assert drift.serve("http://127.0.0.1:9", [], port=taken_port) == 1
    assert capsys.readouterr().err == _in_use_line("aurous-mock drift-proxy", taken_port)


def _assert_clean_stop(tmp_path: Path, returncode: int | None, sig: signal.Signals) -> None:
    stderr = (tmp_path / "stderr.log").read_text()
    assert returncode == EXIT[sig], stderr
    assert "Traceback" not in stderr, stderr
    assert "never awaited" not in stderr, stderr


@pytest.mark.e2e
@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize(
    ("args", "ready"),
    [
        pytest.param(("serve", "--port", "0", "--clock", "virtual"), SERVE_BANNER, id="serve"),
        pytest.param(("serve", "--port", "0", "--store", "sqlite:///s.db", "--workers", "2"), SERVE_BANNER, id="n"),
        pytest.param(("listen", "--port", "0"), LISTEN_READY, id="listen"),
        pytest.param(("drift-proxy", "--upstream", "http://127.0.0.1:9", "--port", "0"), PROXY_BANNER, id="proxy"),
    ],
)
def test_server_commands_stop_cleanly_on_signals(
    tmp_path: Path, args: tuple[str, ...], ready: re.Pattern[str], sig: signal.Signals
) -> None:
    with cli_process(tmp_path, *args, stop=sig) as cli:
        cli.first_line(ready)  # the signal comes right after the ready line, the moment a user would press Ctrl-C
    _assert_clean_stop(tmp_path, cli.proc.returncode, sig)


@pytest.mark.e2e
@pytest.mark.parametrize("sig", SIGNALS)
def test_check_stops_cleanly_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "target").mkdir()
    with cli_process(tmp_path / "target", "serve", "--port", "0", "--clock", "virtual") as target:
        url = target.first_line(SERVE_BANNER).group(1)
        # No coverage phase: the first operation is reported in a second, and ~50 are still to go when the signal comes.
        argv = ("check", "--target", url, "--suite", "conformance", "--phases", "examples,fuzzing")
        with cli_process(tmp_path, *argv, stop=sig) as cli:
            first = cli.lines.get(timeout=CHECK_START_SECONDS)  # running: one operation reported, many to go
            assert CHECK_LINE.match(first), first
    _assert_clean_stop(tmp_path, cli.proc.returncode, sig)
    assert f"aurous-mock check: stopped by {sig.name}" in (tmp_path / "stderr.log").read_text()


@pytest.mark.e2e
def test_listen_stops_on_sigint_sent_the_moment_it_is_ready(tmp_path: Path) -> None:
    """The race of issue 15: "Ready!" used to come before uvicorn owned the signals, so a SIGINT right after it
    hung the listener or left ``coroutine 'Server.serve' was never awaited``. Repeated, since it was 1 in 10."""
    for attempt in range(8):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        with cli_process(directory, "listen", "--port", "0", stop=signal.SIGINT) as cli:
            cli.first_line(LISTEN_READY)
        _assert_clean_stop(directory, cli.proc.returncode, signal.SIGINT)

"""The ``aurous-mock`` console script: options, ``--version`` and ``serve`` wiring (uvicorn stubbed out)."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import uvicorn

from mockserver import __version__
from mockserver.cli import main, worker_app
from mockserver.settings import hand_off, load_settings
from tests.helpers import free_port

BANNER = re.compile(r"^aurous-mock (\S+) serving on http://127\.0\.0\.1:(\d+)$")


class FakeServer:
    """Stands in for uvicorn's server (``contracts.serving``'s): records what ``serve`` hands it, says it is ready
    (the banner) and returns at once."""

    instances: ClassVar[list[FakeServer]] = []

    def __init__(self, config: uvicorn.Config, ready: Any = None) -> None:
        self.config = config
        self.ready = ready
        self.sockets: list[socket.socket] = []
        self.ports: list[int] = []
        self.started = False
        FakeServer.instances.append(self)

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        self.sockets = list(sockets or [])
        self.ports = [sock.getsockname()[1] for sock in self.sockets]
        self.started = True
        if self.ready is not None:
            self.ready()


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch):
    FakeServer.instances = []
    monkeypatch.setattr("contracts.serving._Server", FakeServer)
    yield FakeServer
    for server in FakeServer.instances:
        for sock in server.sockets:
            sock.close()
        server.config.app.state.emulator.close()  # the lifespan never ran: drop the media cache directory


def test_cli_version_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"aurous-mock {__version__}"


def test_cli_serve_help_lists_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--seed", "--speed", "--clock", "--config", "--log-level"):
        assert option in out


def test_cli_serve_help_explains_log_level_clock_seed_and_exit_codes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "debug adds one access line per request" in out  # --log-level
    assert "virtual: time stands still and moves only when told" in out  # --clock
    assert "/_mock/clock/advance" in out
    assert "2026-06-01T00:00:00Z" in out  # --seed's fixed first instant
    assert "130 after SIGINT" in out
    assert "143 after SIGTERM" in out
    assert "1 when the port cannot be bound" in out


def test_cli_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "command" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["serve", "--clock", "sundial"], ["serve", "--port", "http"], ["nope"]])
def test_cli_rejects_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert capsys.readouterr().err


def test_cli_serve_port_zero_reports_bound_port(fake_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--clock", "virtual", "--seed", "5", "--log-level", "warning"]) == 0
    first, second, *_ = capsys.readouterr().out.splitlines()
    match = BANNER.match(first)
    assert match, first
    assert match.group(1) == __version__
    port = int(match.group(2))
    assert port != 0
    [server] = fake_server.instances
    assert server.ports == [port]
    assert re.search(r"X-Api-Key: al_live_[0-9a-f]{64}", second)
    assert f"http://127.0.0.1:{port}/v1/balance" in second


def test_cli_serve_builds_app_from_options(fake_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    main(["serve", "--port", "0", "--clock", "virtual", "--seed", "5", "--speed", "2", "--log-level", "warning"])
    [server] = fake_server.instances
    settings = server.config.app.state.emulator.settings
    assert (settings.clock, settings.seed, settings.speed, settings.port) == ("virtual", 5, 2.0, 0)
    assert server.config.lifespan == "on"
    capsys.readouterr()


def test_cli_serve_bounds_the_request_head_with_the_setting(
    fake_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUROUS_MOCK_MAX_HEADER_BYTES", "4096")
    main(["serve", "--port", "0", "--log-level", "warning"])
    [server] = fake_server.instances
    assert server.config.http.__name__ == "EmulatorHttpProtocol"  # mockserver.server's bounded protocol
    assert server.config.http.max_head_bytes == 4096
    assert server.config.http.emulator is server.config.app.state.emulator
    capsys.readouterr()


def test_cli_serve_reads_config_file_below_options(
    fake_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mock.toml"
    config.write_text('seed = 1\nport = 0\ndefault_credits = 5\n[[keys]]\nkey = "al_live_cfg"\n')
    monkeypatch.setenv("AUROUS_MOCK_DEFAULT_CREDITS", "6")
    main(["serve", "--config", str(config), "--seed", "9", "--log-level", "warning"])
    [server] = fake_server.instances
    settings = server.config.app.state.emulator.settings
    assert settings.seed == 9
    assert settings.default_credits == 6
    assert settings.port == 0
    assert [k.key for k in settings.keys] == ["al_live_cfg"]
    assert BANNER.match(capsys.readouterr().out.splitlines()[0])


def test_cli_serve_strict_keys_flag(fake_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    main(["serve", "--port", "0", "--strict-keys", "--log-level", "warning"])
    main(["serve", "--port", "0", "--log-level", "warning"])
    strict, default = (server.config.app.state.emulator.settings for server in fake_server.instances)
    assert (strict.strict_keys, default.strict_keys) == (True, False)
    out = capsys.readouterr().out
    assert out.count("strict keys: only declared keys") == 1
    assert "--strict-keys" in _serve_help(capsys)


def _serve_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    return capsys.readouterr().out


# --- --store and --workers -------------------------------------------------------------------------------------


def test_cli_serve_refuses_workers_with_the_memory_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "--workers 2 needs a shared store" in err
    assert "sqlite:///state.db" in err


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_cli_serve_workers_must_be_a_positive_number(workers: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--workers", workers])
    assert caught.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_cli_serve_refuses_an_unknown_store_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--store", "postgres://db/aurous"]) == 2
    assert "store must be 'memory', 'sqlite:///path/to/file.db' or 'redis://host:port/db'" in capsys.readouterr().err


def test_cli_serve_reports_a_store_it_cannot_open(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert main(["serve", "--port", "0", "--store", url, "--workers", "2"]) == 2
    assert f"aurous-mock: cannot open the store {url}" in capsys.readouterr().err


def test_cli_serve_with_sqlite_store_serves_from_that_file(
    fake_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    assert main(["serve", "--port", "0", "--store", url, "--log-level", "warning"]) == 0
    [server] = fake_server.instances
    store = server.config.app.state.emulator.store
    assert (store.url, store.shared) == (url, True)
    store.close()


def test_worker_app_builds_the_settings_the_parent_handed_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings(store=f"sqlite:///{tmp_path / 'state.db'}", seed=3, default_credits=7, clock="virtual")
    monkeypatch.setattr(os, "environ", dict(os.environ))  # hand_off writes here; the test's environment stays clean
    hand_off(settings)
    monkeypatch.setenv("AUROUS_MOCK_DEFAULT_CREDITS", "99")  # a worker reads the handed-off settings, nothing else
    app = worker_app()
    try:
        assert app.state.emulator.settings == settings
        assert app.state.emulator.store.url == settings.store
    finally:
        app.state.emulator.close()
        app.state.emulator.store.close()


def test_a_reader_that_goes_away_ends_a_command_quietly_with_the_sigpipe_status() -> None:
    """``aurous-mock check … | head``: once ``head`` exits, writing fails; that is 141, not a traceback."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from contracts.serving import interruptible\n"
        "def body():\n"
        "    for _ in range(10_000):\n"
        "        print('x' * 1000)\n"
        "    return 0\n"
        "sys.exit(interruptible('aurous-mock check', body, sys.stderr))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.read(10) == b"x" * 10
    proc.stdout.close()  # the reader goes away, as head does after its lines
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141
    assert b"Traceback" not in err


def test_cli_serve_freezes_its_start_up_heap_out_of_the_collectors_reach(fake_server: Any) -> None:
    """A full collection would walk every module and model of the app and stall requests in flight (bench/README)."""
    import gc

    gc.unfreeze()
    try:
        main(["serve", "--port", "0", "--log-level", "warning"])
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # this test process goes on collecting as before


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the exception Python ignored
def test_a_signal_whose_exception_python_swallowed_still_ends_the_command_with_its_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A SIGINT handled inside a ``__del__`` (or a gc callback) has its exception ignored by Python: the command
    still reports it was stopped, 130, instead of exit 0."""
    import signal

    from contracts.serving import interruptible

    class Dropped:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)  # the handler runs here; Python ignores what it raises

    def body() -> int:
        Dropped()
        return 0

    assert interruptible("aurous-mock check", body, sys.stderr) == 130
    assert "stopped by SIGINT" in capsys.readouterr().err

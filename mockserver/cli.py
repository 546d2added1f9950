"""The ``aurous-mock`` console script: ``serve`` (the emulator), ``check``, ``listen`` and ``drift-proxy`` (the kit)."""

from __future__ import annotations

import argparse
import gc
import inspect
import logging
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from mockserver._version import __version__
from mockserver.app import create_app
from mockserver.core.scenarios import ScenarioFileError
from mockserver.server import SharedHttpProtocol, bind_worker
from mockserver.server import config as server_config
from mockserver.settings import Settings, hand_off, handed_off, load_settings
from mockserver.store import MEMORY, StoreOpenError

NEEDS_SHARED_STORE = (
    "aurous-mock: --workers {workers} needs a shared store (--store sqlite:///state.db or redis://host:port/db): "
    "with the in-memory store each worker would be a separate emulator."
)

WORKER_START_SECONDS = 60.0  # how long `serve --workers N` waits for its workers before the banner

log = logging.getLogger("mockserver")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurous-mock", description="Emulator of the Aurous Labs public API v1.")
    parser.add_argument("--version", action="version", version=f"aurous-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the emulator (in-memory store unless --store says otherwise)",
        description="Run the emulator. Exit status: 0, 1 when the port cannot be bound, 2 on invalid settings, "
        "130 after SIGINT (Ctrl-C), 143 after SIGTERM (both after a graceful shutdown).",
    )
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free port)")
    serve.add_argument(
        "--seed",
        type=int,
        help="reproducible runs: with --clock virtual the same requests get identical answers (ids, instants, "
        "secrets, timings, media; the clock starts at 2026-06-01T00:00:00Z unless clock_start is set); "
        "with the system clock everything but the instants (and ids' time part) repeats",
    )
    serve.add_argument("--speed", type=float, help="system clock speed factor (default 1)")
    serve.add_argument(
        "--clock",
        choices=["system", "virtual"],
        help="base clock (default system: real time, times --speed); virtual: time stands still and moves only "
        "when told (POST /_mock/clock/advance or /set), so a test skips a 10-minute video without waiting",
    )
    serve.add_argument("--config", help="YAML or TOML settings file (below AUROUS_MOCK_* variables)")
    serve.add_argument("--scenarios", metavar="FILE", help="YAML scenario rules applied to every team")
    serve.add_argument(
        "--store",
        metavar="URL",
        help="memory (default), sqlite:///state.db (survives restarts) or redis://host:port/db",
    )
    serve.add_argument(
        "--workers", type=_positive, default=1, help="worker processes sharing the store (default 1; needs --store)"
    )
    serve.add_argument(
        "--strict-keys",
        action="store_true",
        default=None,
        help="only declared keys (config keys:, POST /_mock/keys) authenticate; any other key gets 401",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log on stderr (default info: start and stop; debug adds one access line per request)",
    )
    _add_check(commands)
    _add_listen(commands)
    _add_drift_proxy(commands)
    return parser


def _tolerance(value: str) -> int | None:
    if value.lower() == "none":
        return None
    seconds = int(value)
    if seconds < 0:
        raise ValueError(value)
    return seconds


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError(value)
    return number


def _answer_status(value: str) -> int:
    status = int(value)
    if not 200 <= status <= 599:
        raise ValueError(value)
    return status


def _add_listen(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listen = commands.add_parser("listen", help="receive webhooks locally: verify, print, optionally forward")
    listen.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    listen.add_argument("--port", type=int, default=0, help="port (default 0: a free port, printed when ready)")
    listen.add_argument("--secret", help="endpoint secret (whsec_…); verify Aurous-Webhook-Signature, 400 if bad")
    listen.add_argument(
        "--tolerance", type=_tolerance, default=300, help="max signature age in seconds, or 'none' (default 300)"
    )
    listen.add_argument("--status", type=_answer_status, default=200, help="status to answer (default 200)")
    listen.add_argument("--forward-to", metavar="URL", help="also POST each accepted delivery to URL")
    listen.add_argument("--json", action="store_true", help="print each event as one line of JSON on stdout")


def _add_drift_proxy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    proxy = commands.add_parser(
        "drift-proxy", help="forward to an API and answer with named drifts, to see what `check` reports"
    )
    proxy.add_argument("--upstream", metavar="URL", help="the API to forward to, e.g. http://127.0.0.1:8080")
    proxy.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=0, help="port (default 0: a free port, printed when ready)")
    proxy.add_argument(
        "--drift", action="append", metavar="NAME[,NAME…]", help="drifts to apply (repeatable; `all`; see --list)"
    )
    proxy.add_argument("--list", action="store_true", help="print the drifts, one line each, and exit")


CHECK_EXIT_CODES = """exit codes:
  0  clean: no finding
  1  drift: at least one finding (report.md / report.json / junit.xml say which), or the budget aborted the run
  2  refused: bad usage, or spending on a live target without --allow-spend and --max-credits
  3  not checked: the target is unreachable (refused, reset, timed out) or answers like no Aurous API at all"""


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check",
        help="check an API (live or emulator) against openapi.yaml; exit 1 on drift",
        epilog=CHECK_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--target", required=True, metavar="URL", help="API root, e.g. http://127.0.0.1:8080")
    check.add_argument("--api-key", help="sent as X-Api-Key (a loopback target gets a throwaway key)")
    check.add_argument(
        "--against", metavar="URL2", help="differential: send the same requests to URL2 and report what differs"
    )
    check.add_argument("--against-api-key", help="X-Api-Key for --against (a loopback target gets a throwaway key)")
    check.add_argument(
        "--profile", choices=["live-safe", "full"], help="default: live-safe unless the target is loopback"
    )
    check.add_argument(
        "--allow-spend", action="store_true", help="let billable requests reach a live target (needs --max-credits)"
    )
    check.add_argument("--max-credits", type=float, help="spending cap (a live target spends 0 without --allow-spend)")
    check.add_argument("--report", metavar="DIR", help="write report.md, report.json and junit.xml into DIR")
    check.add_argument("--seed", type=int, help="Hypothesis seed (default: the same cases every run)")
    check.add_argument("--max-examples", type=int, default=10, help="cases per operation and mode (default 10)")
    check.add_argument(
        "--suite",
        action="append",
        choices=["conformance", "workflows", "lifecycle", "webhooks", "conventions", "chat"],
        help="run only this suite (repeatable; default: all)",
    )
    check.add_argument(
        "--operation", action="append", metavar="NAME", help="run only this operationId or workflow (repeatable)"
    )
    check.add_argument("--receiver-url", metavar="URL", help="webhooks suite, live target: public URL of the receiver")
    check.add_argument("--receiver-port", type=int, metavar="N", help="the local port --receiver-url forwards to")
    check.add_argument("--read-only-key", metavar="KEY", help="conventions suite, live target: a key of scope read")
    check.add_argument(
        "--phases", metavar="LIST", help="conformance: Schemathesis phases, of examples,coverage,fuzzing (default all)"
    )
    check.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="how long a request may wait for its answer (default 30); after one that waited it out, the target "
        "counts as hung: nothing more is sent and each suite ends with a finding",
    )


def check(args: argparse.Namespace) -> int:
    from contracts.check import SpendNotAllowed  # the kit speaks HTTP only; the emulator does not need it
    from contracts.check import check as run_check
    from contracts.targets import Target

    def progress(line: str) -> None:
        print(line, flush=True)  # noqa: T201

    try:
        result = run_check(
            Target.from_url(args.target, api_key=args.api_key),
            against=Target.from_url(args.against, api_key=args.against_api_key) if args.against else None,
            profile=args.profile,
            max_credits=args.max_credits,
            allow_spend=args.allow_spend,
            seed=args.seed,
            max_examples=args.max_examples,
            suites=args.suite,
            operations=args.operation,
            report_dir=args.report,
            progress=progress,
            options=_check_options(args),
        )
    except (SpendNotAllowed, ValueError) as exc:  # ValueError: an unknown --phases name
        print(f"aurous-mock check: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    progress(result.summary())
    return result.exit_code


def _check_options(args: argparse.Namespace) -> dict[str, str]:
    names = ("receiver_url", "receiver_port", "read_only_key", "phases", "timeout")
    return {name: str(getattr(args, name, None)) for name in names if getattr(args, name, None) is not None}


def listen(args: argparse.Namespace) -> int:
    from contracts.listen import main as listen_main  # the kit's receiver; the emulator does not need it

    return listen_main(args)


def drift_proxy(args: argparse.Namespace) -> int:
    from contracts.drift import main as drift_main  # the kit's proxy; the emulator does not need it

    return drift_main(args)


def _fail(message: str) -> int:
    print(f"aurous-mock: {message}", file=sys.stderr)  # noqa: T201
    return 2


def serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(
            args.config,
            host=args.host,
            port=args.port,
            seed=args.seed,
            speed=args.speed,
            clock=args.clock,
            scenarios_file=args.scenarios,
            store=args.store,
            strict_keys=args.strict_keys,
        )
    except ValidationError as exc:
        return _fail(f"invalid settings: {exc}")
    if args.workers > 1 and settings.store == MEMORY:
        print(NEEDS_SHARED_STORE.format(workers=args.workers), file=sys.stderr)  # noqa: T201
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
    try:
        app = create_app(settings)
    except ScenarioFileError as exc:
        return _fail(f"invalid scenario file: {exc}")
    except StoreOpenError as exc:
        return _fail(str(exc))
    from contracts import serving  # stdlib and uvicorn only: binding, readiness and signals shared with the kit

    sock = serving.bind_or_report("aurous-mock serve", settings.host, settings.port, sys.stderr)
    if sock is None:
        app.state.emulator.close()
        app.state.emulator.store.close()
        return serving.CANNOT_LISTEN
    if args.workers > 1:
        app.state.emulator.close()
        app.state.emulator.store.close()  # the parent only checked the settings; each worker opens its own
        return _run_workers(settings, args, sock)
    config = server_config(app, log_level=args.log_level, access_log=args.log_level == "debug", lifespan="on")
    _freeze_startup_heap()
    # The banner comes once uvicorn serves: a client (or a Ctrl-C) acting on it meets a server that answers.
    return serving.run(config, sock, ready=lambda: _banner(sock, strict_keys=bool(settings.strict_keys)))


def _freeze_startup_heap() -> None:
    """Move everything the process holds after start-up (modules, the app, its models) out of the collector's
    reach: a full collection would otherwise walk that whole heap and stall every request in flight for ~40 ms
    (p99 at 32 connections, bench/README). What requests create later is collected as before."""
    gc.collect()
    gc.freeze()


STRICT_KEYS_BANNER = "  strict keys: only declared keys (config keys:, POST /_mock/keys) authenticate /v1/*"


def _banner(sock: socket.socket, *, strict_keys: bool = False) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    key = f"al_live_{secrets.token_hex(32)}"
    print(f"aurous-mock {__version__} serving on http://{shown}:{port}", flush=True)  # noqa: T201
    print(f"  try: curl -H 'X-Api-Key: {key}' http://{shown}:{port}/v1/balance", flush=True)  # noqa: T201
    if strict_keys:
        print(STRICT_KEYS_BANNER, flush=True)  # noqa: T201
    else:
        print("  any well-formed key (al_live_… or og_…) gets its own team", flush=True)  # noqa: T201


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, remembering which signal stopped it (for the exit status), whose workers start with
    SIGINT ignored: a Ctrl-C reaches the whole process group, and a worker still importing would die of it with a
    traceback; the supervisor stops its workers itself (SIGTERM) on SIGINT."""

    stopped_by = 0
    ready: Callable[[], None] = staticmethod(lambda: None)  # the banner, once every worker serves

    def init_processes(self) -> None:
        with _sigint_ignored():
            super().init_processes()
        waits = [getattr(process, "wait_until_ready", None) for process in self.processes]  # uvicorn >= 0.36
        if all(wait is not None and wait(WORKER_START_SECONDS, self.should_exit) for wait in waits):
            self.ready()

    def handle_int(self) -> None:
        self.stopped_by = self.stopped_by or signal.SIGINT
        super().handle_int()

    def handle_term(self) -> None:
        self.stopped_by = self.stopped_by or signal.SIGTERM
        super().handle_term()


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Processes spawned meanwhile start with SIGINT ignored (only an ignored disposition survives ``exec``;
    uvicorn takes SIGINT over in each worker once it serves). This process ignores SIGINT for those few
    milliseconds too: the signal mask is not inherited, the disposition is."""
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


def _run_workers(settings: Settings, args: argparse.Namespace, sock: socket.socket) -> int:
    """``--workers N``: uvicorn's supervisor spawns N processes on our socket; each builds its app from
    :func:`worker_app`, which reads the settings handed off through the environment. The exit status is
    ``serve``'s: 0, or 128 + the signal that stopped it."""
    hand_off(settings)
    config = uvicorn.Config(
        "mockserver.cli:worker_app",
        factory=True,
        http=SharedHttpProtocol,  # each worker binds it to its own emulator (worker_app)
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.log_level == "debug",
        lifespan="on",
    )
    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.36 passes the server's run
        supervisor = _Supervisor(config, target=uvicorn.Server(config).run, sockets=[sock])  # type: ignore[call-arg]
    else:
        supervisor = _Supervisor(config, sockets=[sock])
    supervisor.ready = lambda: _banner(sock, strict_keys=bool(settings.strict_keys))
    supervisor.run()
    return 128 + supervisor.stopped_by if supervisor.stopped_by else 0


def worker_app() -> Starlette:
    """The application of one ``serve --workers N`` worker process (uvicorn imports and calls this)."""
    app = create_app(handed_off())
    bind_worker(app.state.emulator)
    _freeze_startup_heap()
    return app


COMMANDS = {"serve": serve, "check": check, "listen": listen, "drift-proxy": drift_proxy}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. SIGINT and SIGTERM end every command cleanly, without a traceback:
    130 after SIGINT (Ctrl-C), 143 after SIGTERM (servers shut down gracefully first; ``check`` stops where
    it is, its cleanup still runs)."""
    from contracts.serving import interruptible  # stdlib only: signals and exit statuses shared with the kit

    args = _parser().parse_args(argv)
    command = COMMANDS[args.command]
    return interruptible(f"aurous-mock {args.command}", lambda: command(args), sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

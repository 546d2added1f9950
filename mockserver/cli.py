"""The ``aurous-mock`` console script: ``serve`` (the emulator), ``check``, ``listen`` and ``drift-proxy`` (the kit)."""

from __future__ import annotations

import argparse
import inspect
import logging
import secrets
import socket
import sys
from collections.abc import Sequence

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

log = logging.getLogger("mockserver")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurous-mock", description="Emulator of the Aurous Labs public API v1.")
    parser.add_argument("--version", action="version", version=f"aurous-mock {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator (in-memory store unless --store says otherwise)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free port)")
    serve.add_argument("--seed", type=int, help="make ids and outcomes reproducible")
    serve.add_argument("--speed", type=float, help="system clock speed factor (default 1)")
    serve.add_argument("--clock", choices=["system", "virtual"], help="base clock (default system)")
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
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
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


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser("check", help="check an API (live or emulator) against openapi.yaml; exit 1 on drift")
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
    except SpendNotAllowed as exc:
        print(f"aurous-mock check: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    progress(result.summary())
    return result.exit_code


def _check_options(args: argparse.Namespace) -> dict[str, str]:
    names = ("receiver_url", "receiver_port", "read_only_key")
    return {name: str(getattr(args, name)) for name in names if getattr(args, name) is not None}


def listen(args: argparse.Namespace) -> int:
    from contracts.listen import main as listen_main  # the kit's receiver; the emulator does not need it

    return listen_main(args)


def drift_proxy(args: argparse.Namespace) -> int:
    from contracts.drift import main as drift_main  # the kit's proxy; the emulator does not need it

    return drift_main(args)


def _bind(settings: Settings) -> socket.socket:
    """Bind the listening socket ourselves so that ``--port 0`` can report the port it got."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.set_inheritable(True)
    # Listen before printing the banner: a client that connects at once is queued, not refused.
    sock.listen(2048)
    return sock


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
    sock = _bind(settings)
    _banner(sock)
    if args.workers > 1:
        app.state.emulator.close()
        app.state.emulator.store.close()  # the parent only checked the settings; each worker opens its own
        _run_workers(settings, args, sock)
        return 0
    config = server_config(app, log_level=args.log_level, access_log=args.log_level == "debug", lifespan="on")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0


def _banner(sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    key = f"al_live_{secrets.token_hex(32)}"
    print(f"aurous-mock {__version__} serving on http://{shown}:{port}", flush=True)  # noqa: T201
    print(f"  try: curl -H 'X-Api-Key: {key}' http://{shown}:{port}/v1/balance", flush=True)  # noqa: T201
    print("  any well-formed key (al_live_… or og_…) gets its own team", flush=True)  # noqa: T201


def _run_workers(settings: Settings, args: argparse.Namespace, sock: socket.socket) -> None:
    """``--workers N``: uvicorn's supervisor spawns N processes on our socket; each builds its app from
    :func:`worker_app`, which reads the settings handed off through the environment."""
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
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:
        Multiprocess(config, sockets=[sock]).run()


def worker_app() -> Starlette:
    """The application of one ``serve --workers N`` worker process (uvicorn imports and calls this)."""
    app = create_app(handed_off())
    bind_worker(app.state.emulator)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "check":
        return check(args)
    if args.command == "listen":
        return listen(args)
    if args.command == "drift-proxy":
        return drift_proxy(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Each hot-path change of issue 7, old spelling against new, in CPU microseconds per call.

    python bench/microbench.py

The old spellings are copied here as they were at b7c6583 (before the benchmark work), so that the effect of
each change is measured, not remembered. Per-request totals are in bench/README.md (``run.py --compare-ref``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from starlette.datastructures import URL, MutableHeaders
from starlette.routing import Match, Route
from ulid import ULID

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling modules

import inprocess

from mockserver.api.dispatch import DirectRoutes
from mockserver.api.generations import base_url
from mockserver.api.headers import assign, has
from mockserver.api.routes import routes
from mockserver.clock import rfc3339
from mockserver.core import outputs
from mockserver.core.models import ApiKey
from mockserver.core.versions import PUBLISHED_VERSIONS, resolve_version
from mockserver.ids import stable_ulid, ulid_text


def cpu_us(action: Callable[[], Any], number: int = 20_000) -> float:
    """CPU microseconds per call, best of five rounds."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(number):
            action()
        best = min(best, time.process_time() - started)
    return best / number * 1e6


# --- the old spellings (b7c6583) ------------------------------------------------------------------------------


def old_rfc3339(when: datetime) -> str:
    when = when.astimezone(UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def old_sign(secret: str, subject: str, index: str, expires: int) -> str:
    message = f"{subject}:{index}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]


@dataclasses.dataclass(frozen=True, slots=True)
class OldDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int


class NewDecision(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int


_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def old_resolve_version(requested: str | None, team_pin: str | None) -> str:
    if requested is None:
        return old_resolve_version(team_pin, None) if team_pin else PUBLISHED_VERSIONS[0]
    if not _PATTERN.match(requested):
        raise ValueError(requested)
    date.fromisoformat(requested)
    if requested in PUBLISHED_VERSIONS:
        return requested
    raise ValueError(requested)


def old_headers(raw: list[tuple[bytes, bytes]], extra: dict[str, str], request_id: str) -> list[tuple[bytes, bytes]]:
    """The pipeline's and the middleware's header assignments through MutableHeaders."""
    headers = MutableHeaders(raw=list(raw))
    headers.update(extra)
    headers["Aurous-Version"] = "2026-05-15"
    message = {"headers": headers.raw}
    out = MutableHeaders(scope=message)
    out["Aurous-Request-Id"] = request_id
    if "aurous-version" not in out:
        out["Aurous-Version"] = "2026-05-15"
    return out.raw


def new_headers(raw: list[tuple[bytes, bytes]], extra: dict[str, str], request_id: str) -> list[tuple[bytes, bytes]]:
    headers = assign(raw, {**extra, "Aurous-Version": "2026-05-15"})
    stamps = {"Aurous-Request-Id": request_id}
    if not has(headers, b"aurous-version"):
        stamps["Aurous-Version"] = "2026-05-15"
    return assign(headers, stamps)


def scan(table: list[Any], scope: dict[str, Any]) -> Route:
    """Starlette's Router: each route's regex in order until one matches fully."""
    for route in table:
        if route.matches(scope)[0] is Match.FULL:
            return route  # type: ignore[no-any-return]
    raise LookupError(scope["path"])


def main() -> None:
    rows: list[tuple[str, str, float, float]] = []

    def row(change: str, per_request: str, old: Callable[[], Any], new: Callable[[], Any]) -> None:
        if not change.startswith(("route", "rate-limit")):  # those two return different types by design
            assert old() == new(), change
        rows.append((change, per_request, cpu_us(old), cpu_us(new)))

    raw = bytes(range(16))
    row(
        "ULID text (two digits per lookup)",
        "1 poll, 5 create",
        lambda: str(ULID.from_bytes(raw)),
        lambda: ulid_text(raw),
    )
    when = datetime(2026, 5, 4, 10, 0, 16, 250000, tzinfo=UTC)
    row("rfc3339 (isoformat, cached instants)", "3 poll", lambda: old_rfc3339(when), lambda: rfc3339(when))
    row("rfc3339, an instant not cached", "—", lambda: old_rfc3339(when), lambda: rfc3339.__wrapped__(when))
    subject = "img_01M85HNETRD69Z7812JTHKT69G"
    row(
        "output token HMAC (keyed once, copied)",
        "1 per image output",
        lambda: old_sign("aurous-mock-signing-key", subject, "0", 1795572631),
        lambda: outputs._sign("aurous-mock-signing-key", subject, "0", 1795572631),
    )
    row(
        "rate-limit decision (NamedTuple)",
        "1",
        lambda: OldDecision(allowed=True, limit=1200, remaining=1199, reset=1, retry_after=0),
        lambda: NewDecision(allowed=True, limit=1200, remaining=1199, reset=1, retry_after=0),
    )
    row(
        "version of a request without the header",
        "1",
        lambda: old_resolve_version(None, "2026-05-15"),
        lambda: resolve_version(None, "2026-05-15"),
    )
    row(
        "API key id (cached)",
        "1 create",
        lambda: f"key_{stable_ulid('key:al_live_x')}",
        lambda: ApiKey("al_live_x", "t").id,
    )
    response = [(b"content-length", b"954"), (b"content-type", b"application/json")]
    extra = {"X-RateLimit-Limit": "1200", "X-RateLimit-Remaining": "1199", "X-RateLimit-Reset": "1795572631"}
    row(
        "response headers (one pass, twice)",
        "1",
        lambda: old_headers(response, extra, "req_01M85HNETR6BNENV5TEPR4B9RE"),
        lambda: new_headers(response, extra, "req_01M85HNETR6BNENV5TEPR4B9RE"),
    )
    table = routes()
    direct = DirectRoutes(lambda *_: None, table, lambda *_: None)  # type: ignore[arg-type]
    for path in ("/v1/images/img_01M85HNETRD69Z7812JTHKT69G", "/v1/balance"):
        scope: dict[str, Any] = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        row(
            f"route lookup {path[:16]}…",
            "1",
            functools.partial(scan, table, scope),
            functools.partial(direct.match, scope),
        )
    client = inprocess.client()
    try:
        request_scope = {
            "type": "http",
            "scheme": "http",
            "server": ("127.0.0.1", 8080),
            "path": "/v1/images/x",
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1:8080"), (b"x-api-key", b"al_live_x")],
        }

        class _Ctx:
            emulator = client.app.state.emulator
            request = type("R", (), {"scope": request_scope})()

        def old_origin() -> str:
            url = URL(scope=request_scope)
            return f"{url.scheme}://{url.netloc}"

        row("request origin for output URLs (cached)", "1 poll, 1 create", old_origin, lambda: base_url(_Ctx()))  # type: ignore[arg-type]
        emulator = client.app.state.emulator
        team = emulator.accounts.authenticate(inprocess.KEY)[0]
        clock = emulator.clock
        scenarios = emulator.scenarios

        def old_resolve() -> None:
            with scenarios.store.transaction():
                book = scenarios._book(team)
                if not book.rules and not scenarios._file_rules(team, book):
                    return None
            raise AssertionError("the bench team has no rules")

        row("scenario lookup, team without rules", "1", old_resolve, lambda: scenarios.resolve(team, None))
        row(
            "team time with no offset",
            "2",
            lambda: clock.now() + timedelta(seconds=0.0),
            lambda: team.time.now(clock),
        )
    finally:
        client.close()

    print("| Change | Calls per request | Before µs | After µs | Saved µs per call |")  # noqa: T201
    print("|---|---|---:|---:|---:|")  # noqa: T201
    for change, per_request, old, new in rows:
        print(f"| {change} | {per_request} | {old:.2f} | {new:.2f} | {old - new:.2f} |")  # noqa: T201


if __name__ == "__main__":
    main()

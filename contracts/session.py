"""What every suite gets: one target's HTTP client, its budget, the recorded trace, and a place to put findings.

A suite is a function ``run(session, suite)`` (see :mod:`contracts.suites`). It talks to the target only through
:meth:`Session.request`, which authenticates, records each exchange in the session's :class:`Trace` (what the
differential mode compares between two targets), and never sends a billable request the budget refuses. It reports
through :class:`SuiteRun`: ``suite.operation(name)`` counts cases, ``suite.finding(...)`` records drift with the
request as a redacted ``curl`` and the command that replays it, ``suite.skip(reason)`` says why something did not run.

Example:
    >>> from contracts.targets import Target, has_clock_control
    >>> session = Session(Target.from_url("http://127.0.0.1:8080"))
    >>> session.spend_allowed, session.budget.max_credits
    (True, None)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shlex
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import requests

from contracts.budget import BILLABLE, Budget
from contracts.exchanges import Trace, exchange, header, json_of, parsed
from contracts.report import Finding, OperationResult, SuiteResult
from contracts.stall import Stall, StallGuard, TargetHung
from contracts.targets import Target, has_clock_control

if TYPE_CHECKING:
    from contracts.differential import Differential

__all__ = ["PHASE_NAMES", "REDACTED_KEY", "Progress", "Session", "SuiteRun", "phases"]

Progress = Callable[[str], None]


REDACTED_KEY = "$AUROUS_API_KEY"
# A target that hangs costs one request this long (``--timeout``); every later request of the run then fails at once
# (``TargetHung``), so each suite ends with a finding in a moment instead of waiting out every request (or exit 3 at
# the probe).
READ_TIMEOUT, CONNECT_TIMEOUT = 30.0, 10.0
RATE_LIMIT_RETRIES, MAX_RETRY_AFTER = 3, 30.0
# Creates whose resources the kit deletes again at the end of the suite that made them: create path → item path.
CLEANED_UP = {
    "/v1/webhook_endpoints": "/v1/webhook_endpoints",
    "/v1/files": "/v1/files",
    "/v1/characters": "/v1/characters",
}
PHASE_NAMES = ("examples", "coverage", "fuzzing")  # the conformance suite's Schemathesis phases, as its CLI names them


def phases(options: Mapping[str, str]) -> list[str]:
    """The conformance phases an ``options`` mapping asks for (``phases``, comma-separated; default all three).

    Raises:
        ValueError: an unknown phase, or none at all.
    """
    names = [name.strip() for name in str(options.get("phases") or ",".join(PHASE_NAMES)).split(",") if name.strip()]
    unknown = [name for name in names if name not in PHASE_NAMES]
    if unknown or not names:
        raise ValueError(f"unknown conformance phase {', '.join(unknown)!r}; choose from {', '.join(PHASE_NAMES)}")
    return names


class Session:
    """One target as the suites see it.

    Args:
        target: where requests go.
        profile: ``live-safe`` or ``full``.
        budget: the spending cap; ``spend_allowed`` is False when the cap is 0.
        seed: the Hypothesis seed, or ``None`` for derandomized runs.
        max_examples: generated cases per operation and data mode (suites scale their own loops from it).
        operations: only these operationIds / workflow names run (``None``: all).
        progress: called with one line per operation or workflow.
        options: suite settings given by the user (``receiver_url``, ``receiver_port``, ``read_only_key``).
    """

    def __init__(
        self,
        target: Target,
        *,
        profile: str = "full",
        budget: Budget | None = None,
        seed: int | None = None,
        max_examples: int = 10,
        operations: frozenset[str] | None = None,
        progress: Progress | None = None,
        api_key: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        self.target, self.profile, self.seed, self.max_examples = target, profile, seed, max_examples
        self.options: dict[str, str] = dict(options or {})
        self.budget = budget if budget is not None else Budget(None)
        self.operations, self.progress = operations, progress
        if api_key is None and target.api_key is None and not target.is_live:
            api_key = f"al_live_{secrets.token_hex(16)}"  # a local target: a team of this run's own
        self.api_key = api_key if api_key is not None else target.key()
        self.trace = Trace()
        # Every webhook endpoint secret an answer showed the kit (creates and rotations, by any suite): which secret
        # signs a `webhook_url` callback is left open by the vendor, so the kit accepts each of them there.
        self.secrets: list[str] = []
        # What the kit created and must delete when the suite ends (path, the key of the team that owns it), and
        # where request bodies a curl cannot show inline are written (a report's `bodies/`, else a temporary folder).
        self.leftovers: list[tuple[str, str | None]] = []
        self.bodies: Path | None = (
            Path(options["report_dir"]) / "bodies" if options and "report_dir" in options else None
        )
        self.pools: dict[str, Any] = {}  # other clients a suite keeps on this target (closed with the session)
        self.stall = Stall()
        self._client: Any = None
        self._lifespan = False  # whether the in-process client runs the app's lifespan (then close() ends it)
        self._clock_control: bool | None = None

    # -- what may be sent ---------------------------------------------------------------------------------------

    @property
    def spend_allowed(self) -> bool:
        """Whether billable requests with valid data may be sent at all (the cap may still refuse each one)."""
        return self.budget.max_credits is None or self.budget.max_credits > 0

    def selected(self, name: str) -> bool:
        return self.operations is None or name in self.operations

    def fresh(self) -> Session:
        """The same target on a team of its own when the target is local (any well-formed key gets one there);
        the very same session against a live target, where the user's key is the only team."""
        if self.target.is_live or self.target.api_key is not None:
            return self
        twin = Session(
            self.target,
            profile=self.profile,
            budget=self.budget,
            seed=self.seed,
            max_examples=self.max_examples,
            operations=self.operations,
            progress=self.progress,
            api_key=f"al_live_{secrets.token_hex(16)}",
            options=self.options,
        )
        twin.trace = self.trace  # one trace per target, whichever team sent the request
        twin.secrets, twin.leftovers, twin.bodies, twin.pools = self.secrets, self.leftovers, self.bodies, self.pools
        twin.stall = self.stall
        twin._client = self.client
        twin._clock_control = self._clock_control
        return twin

    # -- HTTP ---------------------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """An httpx-style client bound to the target (Starlette's TestClient for an in-process app)."""
        if self._client is None:
            if self.target.in_process:
                from starlette.testclient import TestClient  # only in-process targets need it

                client = TestClient(self.target.app, base_url=self.target.base_url)
                try:  # lifespan on, as under a server: one event loop, the app's background tasks (webhook delivery)
                    self._client = client.__enter__()
                    self._lifespan = True
                except Exception:  # an app without lifespan support still answers requests
                    self._client = client
            else:
                seconds = self.read_timeout
                transport = StallGuard(httpx.HTTPTransport(), self.stall, seconds)
                timeout = httpx.Timeout(seconds, connect=CONNECT_TIMEOUT)
                self._client = httpx.Client(base_url=self.target.base_url, timeout=timeout, transport=transport)
        return self._client

    def call_case(self, case: Any, **kwargs: Any) -> Any:
        """Send a Schemathesis ``case`` (``case.call(**kwargs)``) with the session's read timeout; after a request
        of this target that hung, or when this one does, ``TargetHung`` (its cause the client's own timeout)."""
        if self.stall.why is not None:
            raise TargetHung(self.stall.why)
        if not self.target.in_process:
            kwargs.setdefault("timeout", (CONNECT_TIMEOUT, self.read_timeout))
        try:
            return case.call(**kwargs)
        except (requests.Timeout, TimeoutError) as exc:
            why = self.stall.note(str(case.method).upper(), case.formatted_path, self.read_timeout)
            raise TargetHung(why) from exc

    @property
    def read_timeout(self) -> float:
        """How long one request may wait for its answer (``timeout`` option, seconds; default 30)."""
        return float(self.options.get("timeout") or READ_TIMEOUT)

    def close(self) -> None:
        for pooled in self.pools.values():
            pooled.close()
        self.pools.clear()
        if self._client is not None:
            if self._lifespan:
                self._client.__exit__(None, None, None)
            else:
                self._client.close()
            self._client, self._lifespan = None, False

    def headers(self, extra: dict[str, str] | None = None, *, auth: bool = True) -> dict[str, str]:
        headers = {"X-Api-Key": self.api_key} if auth and self.api_key else {}
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        step: str | None = None,
        operation: str | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        wait_out_429: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Send one request, recording it in the trace.

        A ``429`` is waited out (``Retry-After``; on the team's clock when the kit moves it) and sent again, a few
        times: a bucket the team shares is no drift. ``wait_out_429=False`` is for the check that provokes one.

        ``operation`` (an operationId) lets the budget guard a billable call before it is sent and book what a 2xx
        charged; ``BudgetExceeded`` propagates so the suite stops before the cap would be crossed.
        """
        if operation in BILLABLE:
            self.budget.guard(operation, json_body)
        sent = self.headers(headers, auth=auth)
        if json_body is not None:
            kwargs["json"] = json_body
        response = self.client.request(method, path, headers=sent, **kwargs)
        for _ in range(RATE_LIMIT_RETRIES if wait_out_429 else 0):
            if response.status_code != 429:
                break
            self.wait_out(response)  # the team's bucket is shared (other suites, other services): not drift
            response = self.client.request(method, path, headers=sent, **kwargs)
        replayed = response.headers.get("aurous-idempotent-replayed") == "true"  # a replay is never billed (§1.9)
        if operation in BILLABLE and 200 <= response.status_code < 300 and not replayed:
            self.budget.book(operation, json_of(response))
        body = json_of(response)
        self.learn(body)
        if 200 <= response.status_code < 300:
            self.created(method, path, body)
        curl = self.curl(method, path, json_body=json_body, headers=sent)
        self.trace.exchanges.append(exchange(step or f"{method} {path}", method, path, response, curl))
        return response

    def wait_out(self, response: Any) -> None:
        """Let a 429's ``Retry-After`` pass: on the team's clock on the emulator (its buckets refill on it)."""
        try:
            seconds = min(MAX_RETRY_AFTER, max(1.0, float(header(response, "retry-after") or 1)))
        except ValueError:
            seconds = 1.0
        if not self.advance(seconds):
            time.sleep(seconds)

    def created(self, method: str, path: str, body: Any) -> None:
        """Remember a resource a create answered, so :meth:`cleanup` deletes it when its suite ends."""
        owner = CLEANED_UP.get(path.split("?")[0]) if method == "POST" else None
        if owner is not None and isinstance(body, dict) and isinstance(body.get("id"), str):
            self.leftovers.append((f"{owner}/{body['id']}", self.api_key))

    def cleanup(self) -> list[str]:
        """Delete what the kit created (newest first), whatever happened in the suite; returns what could not be
        deleted. Unrecorded: cleaning up is not part of the contract, and a resource already gone is fine."""
        left: list[str] = []
        if self.stall.why is not None:  # a target that stopped answering keeps what it has; the report says so
            left = [path for path, _ in reversed(self.leftovers)]
            self.leftovers.clear()
        while self.leftovers:
            path, key = self.leftovers.pop()
            try:
                answer = self.client.delete(path, headers={"X-Api-Key": key} if key else {})
                if answer.status_code == 429:
                    self.wait_out(answer)
                    answer = self.client.delete(path, headers={"X-Api-Key": key} if key else {})
            except Exception:  # a target that stopped answering keeps what it has; the report says so
                left.append(path)
                continue
            if answer.status_code >= 400 and answer.status_code not in (404, 410):
                left.append(f"{path} ({answer.status_code})")
        return left

    def body_file(self, content: bytes) -> Path:
        """Write a request body (multipart, binary) to a file a curl can reference with ``--data-binary @…``."""
        if self.bodies is None:
            self.bodies = Path(tempfile.mkdtemp(prefix="aurous-check-bodies-"))
        self.bodies.mkdir(parents=True, exist_ok=True)
        path = self.bodies / f"{hashlib.sha256(content).hexdigest()[:16]}.bin"
        if not path.exists():
            path.write_bytes(content)
        return path.resolve()

    def learn(self, body: Any) -> None:
        """Remember a webhook endpoint secret an answer shows (see ``secrets``)."""
        if isinstance(body, dict) and body.get("object") == "webhook_endpoint":
            secret = body.get("secret")
            if isinstance(secret, str) and secret and secret not in self.secrets:
                self.secrets.append(secret)

    def curl(self, method: str, path: str, *, json_body: Any = None, headers: dict[str, str] | None = None) -> str:
        """The request as a ``curl`` command with the API key replaced by ``$AUROUS_API_KEY``."""
        parts = ["curl", "-X", method]
        for name, value in (headers or {}).items():
            if name.lower() == "x-api-key":
                shown = f'"{name}: {REDACTED_KEY}"'
            elif self.api_key and self.api_key in value:  # e.g. "Authorization: Bearer <key>"
                shown = '"' + f"{name}: {value}".replace(self.api_key, REDACTED_KEY).replace('"', '\\"') + '"'
            else:
                shown = shlex.quote(f"{name}: {value}")
            parts += ["-H", shown]
        if json_body is not None:
            parts += ["-H", "'Content-Type: application/json'", "-d", shlex.quote(json.dumps(json_body))]
        parts.append(shlex.quote(self.target.base_url + path))
        return " ".join(parts)

    # -- the emulator's extras ----------------------------------------------------------------------------------

    @property
    def clock_control(self) -> bool:
        """Whether the target is the emulator with its control plane (``GET /_mock/clock`` answers 200)."""
        if self._clock_control is None:
            self._clock_control = has_clock_control(self.client, self.headers())
        return self._clock_control

    def clock_now(self) -> datetime | None:
        """This team's time on the emulator (it may be virtual); ``None`` without clock control. Not recorded."""
        if not self.clock_control:
            return None
        answer = self.client.get("/_mock/clock", headers=self.headers())
        body = parsed(answer) if answer.status_code == 200 else None
        now = body.get("now") if isinstance(body, dict) else None
        try:
            return datetime.fromisoformat(now) if isinstance(now, str) else None
        except ValueError:
            return None

    def advance(self, seconds: float) -> bool:
        """Move this team's clock on the emulator; False when the target has no clock control."""
        if not self.clock_control:
            return False
        answer = self.client.post("/_mock/clock/advance", headers=self.headers(), json={"seconds": seconds})
        return bool(answer.status_code == 200)


class SuiteRun:
    """A suite's handle on its result: count cases per operation/workflow, record findings, say what was skipped.

    In a differential run, a suite that pairs its own requests (conformance) finds the second target's run in
    ``against`` and the comparison in ``differential``; every other suite simply runs once per target.
    """

    def __init__(
        self,
        result: SuiteResult,
        session: Session,
        replay: Callable[[str], str],
        *,
        against: SuiteRun | None = None,
        differential: Differential | None = None,
    ) -> None:
        self.result, self.session, self._replay = result, session, replay
        self.against, self.differential = against, differential

    @property
    def name(self) -> str:
        return self.result.name

    def operation(self, name: str) -> OperationResult:
        for known in self.result.operations:
            if known.operation == name:
                return known
        outcome = OperationResult(name, name)
        self.result.operations.append(outcome)
        return outcome

    def finding(
        self,
        operation: str,
        failure: str,
        title: str,
        message: str,
        *,
        expected: Any = None,
        actual: Any = None,
        status: int | None = None,
        curl: str | None = None,
        count: bool = True,
        against_curl: str | None = None,
    ) -> Finding:
        """Record drift; a repeat of the same (failure, title, expected) on the operation only counts an occurrence.

        ``count`` adds one failed case to the operation (off when the caller counts cases itself);
        ``against_curl`` is the same request as sent to the second target of a differential run.
        """
        outcome = self.operation(operation)
        if count:
            outcome.failed += 1
        finding = Finding(
            operation=operation,
            failure=failure,
            title=title,
            message=(message or title)[:1000],  # some checks say everything in their title
            status=status,
            curl=curl,
            suite=self.result.name,
            expected=None if expected is None else str(expected)[:500],
            actual=None if actual is None else str(actual)[:500],
            replay=self._replay(outcome.operation_id),  # what --operation selects (an operationId or workflow)
            target=self.result.target,
            against_curl=against_curl,
        )
        for known in outcome.findings:  # a repeat only if it breaks the same expectation: two drifts, two findings
            if (known.failure, known.title, known.expected) == (finding.failure, finding.title, finding.expected):
                known.occurrences += 1
                return known
        outcome.findings.append(finding)
        return finding

    def passed(self, operation: str, cases: int = 1) -> None:
        self.operation(operation).cases += cases

    def skip(self, reason: str) -> None:
        """Say why (part of) the suite did not run; a skip is not drift."""
        self.result.skipped.append(reason)

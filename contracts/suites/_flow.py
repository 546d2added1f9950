"""What every workflow shares: requests with stable step labels, expectations that become findings, polling on the
target's clock (or a bounded real wait), balances and estimates.

A workflow is a function ``(flow)``; it calls :meth:`Flow.call` for each request and :meth:`Flow.check` for each
property, so a passing property counts one case of the workflow and a broken one becomes a finding named for it,
with expected and actual values and the ``curl`` of the request that showed it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from contracts.budget import charged
from contracts.exchanges import parsed
from contracts.session import Session, SuiteRun
from contracts.suites._ledger import ledger_rows, ledger_sums

__all__ = [
    "CHARACTER_ORDER",
    "EPSILON",
    "GENERATION_ORDER",
    "Balance",
    "Flow",
    "Stop",
    "instant",
]

EPSILON = 1e-6
# Status order of a generation (reference §3.1) and of a character (§2.6; `reviewing` is the original flow's pause).
GENERATION_ORDER = {"pending": 0, "processing": 1, "succeeded": 2, "failed": 2, "cancelled": 2}
CHARACTER_ORDER = {"synthesizing": 0, "reviewing": 1, "ready": 2, "failed": 2}
# Real polling: the reference advises ~2 s between polls; images finish in 10–30 s, Seedance videos in about a minute.
POLL_INTERVAL = 2.0
# On a target whose clock the kit moves, steps grow with the time already waited (1 s at first, then 10 % of it),
# so every status of a 30 s generation is seen and a whole hour takes about a hundred reads.
MAX_VIRTUAL_WAIT = 3600.0
RATE_LIMIT_RETRIES, MAX_RETRY_AFTER = 3, 60.0


class Stop(Exception):
    """Ends a workflow early; a finding or a skip already says why."""


@dataclass(frozen=True)
class Balance:
    credits: float
    held: float
    available: float
    metered: bool  # `billing_mode: exempt` teams are never charged, so their numbers say nothing about holds

    @classmethod
    def parse(cls, body: Any) -> Balance | None:
        if not isinstance(body, dict):
            return None
        numbers = [body.get(name) for name in ("credits", "held_credits", "available_credits")]
        if not all(isinstance(number, int | float) for number in numbers):
            return None
        credits, held, available = (float(number) for number in numbers)  # type: ignore[arg-type]
        return cls(credits, held, available, body.get("billing_mode", "metered") == "metered")


def instant(value: Any) -> datetime | None:
    """An RFC 3339 instant of the wire, or ``None``."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _retry_after(response: Any) -> float:
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(MAX_RETRY_AFTER, max(1.0, seconds))


def error_code(response: Any) -> str | None:
    body = parsed(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None


class Flow:
    """One workflow's handle: its session (a team of its own on local targets), its name, its findings."""

    def __init__(self, session: Session, suite: SuiteRun, name: str) -> None:
        self.session, self.suite, self.name = session, suite, name
        self.curl: str | None = None
        self.status: int | None = None

    # -- requests and expectations -------------------------------------------------------------------------

    def call(self, method: str, path: str, step: str, **kwargs: Any) -> Any:
        """One request, recorded in the trace as ``<workflow>: <step>``.

        A ``429`` is waited out (``Retry-After``, on the target's clock when the kit moves it) and sent again, and
        leaves no step: rate limiting is the conventions suite's subject, here it only delays the journey.
        """
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = self.session.request(method, self.relative(path), step=f"{self.name}: {step}", **kwargs)
            if response.status_code != 429 or attempt == RATE_LIMIT_RETRIES:
                break
            self.session.trace.exchanges.pop()
            self.wait(_retry_after(response))
        self.curl = self.session.trace.exchanges[-1].curl if self.session.trace.exchanges else None
        self.status = response.status_code
        return response

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass: on the target's clock when the kit can move it, else in real time."""
        if not (self.session.clock_control and self.session.advance(seconds)):
            time.sleep(seconds)

    def relative(self, url: str) -> str:
        """An absolute URL on the target as a path (output and upload URLs are absolute); others stay absolute."""
        base = self.session.target.base_url
        return url[len(base) :] if url.startswith(base + "/") else url

    def check(self, ok: bool, failure: str, title: str, *, expected: Any = None, actual: Any = None) -> bool:
        """A property: one passed case, or a finding named ``failure`` for the last request."""
        return self._expect(ok, failure, title, expected=expected, actual=actual, counted=True)

    def require(self, ok: bool, failure: str, title: str, *, expected: Any = None, actual: Any = None) -> None:
        """A property the rest of the workflow depends on: when broken, the workflow stops here."""
        if not self._expect(ok, failure, title, expected=expected, actual=actual, counted=True):
            raise Stop

    def _expect(self, ok: bool, failure: str, title: str, *, expected: Any, actual: Any, counted: bool) -> bool:
        """``counted=False`` is for preconditions (an answer's status, its JSON): only their failures show."""
        if ok:
            if counted:
                self.suite.passed(self.name)
            return True
        self.suite.operation(self.name).cases += 1  # a failed case is a case too (`passed = cases - failed`)
        message = title if expected is None and actual is None else f"{title}: expected {expected}, got {actual}"
        self.suite.finding(
            self.name, failure, title, message, expected=expected, actual=actual, status=self.status, curl=self.curl
        )
        return False

    def precondition(self, ok: bool, failure: str, title: str, *, expected: Any = None, actual: Any = None) -> None:
        """What a property needs (an answer's status, its JSON, its numbers): a stop when broken, no case when met."""
        if not self._expect(ok, failure, title, expected=expected, actual=actual, counted=False):
            raise Stop

    def skip(self, reason: str) -> None:
        """The rest of the workflow cannot run here (target, profile, time): say why and stop."""
        self.suite.skip(f"{self.name}: {reason}")
        raise Stop

    def note(self, reason: str) -> None:
        """Something this target cannot show (no clock control …); the workflow goes on."""
        self.suite.skip(f"{self.name}: {reason}")

    def created(self, response: Any, failure: str, title: str) -> dict[str, Any]:
        """The answer of a create; a ``402`` (the team cannot afford it) skips the rest instead of being drift."""
        if response.status_code == 402:
            self.skip(f"the team cannot afford the create ({response.status_code} {error_code(response)})")
        return self.body(response, (200, 201, 202), failure, title)

    def body(self, response: Any, statuses: tuple[int, ...], failure: str, title: str) -> dict[str, Any]:
        """The JSON object of an answer that must have one of ``statuses``; otherwise a finding and a stop."""
        body = parsed(response)
        actual = f"{response.status_code} {error_code(response) or ''}".strip()
        expected = " or ".join(map(str, statuses))
        self.precondition(response.status_code in statuses, failure, title, expected=expected, actual=actual)
        self.precondition(isinstance(body, dict), failure, f"{title} (not JSON)", expected="a JSON object", actual=body)
        assert isinstance(body, dict)
        return body

    def read(self, path: str, step: str) -> dict[str, Any]:
        """``GET path``, which must answer 200 with a JSON object."""
        return self.body(self.call("GET", path, step), (200,), "ReadFailed", f"GET {path} failed")

    def rejected(self, response: Any, status: int, code: str, failure: str, title: str) -> bool:
        """An answer that must be the error ``status`` / ``code``."""
        actual = f"{response.status_code} {error_code(response) or ''}".strip()
        return self.check(
            response.status_code == status and error_code(response) == code,
            failure,
            title,
            expected=f"{status} {code}",
            actual=actual,
        )

    # -- account --------------------------------------------------------------------------------------------

    def balance(self, step: str) -> Balance | None:
        """The balance trio, or ``None`` when the team is not metered (nothing is held or charged then)."""
        response = self.call("GET", "/v1/balance", step)
        balance = Balance.parse(self.body(response, (200,), "BalanceUnreadable", "GET /v1/balance failed"))
        self.precondition(balance is not None, "BalanceUnreadable", "the balance lacks its numbers", expected="numbers")
        assert balance is not None
        return balance if balance.metered else None

    def balance_moved(
        self,
        before: Balance | None,
        step: str,
        failure: str,
        title: str,
        *,
        held: float,
        spent: float,
        owned: str | None = None,
    ) -> Balance | None:
        """The balance now is ``before`` with ``held`` more held and ``spent`` fewer credits; returns it.

        The team's totals only say so in a quiet team. When they moved otherwise (other services of the team create,
        finish and cancel generations meanwhile), the property is judged on what this workflow owns: the ledger rows
        of generation ``owned`` (:meth:`own_rows`); without such rows the case is skipped with the reason, never a
        finding.
        """
        if before is None:
            return None
        after = self.balance(step)
        if after is None:
            return None
        expected = (before.credits - spent, before.held + held, before.available - spent - held)
        actual = (after.credits, after.held, after.available)
        if all(abs(a - b) < EPSILON for a, b in zip(expected, actual, strict=True)):
            self.check(True, failure, title)
            return after
        self.check(
            abs(after.available - (after.credits - after.held)) < EPSILON,
            "BalanceInconsistent",
            "available_credits is not credits − held_credits",
            expected=f"available={after.credits - after.held:g}",
            actual=f"credits={after.credits:g}, held={after.held:g}, available={after.available:g}",
        )
        shown = "credits={:g}, held={:g}, available={:g}"
        if owned is None:
            self.note(
                f"{step}: the team's balance moved by other activity ({shown.format(*expected)} expected, "
                f"{shown.format(*actual)} seen); not judged"
            )
            return after
        self.own_rows(owned, step, failure, title, held=held, spent=spent)
        return after

    def own_rows(self, generation_id: str, step: str, failure: str, title: str, *, held: float, spent: float) -> None:
        """Judge a generation's hold and charge by its own credit-ledger rows (reference §2.8, newest first)."""
        rows = ledger_rows(self.session, generation_id)
        if not rows:
            self.note(
                f"{step}: the team's balance moved by other activity and the credit ledger shows no rows of "
                f"{generation_id}; its hold and charge were not judged"
            )
            return
        sums = ledger_sums(rows)
        outstanding = sums["hold"] - sums["release"] - sums["charge"]
        charged_now = sums["charge"] - sums["refund"]
        self.check(
            abs(outstanding - held) < EPSILON and abs(charged_now - spent) < EPSILON,
            failure,
            f"{title} (ledger rows of {generation_id})",
            expected=f"held={held:g}, charged={spent:g}",
            actual=f"held={outstanding:g}, charged={charged_now:g} ({len(rows)} rows)",
        )

    def estimate(self, kind: str, body: dict[str, Any], step: str | None = None) -> float:
        response = self.call("POST", f"/v1/{kind}s/estimate", step or f"estimate {kind}", json_body=body)
        answer = self.body(response, (200,), "EstimateFailed", f"POST /v1/{kind}s/estimate failed")
        cost = answer.get("estimated_cost")
        amount = cost.get("amount") if isinstance(cost, dict) else None
        self.precondition(
            isinstance(amount, int | float),
            "EstimateFailed",
            "the estimate has no estimated_cost.amount",
            expected="a number",
            actual=amount,
        )
        return float(amount)  # type: ignore[arg-type]

    def charged_as_estimated(self, generation: dict[str, Any], estimate: float, when: str) -> None:
        amount = charged(generation)
        if amount > estimate + EPSILON:
            self.check(
                False,
                "ChargedMoreThanEstimated",
                f"cost.amount {when} exceeds the estimate",
                expected=estimate,
                actual=amount,
            )
        else:
            self.check(
                abs(amount - estimate) < EPSILON,
                "EstimateMismatch",
                f"cost.amount {when} differs from the estimate",
                expected=estimate,
                actual=amount,
            )

    # -- time -------------------------------------------------------------------------------------------------

    def clock_now(self) -> datetime | None:
        """The team's clock on the emulator (not recorded: control-plane only)."""
        return self.session.clock_now()

    def poll(
        self,
        path: str,
        what: str,
        first: dict[str, Any],
        *,
        order: dict[str, int],
        terminal: frozenset[str],
        deadline: float,
    ) -> dict[str, Any]:
        """Read ``path`` until its status is in ``terminal``; checks the statuses never go backwards.

        The trace keeps one exchange per distinct status (``poll image: processing`` …), so two conformant targets
        leave the same steps however many reads each needed. With clock control the kit moves the team's clock; a
        target that does not finish within an hour of it is a finding. Otherwise it waits in real time, at most
        ``deadline`` seconds, and skips the rest of the workflow when the target has not finished by then.
        """
        body, seen = first, [first.get("status")]
        waited, started = 0.0, time.monotonic()
        while body.get("status") not in terminal:
            if self.session.clock_control:
                step = max(1.0, waited / 10)
                self.precondition(
                    waited < MAX_VIRTUAL_WAIT,
                    "NeverFinished",
                    f"the {what} did not finish within an hour of the target's clock",
                    expected=sorted(terminal),
                    actual=seen,
                )
                if not self.session.advance(step):
                    self.skip(f"POST /_mock/clock/advance failed while the {what} was {seen[-1]}")
                waited += step
            else:
                if time.monotonic() - started > deadline:
                    self.skip(f"the {what} did not finish within {deadline:g} s of real time (statuses seen: {seen})")
                time.sleep(POLL_INTERVAL)
            body = self._read(path, what, seen, order)
        return body

    def _read(self, path: str, what: str, seen: list[Any], order: dict[str, int]) -> dict[str, Any]:
        response = self.call("GET", path, f"poll {what}")
        body = self.body(response, (200,), "ReadFailed", f"GET {path} failed while polling")
        status, previous = str(body.get("status")), seen[-1]
        exchanges = self.session.trace.exchanges
        if status == previous:
            exchanges.pop()  # one exchange per distinct status keeps the trace the same across targets
            return body
        exchanges[-1] = replace(exchanges[-1], step=f"{self.name}: poll {what}: {status}")
        seen.append(status)
        self.precondition(
            status in order,
            "UnknownStatus",
            f"the {what} reports an undocumented status",
            expected=sorted(order),
            actual=status,
        )
        went_back = isinstance(previous, str) and previous in order and order[status] < order[previous]
        self.require(
            not went_back,
            "StatusWentBackwards",
            f"the {what}'s status went backwards",
            expected=f"after {previous}: a later status",
            actual=" → ".join(map(str, seen)),
        )
        return body

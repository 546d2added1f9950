"""The runner: run the suites against a target within its profile and budget, collect drift, write the report.

Example:
    >>> from contracts import Target, check
    >>> result = check(Target("emulator", app=my_asgi_app), max_examples=5)  # doctest: +SKIP
    >>> result.exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import suites as registry
from contracts.budget import ESTIMATE_OPERATIONS, Budget, BudgetExceeded
from contracts.differential import Differential
from contracts.report import DIFFERENTIAL, CheckResult, SuiteResult, write_report
from contracts.session import Progress, Session, SuiteRun, phases
from contracts.suites import Suite
from contracts.targets import Target, not_an_aurous_api

__all__ = ["FULL", "LIVE_SAFE", "PAIRED_SUITES", "PROFILES", "SpendNotAllowed", "check", "replay_command"]

LIVE_SAFE, FULL = "live-safe", "full"
PROFILES = (LIVE_SAFE, FULL)
# Suites that send each generated case to both targets of a differential run themselves; the others run once per
# target and their traces are compared step by step.
PAIRED_SUITES = frozenset({"conformance"})
AGAINST_KEY_VARIABLE = "AUROUS_AGAINST_API_KEY"


class SpendNotAllowed(ValueError):
    """Spending on a live target was asked for without both ``allow_spend`` and a cap."""


def replay_command(
    target: Target,
    *,
    suite: str,
    operation: str | None,
    profile: str,
    seed: int | None,
    max_examples: int,
    allow_spend: bool,
    max_credits: float | None,
    against: Target | None = None,
    key_variable: str = "AUROUS_API_KEY",
    phases: str | None = None,
) -> str:
    """The ``aurous-mock check`` command that runs one operation of one suite again, with the same cases.

    ``operation=None`` replays the whole suite; ``against`` replays a differential run between two targets.
    """
    parts = ["aurous-mock", "check", "--target", _where(target)]
    if target.api_key is not None:
        parts += ["--api-key", f"${key_variable}"]
    if against is not None:
        parts += ["--against", _where(against)]
        if against.api_key is not None:
            parts += ["--against-api-key", f"${AGAINST_KEY_VARIABLE}"]
    parts += ["--profile", profile, "--suite", suite]
    if operation is not None:
        parts += ["--operation", operation]
    parts += ["--max-examples", str(max_examples)]
    if seed is not None:
        parts += ["--seed", str(seed)]
    if allow_spend:
        parts.append("--allow-spend")
    if max_credits is not None:
        parts += ["--max-credits", f"{max_credits:g}"]
    if phases is not None:
        parts += ["--phases", phases]
    return " ".join(part if part.startswith("$") else shlex.quote(part) for part in parts)


def _where(target: Target) -> str:
    return target.name if target.in_process else target.base_url


def _estimate_on(session: Session) -> Callable[[str, Any], float | None]:
    def estimate(operation_id: str, body: Any) -> float | None:
        """The target's own estimate for a billable body, or ``None`` to fall back to the rate card."""
        path = {"estimateImage": "/v1/images/estimate", "estimateVideo": "/v1/videos/estimate"}.get(
            ESTIMATE_OPERATIONS.get(operation_id, "")
        )
        if path is None or not isinstance(body, dict):
            return None
        try:
            response = session.client.post(path, json=body, headers=session.headers())
            answer = response.json()
            # images and videos answer estimated_cost.amount; embeddings credits_estimated (aurous-llm-v1.md §6.3)
            amount = (
                answer["credits_estimated"] if "credits_estimated" in answer else answer["estimated_cost"]["amount"]
            )
        except Exception:  # any failure to estimate means the pessimistic rate card applies
            return None
        return float(amount) if response.status_code == 200 and isinstance(amount, int | float) else None

    return estimate


def _estimator(*sessions: Session) -> Callable[[str, Any], float | None]:
    """The highest of the targets' own estimates; the rate card as soon as one of them cannot say."""
    estimates = [_estimate_on(session) for session in sessions]

    def estimate(operation_id: str, body: Any) -> float | None:
        known = [value for value in (each(operation_id, body) for each in estimates) if value is not None]
        return max(known) if len(known) == len(estimates) else None

    return estimate


def _cap(live: bool, max_credits: float | None, allow_spend: bool | None) -> float | None:
    if not live:
        return max_credits
    if allow_spend and max_credits is None:
        raise SpendNotAllowed("--allow-spend needs --max-credits N: a live target is never spent on without a cap")
    if max_credits and not allow_spend:
        raise SpendNotAllowed("--max-credits on a live target needs --allow-spend as well")
    return max_credits if allow_spend else 0.0


def _unreachable(*sessions: Session | None) -> str | None:
    """Why the run cannot start: a target that does not answer, or does not answer as an Aurous API (exit 3)."""
    for session in filter(None, sessions):
        reason = not_an_aurous_api(session.client, session.headers())
        if reason is not None:
            return f"{session.target.name}: {reason}"
    return None


def _labelled(progress: Progress | None, label: str) -> Progress | None:
    if progress is None:
        return None
    report = progress
    return lambda line: report(f"[{label}] {line}")


@dataclass
class _Run:
    """One ``check``: the sessions (a second one in a differential run), the shared budget, the result."""

    result: CheckResult
    budget: Budget
    first: Session
    second: Session | None
    replay: Callable[..., str]
    differential: Differential | None = None

    def __post_init__(self) -> None:
        if self.second is not None:
            report = SuiteRun(
                SuiteResult(DIFFERENTIAL), self.first, lambda op: self.replay(DIFFERENTIAL, op, pair=True)
            )
            self.differential = Differential(report, lambda suite, op: self.replay(suite, op, pair=True))

    def suite(self, name: str, run: Suite) -> None:
        primary = SuiteResult(name)
        self.result.suites.append(primary)
        other = None if self.second is None else SuiteResult(name, target=self.second.target.name)
        if other is not None:
            self.result.suites.append(other)
        if self.result.aborted is not None:
            for skipped in filter(None, (primary, other)):
                skipped.skipped.append("not run: the budget aborted the run")
            return
        first = SuiteRun(primary, self.first, lambda operation: self.replay(name, operation))
        if self.second is None or other is None or self.differential is None:
            self._guarded(name, primary, lambda: run(self.first, first))
            return
        second_session, differential = self.second, self.differential
        second = SuiteRun(other, second_session, lambda operation: self.replay(name, operation, second=True))
        if name in PAIRED_SUITES:  # it sends every generated case to both targets itself (spending on both)
            first.against, first.differential = second, differential
            self._guarded(name, primary, lambda: run(self.first, first), other)
            return
        a_start, b_start = len(self.first.trace.exchanges), len(second_session.trace.exchanges)
        if self._guarded(name, primary, lambda: run(self.first, first)) and self._guarded(
            name, other, lambda: run(second_session, second)
        ):
            a, b = self.first.trace.exchanges[a_start:], second_session.trace.exchanges[b_start:]
            differential.compare_suite(name, a, b)

    def _guarded(
        self, name: str, suite: SuiteResult, body: Callable[[], None], paired: SuiteResult | None = None
    ) -> bool:
        """Run a suite; False when the budget aborted it. ``paired``: the second target's run, which the same body
        spent on too (it keeps its own account)."""
        before = self.budget.spent
        try:
            body()
        except BudgetExceeded as exc:
            self.result.aborted = f"{name}: {exc}; spent {self.budget.spent:g} credits"
            return False
        except Exception as exc:  # a broken answer the suite did not foresee: a finding with evidence, no traceback
            self._crashed(name, suite, exc)
            return False
        finally:
            suite.spent = self.budget.spent - before - (paired.spent if paired is not None else 0.0)
            for session in filter(None, (self.first, self.second)):
                left = session.cleanup()  # also when the suite failed or the run is interrupted
                if left:
                    suite.skipped.append(f"{name}: could not delete what it created: {', '.join(left)[:500]}")
        return True

    def _crashed(self, name: str, suite: SuiteResult, exc: Exception) -> None:
        session = self.second if suite.target is not None and self.second is not None else self.first
        last = session.trace.exchanges[-1] if session.trace.exchanges else None
        evidence = "" if last is None else f"; the last answer: {last.method} {last.path} → {last.status}"
        second = suite.target is not None

        def replay(operation: str) -> str:
            return self.replay(name, operation, second=second)

        SuiteRun(suite, session, replay).finding(
            name,
            "SuiteAborted",
            f"the {name} suite stopped on an answer it could not use",
            f"{_described(exc)}{evidence}",
            expected="answers in the documented shapes",
            actual=_described(exc)[:300],
            status=None if last is None else last.status,
            curl=None if last is None else last.curl,
        )
        if session.progress is not None:
            session.progress(f"FAIL {name}: stopped: {_described(exc)[:200]}")

    def close(self) -> None:
        self.first.close()
        if self.second is not None:
            self.second.close()

    def finish(self, report_dir: str | Path | None) -> CheckResult:
        if self.differential is not None:
            self.result.suites.append(self.differential.suite.result)
        self.result.spent = self.budget.spent
        if report_dir is not None:
            write_report(self.result, report_dir)
        return self.result


def _described(exc: BaseException) -> str:
    """An exception (or every leaf of an exception group) in one line: type and message."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_described(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def _replayer(target: Target, against: Target | None, **options: Any) -> Callable[..., str]:
    def replay(suite: str, operation: str | None, *, second: bool = False, pair: bool = False) -> str:
        """A finding's replay: on the first target, on the second (``second``), or of the pair (``pair``)."""
        chosen = against if second and against is not None else target
        variable = AGAINST_KEY_VARIABLE if second else "AUROUS_API_KEY"
        paired = against if pair else None
        return replay_command(
            chosen, suite=suite, operation=operation, against=paired, key_variable=variable, **options
        )

    return replay


def check(
    target: Target,
    *,
    profile: str | None = None,
    max_credits: float | None = None,
    allow_spend: bool | None = None,
    seed: int | None = None,
    max_examples: int = 10,
    suites: Iterable[str] | None = None,
    operations: Iterable[str] | None = None,
    report_dir: str | Path | None = None,
    progress: Progress | None = None,
    against: Target | None = None,
    options: Mapping[str, str] | None = None,
) -> CheckResult:
    """Check ``target`` against openapi.yaml and the API's conventions (and, with ``against``, against another target).

    Args:
        target: the API to check.
        profile: ``live-safe`` (default for a live target) or ``full`` (default for loopback / in-process).
        max_credits: the spending cap. A live target spends nothing unless ``allow_spend`` is set *and* a cap
            is given (``SpendNotAllowed`` otherwise); a local target is unlimited unless capped.
        allow_spend: let billable requests with valid data reach a live target, within ``max_credits``.
        seed: a Hypothesis seed; without one every run sends the same cases.
        max_examples: generated cases per operation and data mode.
        suites: which suites run (default: all, in :data:`contracts.suites.SUITES` order).
        operations: only these operationIds (or workflow names) run.
        report_dir: where to write ``report.md``, ``report.json`` and ``junit.xml``.
        progress: called with one line per operation (the CLI prints them).
        against: a second target for the differential mode: the same cases and suites run on both, and what they
            answer differently is reported in the ``differential`` suite (:mod:`contracts.differential`), as are
            the second target's own findings. The profile and the cap cover both: if either target is live, the
            live rules apply, and ``max_credits`` caps what both together spend.
        options: suite settings: ``receiver_url`` (a public URL forwarding to the local webhook receiver) with
            ``receiver_port`` (the local port it forwards to), ``read_only_key`` (a key of scope ``read``),
            ``phases`` (the conformance suite's Schemathesis phases, comma-separated: ``examples``, ``coverage``,
            ``fuzzing``; default all three: a quick look at 2xx shapes needs no coverage phase's ~1000 cases),
            ``timeout`` (seconds a request may wait for its answer, default 30: after one request that waited it out
            the target counts as hung, nothing more is sent and each suite ends with a finding at once).
    """
    live = target.is_live or (against is not None and against.is_live)
    cap = _cap(live, max_credits, allow_spend)
    profile = profile or (LIVE_SAFE if live else FULL)
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    phases(options or {})  # an unknown phase is the caller's mistake: refused before anything is sent
    names = list(suites) if suites is not None else list(registry.SUITES)
    runners = [(name, registry.load(name)) for name in names]

    budget = Budget(cap)
    shared: dict[str, Any] = {
        "profile": profile,
        "budget": budget,
        "seed": seed,
        "max_examples": max_examples,
        "operations": frozenset(operations) if operations is not None else None,
        "options": {**(options or {}), **({} if report_dir is None else {"report_dir": str(report_dir)})},
    }
    first = Session(target, progress=progress, **shared)
    second = None if against is None else Session(against, progress=_labelled(progress, against.name), **shared)
    budget.estimator = _estimator(first, *filter(None, [second]))
    replay = _replayer(
        target,
        against,
        profile=profile,
        seed=seed,
        max_examples=max_examples,
        allow_spend=bool(allow_spend),
        max_credits=max_credits,
        phases=(options or {}).get("phases"),
    )
    result = CheckResult(target.name, profile, cap, seed=seed, against=None if against is None else against.name)
    state = _Run(result, budget, first, second, replay)
    try:
        result.unreachable = _unreachable(first, second)
        for name, run in runners if result.unreachable is None else []:
            state.suite(name, run)
    finally:
        state.close()
    return state.finish(report_dir)

"""The runner: generate Schemathesis cases per operation, send them within the profile and budget, collect drift.

Example:
    >>> from contracts import Target, check
    >>> result = check(Target("emulator", app=my_asgi_app), max_examples=5)  # doctest: +SKIP
    >>> result.exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

import contracts.checks  # noqa: F401 - registers the project checks with Schemathesis
from contracts.budget import BILLABLE, ESTIMATE_OPERATIONS, Budget, BudgetExceeded
from contracts.report import CheckResult, Finding, OperationResult, write_report
from contracts.schema import load_schema
from contracts.targets import Target

__all__ = ["FULL", "LIVE_SAFE", "PROFILES", "check", "modes_for"]

LIVE_SAFE, FULL = "live-safe", "full"
PROFILES = (LIVE_SAFE, FULL)
ESTIMATES = frozenset(ESTIMATE_OPERATIONS.values())
Progress = Callable[[str], None]


def modes_for(profile: str, method: str, operation_id: str) -> list[GenerationMode]:
    """Which data an operation gets under a profile; an empty list means the operation is not run.

    ``live-safe`` sends reads and estimates, and billable creates only with schema-invalid data (which must be
    rejected before billing; the budget still books any 2xx and aborts). Other writes are not sent at all.
    """
    both = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    if profile == FULL:
        return both
    if profile != LIVE_SAFE:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if method.upper() == "GET" or operation_id in ESTIMATES:
        return both
    if operation_id in BILLABLE:
        return [GenerationMode.NEGATIVE]
    return []


def _failures(error: BaseException) -> Iterator[Failure]:
    if isinstance(error, FailureGroup):
        for inner in error.exceptions:
            yield from _failures(inner)
    elif isinstance(error, Failure):
        yield error


class _Run:
    """One run's state: the schema, auth headers, budget and results; ``exercise`` handles one case."""

    def __init__(self, target: Target, schema: OpenApiSchema, budget: Budget, result: CheckResult) -> None:
        self.target, self.schema, self.budget, self.result = target, schema, budget, result
        key = target.key()
        self.headers = {"X-Api-Key": key} if key else {}
        self.redacted = {"X-Api-Key": "$AUROUS_API_KEY"} if key else {}

    def estimate(self, operation_id: str, body: Any) -> float | None:
        """The target's own estimate for a billable body, or ``None`` to fall back to the rate card."""
        estimate_id = ESTIMATE_OPERATIONS.get(operation_id)
        if estimate_id is None or not isinstance(body, dict):
            return None
        try:
            response = self.schema.find_operation_by_id(estimate_id).Case(body=body).call(headers=self.headers)
            amount = response.json()["estimated_cost"]["amount"]
        except Exception:  # any failure to estimate means the pessimistic rate card applies
            return None
        return float(amount) if response.status_code == 200 and isinstance(amount, int | float) else None

    def exercise(self, case: Any, mode: GenerationMode, outcome: OperationResult) -> None:
        if self.result.aborted is not None:
            return  # after a budget abort nothing else is sent
        if mode is GenerationMode.POSITIVE:
            try:
                self.budget.guard(outcome.operation_id, case.body)
            except BudgetExceeded:
                outcome.refused += 1
                return
        outcome.cases += 1
        try:
            response = case.call(headers=self.headers)
        except Exception as exc:  # the target is unreachable or broke the connection: that is a finding too
            self.record(outcome, Finding(outcome.operation, "RequestFailed", "Request failed", repr(exc)[:300]))
            return
        if 200 <= response.status_code < 300:
            try:
                self.budget.book(outcome.operation_id, _body(response))
            except BudgetExceeded as exc:
                self.result.aborted = f"{exc} (the request was sent with {mode.value} data)"
        try:
            case.validate_response(response, headers=self.headers, excluded_checks=[positive_data_acceptance])
        except (FailureGroup, Failure) as error:
            outcome.failed += 1
            curl = case.as_curl_command(headers=self.redacted)
            for failure in _failures(error):
                finding = Finding(
                    outcome.operation,
                    type(failure).__name__,
                    failure.title,
                    failure.message[:500],
                    response.status_code,
                    curl,
                )
                self.record(outcome, finding)

    @staticmethod
    def record(outcome: OperationResult, finding: Finding) -> None:
        for known in outcome.findings:
            if (known.failure, known.title) == (finding.failure, finding.title):
                known.occurrences += 1
                return
        outcome.findings.append(finding)


def _body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _drive(
    run: _Run,
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    outcome: OperationResult,
    **options: Any,
) -> None:
    seed = options["seed"]

    @hypothesis.settings(
        max_examples=options["max_examples"],
        database=None,
        deadline=None,
        derandomize=seed is None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every replay would be another real request
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def cases(case: Any) -> None:
        run.exercise(case, mode, outcome)

    if seed is not None:
        cases = hypothesis.seed(seed)(cases)
    try:
        cases()
    except Unsatisfiable:
        pass  # e.g. no way to make an operation without parameters invalid


def check(
    target: Target,
    *,
    profile: str | None = None,
    max_credits: float | None = None,
    seed: int | None = None,
    max_examples: int = 10,
    report_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> CheckResult:
    """Check ``target`` against openapi.yaml and the project conventions.

    Args:
        target: the API to check.
        profile: ``live-safe`` (default for a live target) or ``full`` (default for loopback / in-process).
        max_credits: the spending cap; defaults to 0 for a live target (nothing billable is sent) and
            unlimited for a local one.
        seed: a Hypothesis seed; without one the run is derandomized (the same cases every time).
        max_examples: generated cases per operation and data mode.
        report_dir: where to write ``report.json`` and ``junit.xml``.
        progress: called with one line per operation (the CLI prints them).
    """
    profile = profile or (LIVE_SAFE if target.is_live else FULL)
    if max_credits is None and target.is_live:
        max_credits = 0
    schema = load_schema(target)
    result = CheckResult(target=target.name, profile=profile, max_credits=max_credits)
    budget = Budget(max_credits)
    run = _Run(target, schema, budget, result)
    budget.estimator = run.estimate
    for item in schema.get_all_operations():
        if isinstance(item, Err):
            raise item.err()  # openapi.yaml itself is broken: not drift of the target
        operation = item.ok()
        operation_id = str(operation.definition.raw.get("operationId", operation.label))
        modes = modes_for(profile, operation.method, operation_id)
        if not modes or result.aborted is not None:
            continue
        outcome = OperationResult(operation.label, operation_id)
        result.operations.append(outcome)
        for mode in modes:
            _drive(run, operation, mode, outcome, seed=seed, max_examples=max_examples)
        if progress is not None:
            refused = f", {outcome.refused} refused by budget" if outcome.refused else ""
            progress(
                f"{'FAIL' if outcome.findings else 'ok  '} {outcome.operation}: "
                f"{outcome.cases - outcome.failed} passed, {outcome.failed} failed{refused}"
            )
    result.spent = budget.spent
    if report_dir is not None:
        write_report(result, report_dir)
    return result

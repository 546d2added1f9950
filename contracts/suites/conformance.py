"""Suite 1, schema conformance: Schemathesis' examples, coverage and fuzzing phases over every operation.

Each generated case is sent within the profile and the budget, then validated by Schemathesis' own checks plus the
project checks of :mod:`contracts.checks` (request ids, version echo, the error envelope).

What is sent where (``live-safe``): reads and estimates with any data; billable creates only with a body that our
local validation proves schema-invalid (so the target must reject it before billing); other writes not at all.
When spending is allowed under a cap, a schema-valid billable body is first pinned to its cheapest parameters
(:func:`contracts.budget.cheapest`) and estimated. Against a live target the coverage phase sends no undocumented
methods (its ``unexpected_methods`` is emptied).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import jsonschema_rs
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import positive_data_acceptance

import contracts.checks  # noqa: F401 - registers the project checks with Schemathesis
from contracts.budget import BILLABLE, ESTIMATE_OPERATIONS, BudgetExceeded, cheapest
from contracts.report import OperationResult
from contracts.schema import load_schema
from contracts.session import Session, SuiteRun

__all__ = ["LIVE_SAFE_SENDS", "must_be_rejected", "run"]

ESTIMATES = frozenset(ESTIMATE_OPERATIONS.values())
LIVE_SAFE_SENDS = "reads, estimates, and billable creates with schema-invalid bodies only"


def _failures(error: BaseException) -> Iterator[Failure]:
    if isinstance(error, FailureGroup):
        for inner in error.exceptions:
            yield from _failures(inner)
    elif isinstance(error, Failure):
        yield error


def _request_schema(operation: APIOperation[Any, Any, Any, Any]) -> dict[str, Any] | None:
    body = operation.definition.raw.get("requestBody", {})
    content = body.get("content", {}).get("application/json", {})
    schema = content.get("schema")
    return schema if isinstance(schema, dict) else None


def must_be_rejected(operation: APIOperation[Any, Any, Any, Any], body: Any) -> bool:
    """Whether ``body`` violates the operation's request schema, judged locally: only then may a billable request
    be sent when spending is not allowed, because a conformant target must reject it before billing."""
    schema = _request_schema(operation)
    if schema is None:
        return False
    components = operation.schema.raw_schema.get("components", {})  # $refs point into the whole document
    try:
        return not jsonschema_rs.validator_for({**schema, "components": components}).is_valid(body)
    except (ValueError, jsonschema_rs.ValidationError):
        return False  # cannot prove it invalid: do not send


def _mode(case: Any) -> GenerationMode:
    meta = getattr(case, "_meta", None) or getattr(case, "meta", None)
    return meta.generation.mode if meta is not None else GenerationMode.POSITIVE


class _Conformance:
    def __init__(self, session: Session, suite: SuiteRun) -> None:
        self.session, self.suite = session, suite
        self.headers = session.headers()
        self.redacted = {"X-Api-Key": "$AUROUS_API_KEY"} if session.api_key else {}
        self.schema = load_schema(session.target)
        if session.target.is_live or session.profile != "full":
            # A paid target (or a live-safe run) never gets methods the spec does not document.
            self.schema.config.phases.coverage.unexpected_methods = set()

    def sendable(self, operation: APIOperation[Any, Any, Any, Any], operation_id: str, case: Any) -> bool:
        if self.session.profile == "full":
            return True
        if str(case.method).upper() != operation.method.upper():
            return False  # an undocumented method: only the full profile sends those
        if operation.method.upper() == "GET" or operation_id in ESTIMATES:
            return True
        if operation_id in BILLABLE:
            return self.session.spend_allowed or must_be_rejected(operation, case.body)
        return False

    def exercise(self, operation: APIOperation[Any, Any, Any, Any], case: Any, outcome: OperationResult) -> None:
        operation_id = outcome.operation_id
        if not self.sendable(operation, operation_id, case):
            outcome.refused += 1
            return
        billable_valid = operation_id in BILLABLE and not must_be_rejected(operation, case.body)
        if billable_valid:
            if self.session.budget.max_credits is not None and isinstance(case.body, dict):
                case.body = cheapest(operation_id, case.body)
            try:
                self.session.budget.guard(operation_id, case.body)
            except BudgetExceeded:
                outcome.refused += 1
                return
        outcome.cases += 1
        try:
            response = case.call(headers=self.headers)
        except Exception as exc:  # unreachable target or a broken connection: that is a finding too
            self.suite.finding(outcome.operation, "RequestFailed", "Request failed", repr(exc)[:300], count=True)
            return
        if operation_id in BILLABLE and 200 <= response.status_code < 300:
            self.session.budget.book(operation_id, _body(response))  # BudgetExceeded ends the run
        try:
            case.validate_response(response, headers=self.headers, excluded_checks=[positive_data_acceptance])
        except (FailureGroup, Failure) as error:
            outcome.failed += 1
            # Schemathesis masks the key as [Filtered]; a variable keeps the command runnable.
            curl = case.as_curl_command(headers=self.redacted).replace(
                "'X-Api-Key: [Filtered]'", '"X-Api-Key: $AUROUS_API_KEY"'
            )
            for failure in _failures(error):
                self.suite.finding(
                    outcome.operation,
                    type(failure).__name__,
                    failure.title,
                    failure.message,
                    status=response.status_code,
                    curl=curl,
                    count=False,
                )

    def drive(self, operation: APIOperation[Any, Any, Any, Any], outcome: OperationResult) -> None:
        session = self.session

        def exercise(case: Any) -> None:
            self.exercise(operation, case, outcome)

        settings = hypothesis.settings(
            max_examples=session.max_examples,
            database=None,
            deadline=None,
            derandomize=session.seed is None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: every replay would be another real request
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        config = HypothesisTestConfig(
            project=self.schema.config,
            modes=[HypothesisTestMode.EXAMPLES, HypothesisTestMode.COVERAGE, HypothesisTestMode.FUZZING],
            settings=settings,
            seed=session.seed,
        )
        test = create_test(operation=operation, test_func=exercise, config=config)
        try:
            test()
        except Unsatisfiable:
            pass  # e.g. no way to make an operation without parameters invalid


def _body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def run(session: Session, suite: SuiteRun) -> None:
    conformance = _Conformance(session, suite)
    conformance.schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    for item in conformance.schema.get_all_operations():
        if isinstance(item, Err):
            raise item.err()  # openapi.yaml itself is broken: not drift of the target
        operation = item.ok()
        operation_id = str(operation.definition.raw.get("operationId", operation.label))
        if not (session.selected(operation_id) or session.selected(operation.label)):
            continue
        readonly = operation.method.upper() == "GET" or operation_id in ESTIMATES or operation_id in BILLABLE
        if session.profile != "full" and not readonly:
            continue  # a write that is neither a read, an estimate nor billable: never sent under live-safe
        outcome = suite.operation(operation.label)
        outcome.operation_id = operation_id
        conformance.drive(operation, outcome)
        if session.progress is not None:
            refused = f", {outcome.refused} not sent ({session.profile}/budget)" if outcome.refused else ""
            session.progress(
                f"{'FAIL' if outcome.findings else 'ok  '} conformance {outcome.operation}: "
                f"{outcome.cases - outcome.failed} passed, {outcome.failed} failed{refused}"
            )
    if session.profile != "full":
        suite.skip(f"{session.profile}: sent {LIVE_SAFE_SENDS}")

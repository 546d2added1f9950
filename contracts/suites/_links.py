"""The ``links`` workflow: Schemathesis' stateful testing over the spec's ``links:`` (create → get → cancel → output,
upload → classify → create character → get/update/delete …), every response validated like the conformance suite.

Each scenario runs on a team of its own (local targets); billable steps are pinned to their cheapest parameters
when the run has a cap, guarded by the budget before they are sent and booked after. Failures become findings
instead of Hypothesis errors, so nothing is shrunk or replayed (each replay would be more real requests). Its
requests are not in the differential trace: the random walk depends on timing (a generation may or may not have
finished when its output is fetched), so two conformant targets need not take the same steps.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis.stateful import get_state_machine_test
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

import contracts.checks  # noqa: F401 - registers the project checks with Schemathesis
from contracts.budget import BILLABLE, cheapest
from contracts.exchanges import parsed
from contracts.schema import load_schema
from contracts.suites._flow import Flow

__all__ = ["STEPS", "links"]

STEPS = 6  # calls per scenario; with ``max_examples`` scenarios that bounds the whole walk


def _failures(error: BaseException) -> list[Failure]:
    if isinstance(error, FailureGroup):
        return [failure for inner in error.exceptions for failure in _failures(inner)]
    return [error] if isinstance(error, Failure) else []


def _machine(flow: Flow) -> type[Any]:
    """The spec's state machine, authenticated per scenario, budget-guarded, its failures turned into findings."""
    session, suite, name = flow.session, flow.suite, flow.name
    schema = load_schema(session.target)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    outcome = suite.operation(name)

    class Links(schema.as_state_machine()):  # type: ignore[misc]
        key: str | None = None

        def setup(self) -> None:
            self.key = session.fresh().api_key

        def headers(self) -> dict[str, str]:
            return {"X-Api-Key": self.key} if self.key else {}

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": self.headers()}

        def call(self, case: Any, **kwargs: Any) -> Any:
            operation_id = str(case.operation.definition.raw.get("operationId", ""))
            if operation_id in BILLABLE:
                if session.budget.max_credits is not None and isinstance(case.body, dict):
                    case.body = cheapest(operation_id, case.body)
                session.budget.guard(operation_id, case.body)  # BudgetExceeded ends the run before the cap
            response = session.call_case(case, **kwargs)  # TargetHung once the target stopped answering
            outcome.cases += 1
            if operation_id in BILLABLE and 200 <= response.status_code < 300:
                session.budget.book(operation_id, parsed(response))
            return response

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            try:
                case.validate_response(
                    response, headers=self.headers(), excluded_checks=[positive_data_acceptance], recorder=self.recorder
                )
            except (FailureGroup, Failure) as error:
                outcome.failed += 1
                curl = case.as_curl_command(headers={"X-Api-Key": "$AUROUS_API_KEY"})
                for failure in _failures(error):
                    title = f"{case.operation.label}: {failure.title}"
                    suite.finding(
                        name,
                        type(failure).__name__,
                        title,
                        failure.message,
                        status=response.status_code,
                        curl=curl,
                        count=False,
                    )

    return Links


def links(flow: Flow) -> None:
    session = flow.session
    machine = _machine(flow)
    settings = hypothesis.settings(
        max_examples=session.max_examples,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        derandomize=session.seed is None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # Hypothesis narrates; findings carry what matters
        if session.seed is None:
            machine.run(settings=settings)
        else:
            hypothesis.seed(session.seed)(get_state_machine_test(machine, settings=settings))()

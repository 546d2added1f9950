"""The emulator's workflows against openapi.yaml: Schemathesis' state machine follows the spec's links
(create → get → cancel → output) and every answer on the way conforms.

Single requests, positive and negative, every operation, are judged in ``test_fuzz.py`` (the same checks and more).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mockserver import Settings, create_app
from mockserver.clock import VirtualClock
from mockserver.webhooks import RecordingSender

app = create_app(
    Settings(clock="virtual", rate_limits_enabled=False, default_credits=1e9, seed=7),
    clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)),
    sender=RecordingSender(),  # fuzzed webhook URLs must never be called for real
)
stateful = schemathesis.openapi.from_asgi("/openapi.json", app)
stateful.config.generation.update(max_examples=30, with_security_parameters=False)
Workflow = stateful.as_state_machine()


class _AuthenticatedWorkflow(Workflow):  # type: ignore[misc,valid-type]
    """Each scenario on a team of its own: on one shared team, what earlier scenarios left (generations, endpoints,
    idempotency keys) changed what a later one's same choices met, which Hypothesis rightly calls a flaky
    strategy (FlakyStrategyDefinition in CI)."""

    scenarios = 0

    def setup(self) -> None:
        type(self).scenarios += 1
        self.key = f"al_live_schemathesis_workflow_{self.scenarios}"

    def get_call_kwargs(self, case):
        return {"headers": {"X-Api-Key": self.key}}

    def validate_response(self, response, case, additional_checks=(), **kwargs):
        case.validate_response(response, headers={"X-Api-Key": self.key}, excluded_checks=[positive_data_acceptance])


@pytest.mark.slow
def test_emulator_workflows_follow_openapi_links():
    """create → get → cancel → output chains built from the spec's links stay conformant."""
    _AuthenticatedWorkflow.run(
        settings=settings(max_examples=25, stateful_step_count=8, deadline=None, derandomize=True)
    )

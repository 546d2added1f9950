"""Suite 3, the lifecycle model: :func:`contracts.lifecycle.run_lifecycle` as a suite of the runner.

A violation becomes one finding named for the broken property (``balance_conserved``, ``cancel_semantics`` …),
with Hypothesis' minimal program as the message. Against a target without the emulator's clock the 24 h output
expiry is not checked, and the suite says so; without spending allowed, only the read rules run.
"""

from __future__ import annotations

import contextlib
import io
import math

from contracts.lifecycle import LifecycleViolation, run_lifecycle
from contracts.session import Session, SuiteRun

__all__ = ["run"]

OPERATION = "lifecycle"


def run(session: Session, suite: SuiteRun) -> None:
    if not session.selected(OPERATION):
        return
    outcome = suite.operation(OPERATION)
    if not session.spend_allowed:
        suite.skip("lifecycle: no creates without --allow-spend --max-credits N; only the balance rules ran")
    if not session.clock_control:
        suite.skip("lifecycle: the target has no clock control, so the 24 h output expiry is not checked")
        suite.skip(
            "lifecycle: the user's team may be busy with other services, so only available = credits − held is "
            "judged of the balance (the workflows judge each charge on its own ledger rows)"
        )
    max_creates = None if session.spend_allowed else 0
    examples = max(1, math.ceil(session.max_examples / 2))
    printed = io.StringIO()  # Hypothesis prints the falsifying program; it belongs in the finding
    try:
        with contextlib.redirect_stdout(printed):
            run_lifecycle(
                session.target.base_url,
                session.api_key or "",
                client=session.client,
                max_examples=examples,
                steps=15,
                seed=session.seed,
                max_creates=max_creates,
                budget=session.budget,
                clock_control=session.clock_control,
            )
    except LifecycleViolation as violation:
        program = printed.getvalue().strip()
        suite.finding(
            OPERATION,
            violation.name,
            f"lifecycle property {violation.name} broken",
            f"{violation}\n\n{program}" if program else str(violation),
        )
    outcome.cases += examples
    if session.progress is not None:
        verdict = "FAIL" if outcome.findings else "ok  "
        session.progress(f"{verdict} lifecycle: {examples} programs of up to 15 steps")

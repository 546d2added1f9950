"""Suite 2, stateful workflows: scripted journeys over the spec's links, each a named "operation" of the report.

- ``estimate_holds_nothing`` (reads only, every profile): an estimate is deterministic, holds no credits and
  inserts no generation.
- ``image_create_poll_output``: estimate → create with the same body: ``cost.amount`` is the estimate and exactly
  it is held, then charged → poll (statuses never go backwards) → a real PNG of width × height → a succeeded
  generation is not cancellable → ``410 output_expired`` 24 h + 1 s after completion (clock control only).
- ``video_create_poll_output``: the same for a video, with MP4 bytes (an ``ftyp`` box).
- ``video_create_cancel``: cancel while pending → ``cancelled``, the hold released, output ``422
  output_not_available``, a second cancel a no-op; still cancelled and uncharged an hour later (clock control).
- ``character_workflow`` (reference §2.6): upload → PUT to the signed URL → classify → a character ``ready`` at
  once → generate with it (image-to-image, plain price) → delete → refused with ``400 character_not_ready``; then
  a synthesis ``synthesizing → ready`` charging 4 generations (clock control only).
- ``links``: Schemathesis' stateful testing over the spec's ``links:`` (``full`` profile only).

Creating workflows need spending allowed (``--allow-spend --max-credits N`` on a live target); each runs on a team
of its own on local targets (:meth:`Session.fresh`), pins the cheapest parameters and lets the budget guard every
billable call, so ``BudgetExceeded`` stops the run before the cap. Without the emulator's clock the kit polls in
real time within a deadline and skips what would take a day. Findings are named for the property
(``ChargedMoreThanEstimated``, ``StatusWentBackwards``, ``OutputNotPNG``, ``OutputNeverExpires``,
``CancelDidNotReleaseHold``, ``CharacterNotUsable``, ``CharacterUsableAfterDelete`` …) with expected and actual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from contracts.budget import BudgetExceeded
from contracts.session import Session, SuiteRun
from contracts.suites._characters import character_workflow
from contracts.suites._flow import Flow, Stop
from contracts.suites._generations import (
    estimate_holds_nothing,
    image_create_poll_output,
    video_create_cancel,
    video_create_poll_output,
)
from contracts.suites._links import links

__all__ = ["WORKFLOWS", "Workflow", "run"]

SPEND = "it creates; needs --allow-spend --max-credits N"


@dataclass(frozen=True)
class Workflow:
    name: str
    steps: Callable[[Flow], None]
    creates: bool = True
    full_only: bool = False


WORKFLOWS = (
    Workflow("estimate_holds_nothing", estimate_holds_nothing, creates=False),
    Workflow("image_create_poll_output", image_create_poll_output),
    Workflow("video_create_poll_output", video_create_poll_output),
    Workflow("video_create_cancel", video_create_cancel),
    Workflow("character_workflow", character_workflow),
    Workflow("links", links, full_only=True),
)


def _refusal(session: Session, workflow: Workflow) -> str | None:
    if workflow.full_only and session.profile != "full":
        return f"only in the full profile ({session.profile} sends no generated creates)"
    if workflow.creates and not session.spend_allowed:
        return SPEND
    return None


def _progress(session: Session, suite: SuiteRun, name: str, stopped: str = "") -> None:
    if session.progress is None:
        return
    outcome = suite.operation(name)
    verdict = "FAIL" if outcome.findings else "ok  "
    passed = outcome.cases - outcome.failed
    session.progress(f"{verdict} workflows {name}: {passed} passed, {outcome.failed} failed{stopped}")


def _run_one(session: Session, suite: SuiteRun, workflow: Workflow) -> None:
    flow = Flow(session.fresh(), suite, workflow.name)
    suite.operation(workflow.name)  # listed even when it stops at its first step
    try:
        workflow.steps(flow)
    except Stop:
        pass
    except BudgetExceeded:
        suite.operation(workflow.name).refused += 1
        _progress(session, suite, workflow.name, "; stopped: the next call would cross the credit cap")
        raise
    except httpx.HTTPError as exc:  # an unreachable target or a dropped connection is a finding too
        suite.finding(workflow.name, "RequestFailed", "Request failed", repr(exc)[:300], curl=flow.curl)
    _progress(session, suite, workflow.name)


def run(session: Session, suite: SuiteRun) -> None:
    _ = session.clock_control  # probed once, so every team of its own inherits the answer
    for workflow in WORKFLOWS:
        if not session.selected(workflow.name):
            continue
        reason = _refusal(session, workflow)
        if reason is not None:
            suite.skip(f"{workflow.name}: {reason}")
            if session.progress is not None:
                session.progress(f"skip workflows {workflow.name}: {reason}")
            continue
        _run_one(session, suite, workflow)

"""The runner: run the suites against a target within its profile and budget, collect drift, write the report.

Example:
    >>> from contracts import Target, check
    >>> result = check(Target("emulator", app=my_asgi_app), max_examples=5)  # doctest: +SKIP
    >>> result.exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from contracts import suites as registry
from contracts.budget import ESTIMATE_OPERATIONS, Budget, BudgetExceeded
from contracts.report import CheckResult, SuiteResult, write_report
from contracts.session import Progress, Session, SuiteRun
from contracts.targets import Target

__all__ = ["FULL", "LIVE_SAFE", "PROFILES", "SpendNotAllowed", "check", "replay_command"]

LIVE_SAFE, FULL = "live-safe", "full"
PROFILES = (LIVE_SAFE, FULL)


class SpendNotAllowed(ValueError):
    """Spending on a live target was asked for without both ``allow_spend`` and a cap."""


def replay_command(
    target: Target,
    *,
    suite: str,
    operation: str,
    profile: str,
    seed: int | None,
    max_examples: int,
    allow_spend: bool,
    max_credits: float | None,
) -> str:
    """The ``aurous-mock check`` command that runs one operation of one suite again, with the same cases."""
    parts = ["aurous-mock", "check", "--target", target.base_url if not target.in_process else target.name]
    if target.api_key is not None:
        parts += ["--api-key", "$AUROUS_API_KEY"]
    parts += ["--profile", profile, "--suite", suite, "--operation", operation, "--max-examples", str(max_examples)]
    if seed is not None:
        parts += ["--seed", str(seed)]
    if allow_spend:
        parts.append("--allow-spend")
    if max_credits is not None:
        parts += ["--max-credits", f"{max_credits:g}"]
    return " ".join(part if part.startswith("$") else shlex.quote(part) for part in parts)


def _estimator(session: Session) -> Any:
    def estimate(operation_id: str, body: Any) -> float | None:
        """The target's own estimate for a billable body, or ``None`` to fall back to the rate card."""
        path = {"estimateImage": "/v1/images/estimate", "estimateVideo": "/v1/videos/estimate"}.get(
            ESTIMATE_OPERATIONS.get(operation_id, "")
        )
        if path is None or not isinstance(body, dict):
            return None
        try:
            response = session.client.post(path, json=body, headers=session.headers())
            amount = response.json()["estimated_cost"]["amount"]
        except Exception:  # any failure to estimate means the pessimistic rate card applies
            return None
        return float(amount) if response.status_code == 200 and isinstance(amount, int | float) else None

    return estimate


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
    options: Mapping[str, str] | None = None,
) -> CheckResult:
    """Check ``target`` against openapi.yaml and the API's conventions.

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
        options: suite settings: ``receiver_url`` (a public URL forwarding to the local webhook receiver) with
            ``receiver_port`` (the local port it forwards to), ``read_only_key`` (a key of scope ``read``).
    """
    if target.is_live:
        if allow_spend and max_credits is None:
            raise SpendNotAllowed("--allow-spend needs --max-credits N: a live target is never spent on without a cap")
        if max_credits and not allow_spend:
            raise SpendNotAllowed("--max-credits on a live target needs --allow-spend as well")
        cap: float | None = max_credits if allow_spend else 0.0
    else:
        cap = max_credits
    profile = profile or (LIVE_SAFE if target.is_live else FULL)
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    names = list(suites) if suites is not None else list(registry.SUITES)
    runners = [(name, registry.load(name)) for name in names]

    budget = Budget(cap)
    session = Session(
        target,
        profile=profile,
        budget=budget,
        seed=seed,
        max_examples=max_examples,
        operations=frozenset(operations) if operations is not None else None,
        progress=progress,
        options=options,
    )
    budget.estimator = _estimator(session)
    result = CheckResult(target=target.name, profile=profile, max_credits=cap, seed=seed)
    try:
        for name, run in runners:
            suite = SuiteResult(name)
            result.suites.append(suite)
            if result.aborted is not None:
                suite.skipped.append("not run: the budget aborted the run")
                continue

            def replay(operation: str, suite_name: str = name) -> str:
                return replay_command(
                    target,
                    suite=suite_name,
                    operation=operation,
                    profile=profile,
                    seed=seed,
                    max_examples=max_examples,
                    allow_spend=bool(allow_spend),
                    max_credits=max_credits,
                )

            before = budget.spent
            try:
                run(session, SuiteRun(suite, session, replay))
            except BudgetExceeded as exc:
                result.aborted = f"{name}: {exc}; spent {budget.spent:g} credits"
            finally:
                suite.spent = budget.spent - before
    finally:
        session.close()
    result.spent = budget.spent
    if report_dir is not None:
        write_report(result, report_dir)
    return result

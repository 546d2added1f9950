"""The kit's suites, in the order ``check`` runs them. Each is a module with ``run(session, suite)``.

====================  ======================================================================================
``conformance``       Schemathesis over every operation (examples, coverage, fuzzing): bodies, statuses,
                      content types and the conventional headers against openapi.yaml; negative data must be
                      rejected with the error envelope.
``workflows``         scripted journeys and the spec's links: create → poll → cancel → output; estimate →
                      create charges the estimate; the character workflow.
``lifecycle``         the rule-based state machine of :mod:`contracts.lifecycle` (status order, terminal
                      states, balance conservation, idempotent replays, output expiry).
``webhooks``          a local receiver gets real deliveries, verifies signatures, validates every payload
                      against the spec's ``webhooks:`` section.
``conventions``       auth errors, scopes, version pin and ``unknown_version``, idempotency replay and 409s,
                      rate-limit headers and the 429 shape.
``chat``              chat completions as clients read them: the SSE frame grammar, role first, finish reason
                      and usage last, ``[DONE]``, usage adds up, charge == breakdown (cheapest, ``max_tokens: 1``);
                      an embedding charges its estimate.
====================  ======================================================================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts.session import Session, SuiteRun

__all__ = ["SUITES", "Suite", "load"]

Suite = Callable[["Session", "SuiteRun"], None]

# name → module; modules are imported only when their suite runs.
SUITES: dict[str, str] = {
    "conformance": "contracts.suites.conformance",
    "workflows": "contracts.suites.workflows",
    "lifecycle": "contracts.suites.lifecycle",
    "webhooks": "contracts.suites.webhooks",
    "conventions": "contracts.suites.conventions",
    "chat": "contracts.suites.chat",
}


def load(name: str) -> Suite:
    try:
        module = SUITES[name]
    except KeyError:
        raise ValueError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}") from None
    run: Suite = importlib.import_module(module).run
    return run

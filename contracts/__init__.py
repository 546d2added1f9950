"""The contract-test kit: checks any Aurous API target (live, emulator, in-process) against openapi.yaml.

It speaks only HTTP and never imports ``mockserver``, so the same suites run against every target.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from contracts.signature import (
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    SignatureVerificationError,
    TimestampOutsideToleranceError,
    parse_event,
    sign,
    verify_signature,
)

if TYPE_CHECKING:
    from contracts.listen import Listener, Received

__all__ = [
    # Checking a target against openapi.yaml (aurous-mock check)
    "check",
    "Target",
    "load_schema",
    "CheckResult",
    "Finding",
    # The job protocol as a rule-based state machine (suite 3)
    "JobLifecycle",
    "LifecycleViolation",
    "run_lifecycle",
    # Spending cap on the paid API
    "Budget",
    "BudgetExceeded",
    # Project checks' failures, named for the property they break
    "MissingRequestId",
    "RequestIdMismatch",
    "MissingVersionEcho",
    "ErrorEnvelopeMissing",
    "DocUrlMismatch",
    # Webhook signatures (receivers and the kit)
    "verify_signature",
    "parse_event",
    "sign",
    "SignatureVerificationError",
    "MissingSignatureError",
    "MalformedSignatureError",
    "SignatureMismatchError",
    "TimestampOutsideToleranceError",
    # Webhook receiver (aurous-mock listen)
    "Listener",
    "Received",
    # Drifted targets, to see what the kit reports (aurous-mock drift-proxy)
    "DriftProxy",
    "DRIFTS",
]

# The checking half loads Schemathesis (and registers its checks); receivers and signature helpers must not pay
# for that, so those names are imported on first use.
_LAZY = {
    "check": "contracts.check",
    "Target": "contracts.targets",
    "load_schema": "contracts.schema",
    "CheckResult": "contracts.report",
    "Finding": "contracts.report",
    "JobLifecycle": "contracts.lifecycle",
    "LifecycleViolation": "contracts.lifecycle",
    "run_lifecycle": "contracts.lifecycle",
    "Budget": "contracts.budget",
    "BudgetExceeded": "contracts.budget",
    "MissingRequestId": "contracts.checks",
    "RequestIdMismatch": "contracts.checks",
    "MissingVersionEcho": "contracts.checks",
    "ErrorEnvelopeMissing": "contracts.checks",
    "DocUrlMismatch": "contracts.checks",
    "DriftProxy": "contracts.drift",
    "DRIFTS": "contracts.drift",
    # The receiver loads uvicorn, Starlette and httpx: neither `aurous-mock serve` (contracts.serving) nor the
    # pytest plugin's bare `import contracts` pays for it.
    "Listener": "contracts.listen",
    "Received": "contracts.listen",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'contracts' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    # Importing `contracts.check` binds the submodule under the same name; the function must win.
    globals()[name] = value
    return value

"""Fuzzing: Schemathesis, positive and negative data, every operation of openapi.yaml and control-openapi.yaml.

The guarantee: whatever the request, the emulator answers with no 5xx and every error body is the vendor's
envelope (``{"error": {type, code, message, param, doc_url, request_id}}``, ``type`` matching the status,
``request_id`` equal to the ``Aurous-Request-Id`` header) — besides Schemathesis' conformance checks (documented
statuses, content types, required headers, response schemas, schema-violating input rejected), so a larger run also
shakes out schema drift. ``positive_data_acceptance`` is off on purpose: a schema-valid request may still be refused
by business rules (unpublished Aurous-Version dates, unknown LoRAs, insufficient credits), as upstream does.

This is also the emulator's conformance run (it was a module of its own, which sent the same kind of cases
again). ``AUROUS_FUZZ_EXAMPLES`` sets the examples per operation and mode for both surfaces (the CI slice: 40 for
the public API, 25 for the control plane); ``AUROUS_FUZZ_EXAMPLES=2000`` sends well over 100,000.
``AUROUS_FUZZ_REPORT=path.json`` writes what the run actually sent (requests by status class, those to the control
plane, duration) when the module ends. The examples are derandomized: the same ones every run, so a failure in CI
reproduces locally.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from starlette.types import Receive, Scope, Send

from contracts.suites.conformance import SIZE_REJECTIONS
from mockserver import Settings, create_app
from mockserver.clock import VirtualClock
from mockserver.webhooks import RecordingSender
from tests.helpers import ENVELOPE_FIELDS, REQUEST_ID, error_type_for

CHOSEN = os.environ.get("AUROUS_FUZZ_EXAMPLES")
EXAMPLES = {"public": int(CHOSEN or 40), "control": int(CHOSEN or 25)}
REPORT = os.environ.get("AUROUS_FUZZ_REPORT")
KEY = "al_live_fuzz"


class CountingApp:
    """The emulator behind a counter of the requests it actually answered, by status class."""

    def __init__(self) -> None:
        self.app = create_app(
            Settings(clock="virtual", rate_limits_enabled=False, default_credits=1e12, seed=11, journal_size=100),
            clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)),
            sender=RecordingSender(),  # fuzzed webhook URLs must never be called for real
        )
        self.statuses: Counter[str] = Counter()
        self.control = 0  # of them, requests to /_mock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.statuses[f"{message['status'] // 100}xx"] += 1
                self.control += scope["path"].startswith("/_mock")
            await send(message)

        await self.app(scope, receive, counted)


target = CountingApp()
schema = schemathesis.openapi.from_asgi("/openapi.json", target)
control = schemathesis.openapi.from_asgi("/_mock/openapi.yaml", target)  # control-openapi.yaml
target.statuses.clear()  # loading the specs is not a fuzzed request
target.control = 0
for surface, loaded in (("public", schema), ("control", control)):
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES[surface],
        with_security_parameters=False,
    )
    # A negative case can be big enough to meet a size limit first (a 12 MB chat body): a 413/414/431 rejects it too,
    # as the kit judges it (contracts.suites.conformance).
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*dict.fromkeys([*rejection.expected_statuses, *SIZE_REJECTIONS])]


class NotAnEnvelope(Failure):
    code = "AU910"

    def __init__(self, *, operation: str, message: str) -> None:
        super().__init__(operation=operation, title="5xx or an error body that is not the envelope", message=message)


def strict_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx at all; every 4xx is JSON, exactly the envelope, its ``type`` the one of its status."""
    status = response.status_code
    problem = None
    if status >= 500:
        problem = "a server error"
    elif status >= 400:
        problem = _envelope_problem(response)
    if problem is not None:
        raise NotAnEnvelope(operation=case.operation.label, message=f"{status}: {problem}: {response.text[:300]}")
    return None


def _envelope_problem(response: Any) -> str | None:
    if not response.headers.get("content-type", [""])[0].startswith("application/json"):
        return "not JSON"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "malformed JSON"
    error = body.get("error") if isinstance(body, dict) and set(body) == {"error"} else None
    if not isinstance(error, dict) or not ENVELOPE_FIELDS <= set(error) <= {*ENVELOPE_FIELDS, "status"}:
        return "not {error: {type, code, message, param, doc_url, request_id}}"
    [request_id] = response.headers.get("aurous-request-id", [""])
    if error["type"] != error_type_for(response.status_code) or not REQUEST_ID.match(error["request_id"]):
        return "wrong type or request id"
    if error["request_id"] != request_id or error["doc_url"] != f"https://docs.aurous-labs.com/errors#{error['code']}":
        return "request id or doc_url differ from the header and code"
    return None


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """Write what was actually sent (``AUROUS_FUZZ_REPORT``) when the module ends."""
    started = time.monotonic()
    yield
    if REPORT:
        summary = {
            "examples_per_operation": EXAMPLES,
            "requests": sum(target.statuses.values()),
            "control_plane_requests": target.control,
            "by_status": dict(sorted(target.statuses.items())),
            "seconds": round(time.monotonic() - started, 1),
        }
        Path(REPORT).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


@pytest.mark.slow
@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None, derandomize=True, database=None)
def test_fuzzed_requests_never_get_a_5xx_or_a_bare_error(case):
    excluded = [positive_data_acceptance]
    if case.operation.method.upper() == "POST" and case.operation.path == "/v1/files":
        # A multipart field mutated into an empty array is serialized as no part at all: a valid request that
        # Schemathesis still counts as negative (found at 2000 examples), so that check cannot judge this operation.
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers={"X-Api-Key": KEY}, additional_checks=[strict_envelope], excluded_checks=excluded)


@pytest.mark.slow
@control.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None, derandomize=True, database=None)
def test_fuzzed_control_plane_requests_never_get_a_5xx_or_a_bare_error(case):
    """The same over ``control-openapi.yaml``, each operation with a key of its own (its own team and clock)."""
    case.call_and_validate(
        headers={"X-Api-Key": f"al_live_fuzz_{case.operation.definition.raw.get('operationId', 'control')}"},
        additional_checks=[strict_envelope],
        excluded_checks=[positive_data_acceptance],
    )


@pytest.mark.slow
def test_fuzz_run_sent_requests_and_no_server_error():
    """Runs after the fuzz cases this process ran (all of them, or a share under xdist): none got a 5xx."""
    if not target.statuses:
        pytest.skip("no fuzz case ran in this process")
    assert target.statuses["5xx"] == 0, target.statuses

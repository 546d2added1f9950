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

import copy
import shlex
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import hypothesis
import jsonschema_rs
import requests
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import AcceptedNegativeData, Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.core.transport import Response
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test
from schemathesis.openapi.checks import UndefinedStatusCode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import positive_data_acceptance, response_schema_conformance
from schemathesis.transport.prepare import prepare_request

import contracts.checks  # noqa: F401 - registers the project checks with Schemathesis
from contracts.budget import BILLABLE, ESTIMATE_OPERATIONS, BudgetExceeded, cheapest
from contracts.exchanges import Exchange, exchange, parsed
from contracts.expectation import expectation
from contracts.report import OperationResult
from contracts.schema import load_schema
from contracts.session import REDACTED_KEY, Session, SuiteRun, phases
from contracts.stall import TargetHung

if TYPE_CHECKING:
    from contracts.differential import Differential

__all__ = ["LIVE_SAFE_SENDS", "PHASES", "must_be_rejected", "run", "unusable"]

ESTIMATES = frozenset(ESTIMATE_OPERATIONS.values())
WEBHOOK_SECRETS = frozenset({"createWebhookEndpoint", "rotateWebhookEndpointSecret"})
LIVE_SAFE_SENDS = "reads, estimates, and billable creates with schema-invalid bodies only"
# Schemathesis' phases by the names its CLI gives them (the ``phases`` option picks some: :func:`session.phases`).
PHASES = {
    "examples": HypothesisTestMode.EXAMPLES,
    "coverage": HypothesisTestMode.COVERAGE,
    "fuzzing": HypothesisTestMode.FUZZING,
}


class _Unusable(Exception):
    """Raised inside a Hypothesis test to end an operation's cases: its target's answers cannot be judged."""


def _documented_media(case: Any, status: int) -> set[str]:
    """The media types the operation documents for ``status`` (else its ``default``, else any of its answers)."""
    responses = case.operation.definition.raw.get("responses", {})
    entry = responses.get(str(status)) or responses.get(status) or responses.get("default")
    chosen = [entry] if isinstance(entry, dict) else [value for value in responses.values() if isinstance(value, dict)]
    return {media for value in chosen for media in (value.get("content") or {})}


def unusable(case: Any, response: Any) -> str | None:
    """Why an answer is of no use for judging the operation's further cases, or ``None`` when it is usable.

    Unusable: no answer at all; a body that is no JSON where the operation documents JSON; an error status whose JSON
    carries no error envelope (nothing tells which error it is). A target answering like that answers every further
    case the same way, so sending them only repeats the finding (and makes a broken live target crawl for minutes).
    """
    if response is None:
        return "no answer"
    body = parsed(response)
    if body is None and response.content and "application/json" in _documented_media(case, response.status_code):
        return f"a {response.status_code} whose body is no JSON"
    if not response.content:
        return None  # a HEAD, a 204: nothing to judge but the status and headers
    if response.status_code >= 400 and not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
        return f"a {response.status_code} without the error envelope"
    return None


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


_VALIDATORS: dict[int, Any] = {}  # id(request schema) → its compiled validator (one per operation, not per case)


def must_be_rejected(operation: APIOperation[Any, Any, Any, Any], body: Any) -> bool:
    """Whether ``body`` violates the operation's request schema, judged locally: only then may a billable request
    be sent when spending is not allowed, because a conformant target must reject it before billing."""
    schema = _request_schema(operation)
    if schema is None:
        return False
    try:
        validator = _VALIDATORS.get(id(schema))
        if validator is None:
            components = operation.schema.raw_schema.get("components", {})  # $refs point into the whole document
            validator = _VALIDATORS[id(schema)] = jsonschema_rs.validator_for({**schema, "components": components})
        return not validator.is_valid(body)
    except (ValueError, jsonschema_rs.ValidationError):
        return False  # cannot prove it invalid: do not send


def _mode(case: Any) -> GenerationMode:
    meta = getattr(case, "_meta", None) or getattr(case, "meta", None)
    return meta.generation.mode if meta is not None else GenerationMode.POSITIVE


SIZE_REJECTIONS = ("413", "414", "431")


def _schema(session: Session) -> Any:
    schema = load_schema(session.target)
    # Our curl redacts the key itself (as a variable the shell expands); Schemathesis' "[Filtered]" would also hide
    # idempotency keys and make the command unusable.
    schema.config.output.sanitization.update(enabled=False)
    # A request the target refuses for its size (413 body, 414 target, 431 head) is rejected too: generated negative
    # data can be large enough to meet the documented size limits first, and that is no drift (seed 6 once was).
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*dict.fromkeys([*rejection.expected_statuses, *SIZE_REJECTIONS])]
    if session.target.is_live or session.profile != "full":
        # A paid target (or a live-safe run) never gets methods the spec does not document.
        schema.config.phases.coverage.unexpected_methods = set()
    return schema


def _send(suite: SuiteRun, outcome: OperationResult, case: Any, headers: dict[str, str]) -> Any:
    """Send one case, booking what a billable 2xx charged; ``None`` (and a finding) when no answer came."""
    session = suite.session
    # Over the network: one pooled connection instead of one per case; no proxy lookup in the environment per request.
    pooled = {} if session.target.in_process else {"session": _http(session)}
    try:
        response = session.call_case(case, headers=headers, **pooled)
    except TargetHung as exc:  # the target hangs: this case is the finding, nothing more is sent
        message = f"{exc}: {exc.__cause__!r}"[:300]
        suite.finding(
            outcome.operation, "RequestFailed", "Request failed", message, count=True, curl=_curl(case, session)
        )
        return None
    except Exception as exc:  # unreachable target, a broken connection: that is a finding too
        suite.finding(
            outcome.operation, "RequestFailed", "Request failed", repr(exc)[:300], count=True, curl=_curl(case, session)
        )
        return None
    if 200 <= response.status_code < 300:
        session.created(str(case.method).upper(), case.formatted_path, parsed(response))
    if outcome.operation_id in WEBHOOK_SECRETS and 200 <= response.status_code < 300:
        suite.session.learn(parsed(response))
    if outcome.operation_id in BILLABLE and 200 <= response.status_code < 300:
        budget = suite.session.budget
        before = budget.spent
        try:
            budget.book(outcome.operation_id, parsed(response))  # BudgetExceeded ends the run
        finally:
            suite.result.spent += budget.spent - before  # each target's run of the suite keeps its own account
    return response


def _http(session: Session) -> requests.Session:
    """The conformance suite's pooled ``requests`` session on this target (closed with the Session)."""
    pooled = session.pools.get("requests")
    if pooled is None:
        pooled = requests.Session()
        pooled.trust_env = False  # loopback or the API: never an environment proxy, and no lookup per request
        session.pools["requests"] = pooled
    return pooled


def _judge(
    suite: SuiteRun,
    outcome: OperationResult,
    case: Any,
    response: Any,
    headers: dict[str, str],
    curl: Callable[[], str],
) -> None:
    """Schemathesis' checks and the project's on one answer; each failure a finding with expected vs actual.

    ``curl`` is built only when something failed (it costs as much as validating).
    """
    failures = _validated(case, response, headers, excluded_checks=[positive_data_acceptance])
    failures += _as_documented(case, response, headers, failures)
    failures = [failure for failure in failures if not _unrepresentable(suite, outcome, case, failure)]
    if not failures:
        return
    outcome.failed += 1
    command = curl()
    for failure in failures:
        expected, actual = expectation(failure)
        suite.finding(
            outcome.operation,
            type(failure).__name__,
            failure.title,
            failure.message,
            expected=expected,
            actual=actual,
            status=response.status_code,
            curl=command,
            count=False,
        )


def _unrepresentable(suite: SuiteRun, outcome: OperationResult, case: Any, failure: Failure) -> bool:
    """Negative data a multipart body cannot carry: every form part is text on the wire, so a part whose JSON type
    was mutated (a string made an object) arrives as valid text, and accepting it is no drift. Noted once."""
    if not isinstance(failure, AcceptedNegativeData) or not _multipart(case):
        return False
    if "violates `type`" not in failure.message:
        return False
    note = f"conformance {outcome.operation}: type mutations of multipart form parts are not judged (text on the wire)"
    if note not in suite.result.skipped:
        suite.skip(note)
    return True


def _validated(case: Any, response: Any, headers: dict[str, str], **options: Any) -> list[Failure]:
    try:
        case.validate_response(response, headers=headers, **options)
    except (FailureGroup, Failure) as error:
        return list(_failures(error))
    return []


def _as_documented(case: Any, response: Any, headers: dict[str, str], failures: list[Failure]) -> list[Failure]:
    """A 2xx with an undocumented status hides its body from the schema check; when the operation documents exactly
    one 2xx, the body is validated against that one too, so a second drift in the same answer is its own finding."""
    if not 200 <= response.status_code < 300 or not any(isinstance(f, UndefinedStatusCode) for f in failures):
        return []
    documented = [code for code in case.operation.definition.raw.get("responses", {}) if str(code).startswith("2")]
    if len(documented) != 1 or not str(documented[0]).isdigit():
        return []
    twin = copy.copy(Response.from_any(response))
    twin.status_code = int(documented[0])
    return _validated(case, twin, headers, checks=[response_schema_conformance])


def _curl(case: Any, session: Session) -> str:
    """The case as a ``curl`` command, the API key replaced by ``$AUROUS_API_KEY`` (double-quoted, so it expands).

    A body that is not JSON (a multipart upload's bytes) is written to a file beside the report and referenced with
    ``--data-binary @…``, so the command stays copy-pasteable.
    """
    if _multipart(case):
        return _curl_with_body_file(case, session)
    if not session.api_key:
        return str(case.as_curl_command())
    curl = str(case.as_curl_command(headers={"X-Api-Key": REDACTED_KEY}))
    return curl.replace(f"'X-Api-Key: {REDACTED_KEY}'", f'"X-Api-Key: {REDACTED_KEY}"')


def _multipart(case: Any) -> bool:
    media_type = str(getattr(case, "media_type", None) or "")
    return media_type.startswith("multipart/") or media_type == "application/octet-stream"


_NOT_SHOWN = frozenset(
    {"content-length", "user-agent", "accept-encoding", "accept", "connection", "x-schemathesis-testcaseid"}
)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _curl_with_body_file(case: Any, session: Session) -> str:
    key = {"X-Api-Key": REDACTED_KEY} if session.api_key else {}
    request = prepare_request(case, key, config=case.operation.schema.config.output.sanitization)
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    method = request.method.decode() if isinstance(request.method, bytes) else str(request.method)
    parts = ["curl", "-X", method]
    for raw_name, raw_value in request.headers.items():
        name, value = _text(raw_name), _text(raw_value)
        if name.lower() in _NOT_SHOWN:
            continue
        shown = f'"{name}: {value}"' if name.lower() == "x-api-key" else shlex.quote(f"{name}: {value}")
        parts += ["-H", shown]
    if body:
        parts += ["--data-binary", shlex.quote(f"@{session.body_file(body)}")]
    parts.append(shlex.quote(str(request.url)))
    return " ".join(parts)


def _rebound(case: Any, operation: APIOperation[Any, Any, Any, Any]) -> Any:
    """The same generated case (data and generation metadata) bound to another target's schema (its URL or app).

    A shallow copy slot by slot: ``Case.__setattr__`` tracks edits to revalidate metadata, which a copy is not.
    """
    twin = object.__new__(type(case))
    for name in type(case).__slots__:
        object.__setattr__(twin, name, getattr(case, name))
    object.__setattr__(twin, "operation", operation)
    return twin


class _Twin:
    """The second target of a differential run: every case sent to the first goes here too, is judged on its own,
    and the two answers are compared (:mod:`contracts.differential`)."""

    def __init__(self, suite: SuiteRun, differential: Differential) -> None:
        self.suite, self.session, self.differential = suite, suite.session, differential
        self.headers = self.session.headers()
        operations = (item.ok() for item in _schema(self.session).get_all_operations() if not isinstance(item, Err))
        self.operations = {operation.label: operation for operation in operations}

    def exercise(self, case: Any, first: OperationResult, answer: Exchange) -> None:
        outcome = self.suite.operation(first.operation)
        outcome.operation_id = first.operation_id
        twin = _rebound(case, self.operations[case.operation.label])
        outcome.cases += 1
        response = _send(self.suite, outcome, twin, self.headers)
        if response is None:
            return
        curl = _curl(twin, self.session)
        _judge(self.suite, outcome, twin, response, self.headers, lambda: curl)
        second = exchange(first.operation, str(case.method).upper(), case.formatted_path, response, curl)
        self.differential.compare_case(self.suite.name, first.operation, first.operation_id, answer, second)

    def progress(self, operation: str) -> None:
        _progress(self.session, self.suite.operation(operation))
        name, report = f"{self.suite.name}: {operation}", self.differential.suite
        compared = next((known for known in report.result.operations if known.operation == name), None)
        if compared is not None and compared.failed and report.session.progress is not None:
            report.session.progress(f"DIFF conformance {operation}: {compared.failed} of {compared.cases} cases differ")


class _Conformance:
    def __init__(self, session: Session, suite: SuiteRun) -> None:
        self.session, self.suite = session, suite
        self.headers = session.headers()
        self.schema = _schema(session)
        self.twin: _Twin | None = None
        self.stopped: dict[str, str] = {}  # operation label → why its cases stopped (its first unusable answer)
        if suite.against is not None and suite.differential is not None:
            self.twin = _Twin(suite.against, suite.differential)

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

    def affordable(self, operation: APIOperation[Any, Any, Any, Any], operation_id: str, case: Any) -> bool:
        """A billable case with valid data is pinned to its cheapest parameters and must fit under the cap, twice in a
        differential run (the cap covers both targets)."""
        if operation_id not in BILLABLE or must_be_rejected(operation, case.body):
            return True
        budget = self.session.budget
        if budget.max_credits is not None and isinstance(case.body, dict):
            case.body = cheapest(operation_id, case.body)
        try:
            cost = budget.guard(operation_id, case.body)
        except BudgetExceeded:
            return False
        copies = 1 if self.twin is None else 2
        return budget.max_credits is None or budget.spent + copies * cost <= budget.max_credits

    def exercise(self, operation: APIOperation[Any, Any, Any, Any], case: Any, outcome: OperationResult) -> None:
        operation_id = outcome.operation_id
        if operation.label in self.stopped:
            raise _Unusable(self.stopped[operation.label])  # also Hypothesis' replay of a failing case: nothing sent
        if self.session.stall.why is not None:  # the target stopped answering (this suite or an earlier one)
            raise _Unusable(self.session.stall.why)
        if not self.sendable(operation, operation_id, case) or not self.affordable(operation, operation_id, case):
            outcome.refused += 1
            return
        outcome.cases += 1
        response = _send(self.suite, outcome, case, self.headers)
        why = unusable(case, response) if self.twin is None else None  # a differential run compares every case
        if response is None:
            if why is not None:
                self.stopped[operation.label] = why
                raise _Unusable(why)
            return
        _judge(self.suite, outcome, case, response, self.headers, lambda: _curl(case, self.session))
        if self.twin is not None:
            curl = _curl(case, self.session)
            answer = exchange(outcome.operation, str(case.method).upper(), case.formatted_path, response, curl)
            self.twin.exercise(case, outcome, answer)
        if why is not None:
            self.stopped[operation.label] = why
            raise _Unusable(why)

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
            modes=[PHASES[name] for name in phases(session.options)],
            settings=settings,
            seed=session.seed,
        )
        test = create_test(operation=operation, test_func=exercise, config=config)
        try:
            test()
        except Unsatisfiable:
            pass  # e.g. no way to make an operation without parameters invalid
        except _Unusable as exc:
            self.suite.skip(f"conformance {operation.label}: further cases not sent after an unusable answer ({exc})")


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
        _progress(session, outcome)
        if conformance.twin is not None:
            conformance.twin.progress(outcome.operation)
    if session.profile != "full":
        suite.skip(f"{session.profile}: sent {LIVE_SAFE_SENDS}")
        if suite.against is not None:
            suite.against.skip(f"{session.profile}: sent {LIVE_SAFE_SENDS}")


def _progress(session: Session, outcome: OperationResult) -> None:
    if session.progress is not None:
        refused = f", {outcome.refused} not sent ({session.profile}/budget)" if outcome.refused else ""
        session.progress(
            f"{'FAIL' if outcome.findings else 'ok  '} conformance {outcome.operation}: "
            f"{outcome.cases - outcome.failed} passed, {outcome.failed} failed{refused}"
        )

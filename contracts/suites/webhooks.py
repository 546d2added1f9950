"""Suite 4, the webhook contract: real deliveries to a local receiver, signed and shaped as the spec's ``webhooks:``.

On a team of its own (:meth:`Session.fresh`) the suite registers an endpoint for every event type pointing at the
kit's receiver (:class:`contracts.receiver.ReceiverThread`), test-fires each subscribed type (free), and when
spending is allowed creates the cheapest image with a ``webhook_url`` and drives it to a terminal state (the
emulator's clock, else bounded polling), so the endpoint's ``image.*`` event and the per-generation callback
(reference §5.1) arrive too. Each delivery must carry the headers its ``webhooks:`` entry requires, verify with the
endpoint secret (``Aurous-Webhook-Signature``, §5.4; on the callback only when sent, which the spec leaves open) and
validate against the entry of its event type (``generationCallback`` for the callback). The endpoint is deleted at
the end, whatever happened.

Not under ``live-safe`` (an endpoint is a create). A live target cannot reach 127.0.0.1: it needs the options
``receiver_url`` (a public URL forwarding to this machine) and ``receiver_port`` (the local port it forwards to).

Findings: ``WebhookSetupFailed`` (an API call the suite needs did not succeed), ``WebhookSignatureInvalid``,
``WebhookHeaderMissing``, ``WebhookHeaderInvalid``, ``WebhookPayloadSchemaViolation``, ``WebhookNotDelivered``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contracts.budget import cheapest
from contracts.listen import Listener, Received
from contracts.receiver import ReceiverThread
from contracts.schema import spec_document
from contracts.session import Session, SuiteRun
from contracts.signature import HEADER, SignatureVerificationError, verify_signature
from contracts.suites._webhook_spec import Problem, WebhookSpec

__all__ = ["CALLBACK", "run"]

CALLBACK = "generationCallback"  # the webhooks: entry of the per-generation webhook_url POST
ENDPOINT_PATH, CALLBACK_PATH = "/endpoint", "/callback"
SETUP_FAILED, NOT_DELIVERED, SIGNATURE_INVALID = "WebhookSetupFailed", "WebhookNotDelivered", "WebhookSignatureInvalid"
LOCAL_WAIT, LIVE_WAIT = 2.0, 60.0  # seconds for every expected delivery to arrive once it is due
LIVE_TERMINAL_WAIT, POLL_SECONDS = 300.0, 3.0
SETTLE_SECONDS = 3600  # an hour on the emulator's clock finishes any image
TERMINAL = {"succeeded": "completed", "failed": "failed", "cancelled": "cancelled"}
PROMPT = "aurous-mock contract kit: webhook delivery check"


@dataclass(frozen=True)
class Expectation:
    """A delivery that must arrive: which ``webhooks:`` entry it is, and how to recognise it."""

    operation: str
    description: str
    matches: Callable[[Received], bool]


def _unrunnable(session: Session) -> str | None:
    if session.profile != "full":
        return f"webhooks: {session.profile} creates no webhook endpoint; run with --profile full to check deliveries"
    if session.options.get("receiver_url") and not session.options.get("receiver_port"):
        return "webhooks: --receiver-url needs --receiver-port (the local port it forwards to)"
    if session.target.is_live and not session.options.get("receiver_url"):
        return (
            "webhooks: a live target cannot reach the kit's receiver on 127.0.0.1; give --receiver-url (a public "
            "https URL forwarding to this machine) and --receiver-port"
        )
    return None


def _object(response: Any, status: int) -> dict[str, Any]:
    """The JSON object of a successful response, else ``{}``. Any 2xx will do: whether it is ``status`` exactly is
    the conformance suite's subject (``UndefinedStatusCode``), and the deliveries can still be checked."""
    if not 200 <= response.status_code < 300 or not 200 <= status < 300:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _payload(received: Received) -> dict[str, Any]:
    return received.payload if isinstance(received.payload, dict) else {}


def _about(generation_id: str, path: str) -> Callable[[Received], bool]:
    def matches(received: Received) -> bool:
        data = _payload(received).get("data")
        return received.path == path and isinstance(data, dict) and data.get("id") == generation_id

    return matches


def _event(event_id: str) -> Callable[[Received], bool]:
    return lambda received: received.path == ENDPOINT_PATH and _payload(received).get("id") == event_id


class _Webhooks:
    """One run of the suite on one team, with one receiver."""

    def __init__(self, session: Session, suite: SuiteRun, receiver: ReceiverThread, spec: WebhookSpec) -> None:
        self.session, self.suite, self.receiver, self.spec = session, suite, receiver, spec
        self.expected: list[Expectation] = []
        self.endpoint_id, self.secret, self.events = "", "", list[str]()

    def setup_failed(self, operation: str, response: Any, what: str) -> None:
        self.suite.finding(
            operation,
            SETUP_FAILED,
            f"{what} did not succeed",
            f"{what}: {response.status_code} {response.text[:300]}",
            status=response.status_code,
            curl=self.session.trace.exchanges[-1].curl if self.session.trace.exchanges else None,
        )

    def create_endpoint(self) -> bool:
        body = {"url": self.receiver.url + ENDPOINT_PATH, "events": ["*"], "description": "aurous-mock contract kit"}
        response = self.session.request("POST", "/v1/webhook_endpoints", step="create webhook endpoint", json_body=body)
        answer = _object(response, 201)
        if not isinstance(answer.get("id"), str) or not isinstance(answer.get("secret"), str):
            self.setup_failed("createWebhookEndpoint", response, "creating a webhook endpoint for every event")
            return False
        self.endpoint_id, self.secret = answer["id"], answer["secret"]
        events = answer.get("events")
        self.events = [event for event in events if isinstance(event, str)] if isinstance(events, list) else []
        return True

    def delete_endpoint(self) -> None:
        if not self.endpoint_id:
            return
        path = f"/v1/webhook_endpoints/{self.endpoint_id}"
        response = self.session.request("DELETE", path, step="delete webhook endpoint")
        if response.status_code != 200:
            self.setup_failed("deleteWebhookEndpoint", response, f"deleting {self.endpoint_id} (delete it by hand)")

    def test_fire(self) -> None:
        """One synthetic delivery per subscribed type (free; reference §2.7)."""
        for event_type in self.events:
            if not self.session.selected(event_type):
                continue
            path = f"/v1/webhook_endpoints/{self.endpoint_id}/test"
            body = {"event_type": event_type}
            response = self.session.request("POST", path, step=f"test-fire {event_type}", json_body=body)
            event_id = _object(response, 200).get("event_id")
            if not isinstance(event_id, str):
                self.setup_failed("testWebhookEndpoint", response, f"test-firing {event_type}")
                continue
            self.expected.append(Expectation(event_type, f"test fire of {event_type} ({event_id})", _event(event_id)))
        if self.session.clock_control:  # the emulator delivers what is due now before answering
            self.session.client.post("/_mock/webhooks/flush", headers=self.session.headers())

    def generation(self) -> None:
        """The cheapest image with a ``webhook_url``, driven to its terminal state."""
        body = cheapest("createImage", {"prompt": PROMPT, "webhook_url": self.receiver.url + CALLBACK_PATH})
        response = self.session.request(
            "POST", "/v1/images", step="create image with webhook_url", operation="createImage", json_body=body
        )
        generation_id = _object(response, 201).get("id")
        if not isinstance(generation_id, str):
            self.setup_failed("createImage", response, "creating the cheapest image with a webhook_url")
            return
        status = self.terminal_status(generation_id)
        if status is None:
            self.suite.skip(f"webhooks: {generation_id} reached no terminal state, so its deliveries were not awaited")
            return
        event_type = f"image.{TERMINAL[status]}"
        self.expected += [
            Expectation(event_type, f"{event_type} of {generation_id}", _about(generation_id, ENDPOINT_PATH)),
            Expectation(CALLBACK, f"webhook_url callback of {generation_id}", _about(generation_id, CALLBACK_PATH)),
        ]

    def terminal_status(self, generation_id: str) -> str | None:
        path = f"/v1/images/{generation_id}"
        if self.session.advance(SETTLE_SECONDS):  # settles, then delivers what fell due, before answering
            deadline = time.monotonic()
        else:
            deadline = time.monotonic() + LIVE_TERMINAL_WAIT
        while True:
            response = self.session.client.get(path, headers=self.session.headers())
            status = _object(response, 200).get("status")
            if status in TERMINAL or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        self.session.request("GET", path, step="read the terminal generation")
        return str(status) if status in TERMINAL else None

    def collect(self) -> None:
        """Wait (bounded) for every expected delivery, then check each one that arrived."""
        wait = LIVE_WAIT if self.session.target.is_live else LOCAL_WAIT
        expected = self.expected

        def complete(received: list[Received]) -> bool:
            return all(any(expectation.matches(one) for one in received) for expectation in expected)

        received = self.receiver.wait_until(complete, wait)
        for expectation in expected:
            if not any(expectation.matches(one) for one in received):
                seen = ", ".join(f"{one.path} {one.event_type}" for one in received) or "nothing"
                self.suite.finding(
                    expectation.operation,
                    NOT_DELIVERED,
                    f"{expectation.operation} not delivered",
                    f"{expectation.description} did not arrive within {wait:g} s of falling due",
                    expected=expectation.description,
                    actual=f"received: {seen}",
                )
        for one in received:
            self.check(one)

    def check(self, received: Received) -> None:
        name = CALLBACK if received.path == CALLBACK_PATH else str(_payload(received).get("event"))
        problems = self.spec.header_problems(name, received.headers) + self.signature_problems(name, received)
        problems += self.spec.body_problems(name, received.payload)
        outcome = self.suite.operation(name)
        outcome.cases += 1
        if problems:
            outcome.failed += 1
        for problem in problems:
            self.suite.finding(
                name,
                problem.failure,
                problem.title,
                problem.message,
                expected=problem.expected,
                actual=problem.actual,
                count=False,
            )

    def signature_problems(self, name: str, received: Received) -> list[Problem]:
        """A delivery to the kit's endpoint must verify with that endpoint's secret. Which secret signs a
        ``webhook_url`` callback the vendor leaves open (reference §5.4), so there every secret the kit has seen in
        the team (its own and any other endpoint's it created or rotated) is accepted, and a callback signed with
        none of them is a note, not drift: another service's endpoint may hold a secret the kit never saw."""
        header = received.headers.get(HEADER.lower())
        if header is None:
            return []  # required or not is the spec's header rule (WebhookHeaderMissing)
        callback = name == CALLBACK
        candidates = (
            [self.secret, *(s for s in self.session.secrets if s != self.secret)] if callback else [self.secret]
        )
        failure: SignatureVerificationError | None = None
        for secret in candidates:
            try:
                verify_signature(received.body, header, secret)
                return []
            except SignatureVerificationError as exc:
                failure = failure or exc
        if callback:
            self.suite.skip(
                f"webhooks: the {CALLBACK} delivery verifies with none of the {len(candidates)} endpoint secret(s) the "
                "kit knows in this team; the vendor leaves open which secret signs it, so it is not judged"
            )
            return []
        preview = f"{self.secret[:6]}…{self.secret[-4:]}"
        return [
            Problem(
                SIGNATURE_INVALID,
                f"{name} delivery fails signature verification",
                f"{HEADER} does not verify with the endpoint secret: {failure}",
                expected=f"t=<now>,v1=hex HMAC-SHA256 of '{{t}}.{{body}}' keyed with the endpoint secret {preview}",
                actual=header,
            )
        ]


def run(session: Session, suite: SuiteRun) -> None:
    reason = _unrunnable(session)
    if reason is not None:
        suite.skip(reason)
        return
    spec = WebhookSpec(spec_document())
    names = [*spec.entries, "createWebhookEndpoint"]
    if not any(session.selected(name) for name in names):
        return
    team = session.fresh()
    port, public = int(session.options.get("receiver_port", "0")), session.options.get("receiver_url")
    with ReceiverThread(Listener(), port=port, public_url=public) as receiver:
        hooks = _Webhooks(team, suite, receiver, spec)
        if not hooks.create_endpoint():
            return
        try:
            hooks.test_fire()
            if not session.spend_allowed:
                suite.skip("webhooks: no image created without --allow-spend --max-credits N (test fires only)")
            elif not session.budget.affords("createImage", cheapest("createImage", {"prompt": PROMPT})):
                suite.skip("webhooks: no image created: the cheapest one does not fit under --max-credits")
            elif any(session.selected(name) for name in (CALLBACK, "image.completed", "image.failed")):
                hooks.generation()
            hooks.collect()
        finally:
            hooks.delete_endpoint()
    if session.progress is not None:
        for outcome in suite.result.operations:
            verdict = "FAIL" if outcome.findings else "ok  "
            session.progress(f"{verdict} webhooks {outcome.operation}: {outcome.cases} deliveries checked")

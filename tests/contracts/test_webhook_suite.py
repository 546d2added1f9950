"""The webhooks suite: real deliveries from the emulator to the kit's receiver, and each drift named."""

from __future__ import annotations

import argparse
import json
import socket
from datetime import UTC, datetime

import pytest

from contracts import Target, check, sign
from contracts.check import LIVE_SAFE
from contracts.report import SuiteResult
from contracts.schema import spec_document
from contracts.session import Session, SuiteRun
from contracts.suites import webhooks as suite_module
from contracts.suites._webhook_spec import WebhookSpec, json_path
from mockserver import Settings, create_app
from mockserver.cli import _check_options
from mockserver.clock import VirtualClock
from mockserver.webhooks import HttpxSender, RecordingSender
from tests.contracts.drift import Recorder, post_to, rewrite_json_response, rewrite_request

EVENT_TYPES = {
    "image.completed",
    "image.failed",
    "image.cancelled",
    "video.completed",
    "video.failed",
    "video.cancelled",
    "usage.balance_low",
    "webhook.endpoint_disabled",
}


def emulator(sender=None):
    settings = Settings(clock="virtual", seed=7)
    return create_app(settings, clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)), sender=sender)


def webhooks(app, **options):
    return check(Target("emulator", app=app), suites=["webhooks"], **options)


def failures(result) -> set[str]:
    return {finding.failure for finding in result.findings}


class DriftingSender(HttpxSender):
    """Real HTTP, with each endpoint delivery bent by ``bend(payload, headers)`` and signed again.

    The secret is learnt from the endpoint-create answer (``learn``), so only the bent property is wrong.
    """

    def __init__(self, bend):
        super().__init__()
        self.bend, self.secret = bend, None

    def learn(self, app):
        def keep(body):
            self.secret = body.get("secret")
            return body

        return rewrite_json_response(app, post_to("/v1/webhook_endpoints"), keep)

    async def send(self, url, body, headers, timeout):
        if url.endswith("/endpoint"):
            payload = json.loads(body)
            self.bend(payload, headers)
            body = json.dumps(payload).encode()
            stamp = int(headers["Aurous-Webhook-Signature"].split(",")[0].removeprefix("t="))
            headers = {**headers, "Aurous-Webhook-Signature": sign(body, self.secret, stamp)}
        return await super().send(url, body, headers, timeout)


def test_webhooks_emulator_has_no_drift():
    result = webhooks(emulator())
    assert result.findings == [], result.summary()
    checked = {op.operation: op.cases for op in result.suite("webhooks").operations}
    assert set(checked) == EVENT_TYPES | {"generationCallback"}
    assert checked["image.completed"] == 2  # the test fire and the real image
    assert result.spent == 1  # the cheapest image


def test_wrong_secret_on_create_is_webhook_signature_invalid():
    def other_secret(body):
        return {**body, "secret": "whsec_" + "0" * 32}

    result = webhooks(rewrite_json_response(emulator(), post_to("/v1/webhook_endpoints"), other_secret))
    assert failures(result) == {"WebhookSignatureInvalid"}
    finding = next(f for f in result.findings if f.operation == "image.completed")
    assert finding.title == "image.completed delivery fails signature verification"
    assert finding.occurrences == 2  # the test fire and the real image: one finding, counted twice
    assert "whsec_…0000" in finding.expected
    assert finding.actual.startswith("t=")
    # Which secret signs the callback the vendor leaves open: one the kit never saw is a note, not drift.
    assert {f.operation for f in result.findings} == EVENT_TYPES
    assert any("generationCallback delivery verifies with none" in note for note in result.suite("webhooks").skipped)


def test_callback_signed_with_another_endpoint_secret_the_kit_saw_is_not_drift():
    """Earlier suites (or the user's services) registered endpoints first; the emulator signs a webhook_url
    callback with the team's first active endpoint secret, which the kit accepts because it saw it."""
    app = emulator(HttpxSender())
    session = Session(Target("emulator", app=app))
    first = session.request("POST", "/v1/webhook_endpoints", json_body={"url": "http://127.0.0.1:9/x", "events": ["*"]})
    assert first.status_code == 201
    try:
        result = SuiteResult("webhooks")
        suite_module.run(session, SuiteRun(result, session, lambda op: ""))
        assert result.findings == [], [(f.failure, f.operation, f.message) for f in result.findings]
        assert "generationCallback" in {op.operation for op in result.operations}
        assert not [note for note in result.skipped if "verifies with none" in note]
    finally:
        session.close()


def test_renamed_payload_field_is_webhook_payload_schema_violation():
    def rename(payload, headers):
        payload["created"] = payload.pop("created_at")

    sender = DriftingSender(rename)
    result = webhooks(sender.learn(emulator(sender)))
    assert failures(result) == {"WebhookPayloadSchemaViolation"}
    finding = next(f for f in result.findings if f.operation == "image.completed")
    assert finding.title == "image.completed payload violates the webhooks schema at $"
    assert '"created_at" is a required property' in finding.message


def test_wrong_status_in_data_names_the_json_path():
    def bend(payload, headers):
        if payload["event"] == "image.completed":
            payload["data"]["status"] = "done"

    sender = DriftingSender(bend)
    result = webhooks(sender.learn(emulator(sender)))
    assert {f.title for f in result.findings} == {
        "image.completed payload violates the webhooks schema at $.data.status"
    }


def test_unsigned_delivery_is_webhook_header_missing():
    class Unsigned(HttpxSender):
        async def send(self, url, body, headers, timeout):
            headers = {k: v for k, v in headers.items() if k != "Aurous-Webhook-Signature" or "/callback" in url}
            return await super().send(url, body, headers, timeout)

    result = webhooks(emulator(Unsigned()))
    assert failures(result) == {"WebhookHeaderMissing"}
    assert {f.operation for f in result.findings} == EVENT_TYPES


def test_nothing_sent_is_webhook_not_delivered():
    result = webhooks(emulator(RecordingSender()))
    assert failures(result) == {"WebhookNotDelivered"}
    assert {f.operation for f in result.findings} == EVENT_TYPES | {"generationCallback"}
    assert "received: nothing" in result.findings[0].actual


class RequestBodies:
    """Records the JSON bodies of POST /v1/webhook_endpoints."""

    def __init__(self, app):
        self.bodies = []

        def keep(headers, body):
            self.bodies.append(json.loads(body))
            return headers, body

        self.app = rewrite_request(app, post_to("/v1/webhook_endpoints"), keep)

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


def test_live_safe_creates_no_endpoint():
    recorder = Recorder(emulator())
    result = check(Target("app", app=recorder), suites=["webhooks"], profile=LIVE_SAFE, max_credits=0)
    assert {method for method, _ in recorder.seen} <= {"GET"}  # the probe's reads only
    assert result.exit_code == 0
    assert "live-safe creates no webhook endpoint" in result.suite("webhooks").skipped[0]


def test_without_spending_only_test_fires_run():
    recorder = Recorder(emulator())
    result = webhooks(recorder, max_credits=0)
    assert result.findings == [], result.summary()
    assert ("POST", "/v1/images") not in recorder.seen
    assert [m for m, p in recorder.seen if p.startswith("/v1/webhook_endpoints/we_")][-1] == "DELETE"
    assert "no image created without --allow-spend" in result.suite("webhooks").skipped[0]


def test_live_target_without_public_receiver_is_skipped_before_any_request():
    live = Session(Target.from_url("https://api.aurous-labs.invalid", api_key="al_live_x"), profile="full")
    result = SuiteResult("webhooks")
    suite_module.run(live, SuiteRun(result, live, lambda op: ""))  # a request would fail: the host does not exist
    assert result.findings == []
    assert "--receiver-url" in result.skipped[0]


def test_receiver_url_and_port_options_are_where_deliveries_go():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"receiver_url": f"http://localhost:{port}", "receiver_port": str(port)}
    recorder = RequestBodies(emulator())
    result = webhooks(recorder, options=options, max_credits=0)
    assert result.findings == [], result.summary()
    assert recorder.bodies[0]["url"] == f"http://localhost:{port}/endpoint"
    skipped = webhooks(emulator(), options={"receiver_url": "https://hooks.example.com"}).suite("webhooks").skipped
    assert "--receiver-url needs --receiver-port" in skipped[0]


def test_cli_check_options_reach_the_suites():
    args = argparse.Namespace(receiver_url="https://hooks.example.com", receiver_port=8765, read_only_key=None)
    assert _check_options(args) == {"receiver_url": "https://hooks.example.com", "receiver_port": "8765"}


def test_spec_knows_every_event_type_and_required_headers():
    spec = WebhookSpec(spec_document())
    assert EVENT_TYPES | {"generationCallback"} <= set(spec.entries)
    assert spec.requires("image.completed", "aurous-webhook-signature")
    assert not spec.requires("generationCallback", "Aurous-Webhook-Signature")
    assert json_path(["data", "output_urls", 0]) == "$.data.output_urls[0]"


@pytest.mark.e2e
def test_cli_webhooks_against_running_emulator(live_server, capsys):
    from mockserver.cli import main

    code = main(["check", "--target", live_server, "--suite", "webhooks"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ok   webhooks generationCallback: 1 deliveries checked" in out

"""The WebhookDispatcher with a RecordingSender: generation events, retries on the clock, auto-disable, callbacks.

Reference §5. The app runs in-process; time moves with ``POST /_mock/clock/advance`` and deliveries are sent
by ``POST /_mock/webhooks/flush`` (background task off), except in the test of the background task itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from contracts import verify_signature
from mockserver import Store, create_app
from mockserver.clock import VirtualClock
from mockserver.core.webhooks import SendResult
from mockserver.webhooks import RecordingSender, SentRequest
from tests.conftest import BASE_URL, START, make_settings, new_api_key
from tests.mockserver.api.test_webhook_endpoints import conforms, conforms_to_webhook, verify

# Scheduling, retries, leases and sending: the same tests against memory, sqlite and redis.
pytestmark = pytest.mark.every_store

PINNED = {"rate_limits_enabled": False, "image_pending_seconds": 2, "image_processing_seconds": 10}
IMAGE_DONE = 12
FAILING, WITNESS, CALLBACK = "https://failing.example/hook", "https://witness.example/hook", "https://cb.example/x"
SCHEDULE = [0, 60, 300, 1800, 7200, 21600, 43200, 86400]


def by_url(request: SentRequest) -> int:
    """A receiver that fails at the FAILING and CALLBACK URLs and accepts everything else."""
    return 500 if request.url in (FAILING, CALLBACK) else 204


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender(by_url)


@pytest.fixture
def build(store: Store) -> Iterator[Callable[..., TestClient]]:
    """``build(sender, **settings)``: an in-process app on its own clock and the test's store (every backend)."""
    with ExitStack() as stack:

        def make(sender: RecordingSender, **overrides: Any) -> TestClient:
            settings = make_settings(**{**PINNED, "webhook_background": False, **overrides})
            app = create_app(settings, clock=VirtualClock(START), store=store, sender=sender)
            return stack.enter_context(TestClient(app, base_url=BASE_URL))

        yield make


@pytest.fixture
def client(build: Callable[..., TestClient], sender: RecordingSender) -> TestClient:
    return build(sender)


@pytest.fixture
def headers() -> dict[str, str]:
    return {"X-Api-Key": new_api_key()}


def call(client: TestClient, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


def endpoint(client: TestClient, headers: dict[str, str], url: str, events: list[str] | None = None) -> Any:
    return call(client, "POST", "/v1/webhook_endpoints", headers, json={"url": url, "events": events or ["*"]})


def advance(client: TestClient, headers: dict[str, str], seconds: float) -> None:
    """``wait=false``: these tests count what each flush sends, so the advance must not deliver by itself."""
    call(client, "POST", "/_mock/clock/advance", headers, json={"seconds": seconds}, params={"wait": "false"})


def flush(client: TestClient, headers: dict[str, str]) -> int:
    return int(call(client, "POST", "/_mock/webhooks/flush", headers)["flushed"])


def log(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    return list(call(client, "GET", "/_mock/webhooks/deliveries", headers, params=params)["data"])


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_completed_image_sends_one_signed_event_whose_data_is_the_generation(client, headers, sender):
    hook = endpoint(client, headers, "https://example.com/hook")
    gen = call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse"})
    assert flush(client, headers) == 0
    advance(client, headers, IMAGE_DONE)
    assert flush(client, headers) == 1
    assert flush(client, headers) == 0
    [request] = sender.requests
    envelope = orjson.loads(request.body)
    conforms_to_webhook("image.completed", envelope)
    assert envelope["event"] == "image.completed"
    assert envelope["synthetic"] is False
    assert envelope["created_at"] == "2026-06-01T12:00:12Z"
    assert envelope["data"] == call(client, "GET", f"/v1/images/{gen['id']}", headers)
    assert envelope["data"]["output_urls"][0].startswith(f"{BASE_URL}/v1/images/{gen['id']}/output/0?token=")
    assert verify(request.headers["Aurous-Webhook-Signature"], request.body, hook["secret"])
    # The team clock says 2026-06-01, but `t=` is real time, so a receiver's tolerance check passes.
    verify_signature(request.body, request.headers["Aurous-Webhook-Signature"], hook["secret"], tolerance=300)
    assert request.headers["Aurous-Event-Id"] == envelope["id"]
    assert request.headers["Aurous-Webhook-Id"] == hook["id"]
    assert (
        call(client, "GET", f"/v1/webhook_endpoints/{hook['id']}", headers)["last_success_at"] == "2026-06-01T12:00:12Z"
    )


def test_cancelled_video_sends_video_cancelled_to_endpoint_and_callback(client, headers, sender):
    endpoint(client, headers, "https://example.com/hook", ["video.cancelled"])
    body = {"video_lora_id": "seedance-1-pro", "webhook_url": "https://example.com/cb"}
    video = call(client, "POST", "/v1/videos", headers, json=body)
    call(client, "POST", f"/v1/images/{video['id']}/cancel", headers)
    assert flush(client, headers) == 2
    by_url = {request.url: request for request in sender.requests}
    envelope = orjson.loads(by_url["https://example.com/hook"].body)
    conforms_to_webhook("video.cancelled", envelope)
    assert envelope["data"]["status"] == "cancelled"
    assert envelope["data"]["id"] == video["id"]
    callback = orjson.loads(by_url["https://example.com/cb"].body)
    assert callback["event"] == "video.cancelled"
    assert callback["data"] == envelope["data"]


def test_failing_receiver_is_retried_on_the_schedule_then_disabled_and_others_told(client, headers, sender):
    failing = endpoint(client, headers, FAILING)
    witness = endpoint(client, headers, WITNESS, ["webhook.endpoint_disabled"])
    for _ in range(3):
        call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse"})
    advance(client, headers, IMAGE_DONE)
    flush(client, headers)
    assert call(client, "GET", f"/v1/webhook_endpoints/{failing['id']}", headers)["consecutive_failures"] == 3
    advance(client, headers, 25 * 3600)
    flush(client, headers)
    rows = log(client, headers)[::-1]  # oldest first
    failed = [row for row in rows if row["endpoint_id"] == failing["id"]]
    assert len(failed) == 20
    first = [row for row in failed if row["delivery_id"] == failed[0]["delivery_id"]]
    finish = instant(first[0]["scheduled_at"])
    assert [(instant(row["scheduled_at"]) - finish).total_seconds() for row in first] == SCHEDULE[:7]
    assert [row["attempt"] for row in first] == list(range(1, 8))
    assert {row["response_status"] for row in failed} == {500}
    assert [row["outcome"] for row in first] == ["retrying"] * 7
    assert failed[-1]["outcome"] == "failed"  # the 20th failure disabled the endpoint and dropped the rest
    assert failed[-1]["next_retry_at"] is None
    state = call(client, "GET", f"/v1/webhook_endpoints/{failing['id']}", headers)
    assert state["is_active"] is False
    assert state["consecutive_failures"] == 20
    assert state["last_failure_at"] == failed[-1]["scheduled_at"]
    assert state["updated_at"] == failed[-1]["scheduled_at"]
    notices = [request for request in sender.requests if request.url == WITNESS]
    assert len(notices) == 1
    envelope = orjson.loads(notices[0].body)
    conforms_to_webhook("webhook.endpoint_disabled", envelope)
    assert envelope["data"]["id"] == failing["id"]
    assert envelope["data"]["is_active"] is False
    assert verify(notices[0].headers["Aurous-Webhook-Signature"], notices[0].body, witness["secret"])
    sent = len(sender.requests)
    call(client, "POST", "/v1/images", headers, json={"prompt": "after"})
    advance(client, headers, IMAGE_DONE)
    flush(client, headers)
    assert len(sender.requests) == sent  # an inactive endpoint receives nothing new


def test_retries_become_due_only_as_the_clock_reaches_them(client, headers, sender):
    endpoint(client, headers, FAILING)
    call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse"})
    advance(client, headers, IMAGE_DONE)
    assert flush(client, headers) == 1
    advance(client, headers, 59)
    assert flush(client, headers) == 0
    advance(client, headers, 1)
    assert flush(client, headers) == 1
    row = log(client, headers)[0]
    assert row["attempt"] == 2
    assert row["outcome"] == "retrying"
    assert instant(row["next_retry_at"]) - instant(row["scheduled_at"]) == timedelta(seconds=240)


def test_generation_webhook_url_gets_three_attempts_two_seconds_apart(client, headers, sender):
    gen = call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse", "webhook_url": CALLBACK})
    advance(client, headers, IMAGE_DONE + 10)
    assert flush(client, headers) == 3
    rows = log(client, headers)[::-1]
    assert [row["url"] for row in rows] == [CALLBACK] * 3
    done = instant("2026-06-01T12:00:12Z")
    assert [(instant(row["scheduled_at"]) - done).total_seconds() for row in rows] == [0, 2, 4]
    assert [row["outcome"] for row in rows] == ["retrying", "retrying", "failed"]
    body = orjson.loads(sender.requests[0].body)
    conforms("/components/schemas/GenerationCallback", body)
    assert body["event"] == "image.completed"
    assert body["data"]["id"] == gen["id"]
    assert "Aurous-Webhook-Signature" not in sender.requests[0].headers  # the team has no endpoint secret


def test_generation_webhook_url_is_signed_with_the_team_endpoint_secret(client, headers, sender):
    hook = endpoint(client, headers, "https://example.com/hook", ["video.failed"])
    call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse", "webhook_url": "https://ok.example/"})
    advance(client, headers, IMAGE_DONE)
    assert flush(client, headers) == 1
    [request] = sender.requests
    assert verify(request.headers["Aurous-Webhook-Signature"], request.body, hook["secret"])


def test_redeliver_sends_the_same_event_again(client, headers, sender):
    endpoint(client, headers, "https://example.com/hook")
    call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse"})
    advance(client, headers, IMAGE_DONE)
    flush(client, headers)
    event_id = log(client, headers)[0]["event_id"]
    again = call(client, "POST", f"/_mock/webhooks/events/{event_id}/redeliver", headers)
    assert again["event_id"] == event_id
    assert len(again["deliveries"]) == 1
    assert flush(client, headers) == 1
    first, second = sender.requests
    assert first.body == second.body
    assert [row["event_id"] for row in log(client, headers, event_id=event_id)] == [event_id, event_id]


def test_balance_low_fires_after_a_charge_once_an_hour(build, headers):
    sender = RecordingSender()
    client = build(sender, balance_low_threshold=998.5)  # a new team has 1000 credits; an image costs 1
    endpoint(client, headers, "https://example.com/hook", ["usage.balance_low"])
    for _ in range(3):
        call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse"})
    advance(client, headers, IMAGE_DONE)
    assert flush(client, headers) == 1  # 999, 998 (fires), 997 (debounced)
    envelope = orjson.loads(sender.requests[0].body)
    conforms_to_webhook("usage.balance_low", envelope)
    assert envelope["data"] == {"credits": 998.0, "available_credits": 997.0, "threshold": 998.5}  # one still held
    advance(client, headers, 3600 - IMAGE_DONE)
    call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse"})
    advance(client, headers, IMAGE_DONE)
    assert flush(client, headers) == 1
    assert orjson.loads(sender.requests[1].body)["data"]["credits"] == 996.0


def test_sender_errors_are_failed_attempts(build, headers):
    async def broken(request: SentRequest) -> int:
        raise RuntimeError("boom")

    client = build(RecordingSender(broken))
    hook = endpoint(client, headers, "https://example.com/hook")
    call(client, "POST", f"/v1/webhook_endpoints/{hook['id']}/test", headers, json={"event_type": "image.failed"})
    assert flush(client, headers) == 1
    row = log(client, headers)[0]
    assert row["error"] == "RuntimeError: boom"
    assert row["response_status"] is None
    assert row["outcome"] == "retrying"


def test_recording_sender_scripts_statuses_then_the_default():
    sender = RecordingSender([500, "timeout"], default=201)
    results = [asyncio.run(sender.send("https://x/", b"{}", {}, 1.0)) for _ in range(3)]
    assert results == [SendResult(500), SendResult(None, "timeout"), SendResult(201)]
    assert [r.url for r in sender.requests] == ["https://x/"] * 3


def test_background_task_delivers_after_a_clock_advance_without_flush(build, headers):
    sender = RecordingSender()
    client = build(sender, webhook_background=True, webhook_poll_seconds=0.01)
    endpoint(client, headers, "https://example.com/hook")
    call(client, "POST", "/v1/images", headers, json={"prompt": "a lighthouse"})
    advance(client, headers, IMAGE_DONE)
    deadline = time.monotonic() + 10
    while not sender.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [orjson.loads(r.body)["event"] for r in sender.requests] == ["image.completed"]
    assert flush(client, headers) == 0
    assert len(sender.requests) == 1


def test_a_backlog_for_one_target_goes_out_in_batches_in_order(build, headers, monkeypatch):
    """Found by fuzzing the control plane: a flush claimed one attempt per target per round, each round scanning
    every pending delivery, so a backlog of N for one target cost N scans (a global advance timed out)."""
    sender = RecordingSender()
    client = build(sender)
    hook = endpoint(client, headers, WITNESS)
    for _ in range(320):
        fire_test_event(client, headers, hook["id"])
    app = client.app
    rounds = 0
    claim = app.state.emulator.webhooks.claim  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal rounds
        rounds += 1
        return claim(*args, **kwargs)

    monkeypatch.setattr(app.state.emulator.webhooks, "claim", counted)  # type: ignore[attr-defined]
    assert flush(client, headers) == 320
    assert rounds <= 320 // 32 + 2
    sent = [orjson.loads(request.body)["id"] for request in sender.requests]
    logged = [row["event_id"] for row in reversed(log(client, headers))]
    assert sent == logged  # one target: strictly in the order they fell due
    assert len(set(sent)) == 320


def test_a_batch_skips_attempts_dropped_by_an_auto_disable_in_the_middle_of_it(build, headers):
    sender = RecordingSender(by_url)
    client = build(sender, webhook_disable_after_failures=3)
    hook = endpoint(client, headers, FAILING)
    advance(client, headers, 86_400)  # no success in the last 24 h: the third failure disables the endpoint
    for _ in range(10):
        fire_test_event(client, headers, hook["id"])
    assert flush(client, headers) == 3  # one batch of 10 claimed; the seven after the disable were dropped
    assert [request.url for request in sender.requests] == [FAILING] * 3
    assert call(client, "GET", f"/v1/webhook_endpoints/{hook['id']}", headers)["is_active"] is False


def fire_test_event(client: TestClient, headers: dict[str, str], endpoint_id: str) -> None:
    call(client, "POST", f"/v1/webhook_endpoints/{endpoint_id}/test", headers, json={"event_type": "image.completed"})

"""Integration tests of our Aurous client against aurous-mock, as a user team would write them.

Run them with ``pytest -n 4``: each test gets its own emulator team (``aurous_mock``), so they never share
balances, clocks or scenarios. Time is virtual: nothing here sleeps, the tests move the team's clock instead.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import av
import pytest
from client import AurousClient, AurousError, GenerationFailed, WaitTimeout
from PIL import Image

from mockserver.testing import AurousMock

if TYPE_CHECKING:
    from conftest import VirtualSleep

Tick = Callable[[], object]


def png(width: int = 512, height: int = 512, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def credits(mock: AurousMock) -> tuple[float, float]:
    balance = mock.balance
    return balance["credits"], balance["held_credits"]


# --- the happy path -------------------------------------------------------------------------------------


def test_image_is_created_pending_then_polled_until_succeeded(api: AurousClient, aurous_mock: AurousMock, tick: Tick):
    created = api.create_image("A lighthouse on a cliff at golden hour")
    assert created["id"].startswith("img_")
    assert created["status"] == "pending"
    assert created["output_urls"] is None
    assert credits(aurous_mock) == (1000.0, 1.0)  # held at create

    done = api.wait(created["id"], poll=tick, max_polls=12)

    assert done["status"] == "succeeded"
    assert len(done["output_urls"]) == 1
    assert done["completed_at"] is not None
    assert done["error_message"] is None
    assert credits(aurous_mock) == (999.0, 0.0)  # charged on success
    assert aurous_mock.journal.count(operation="getGeneration") >= 2  # it really polled


def test_downloaded_pngs_decode_at_the_requested_size(api: AurousClient, tick: Tick):
    done = api.generate_image("A fox in a knitted scarf", width=1280, height=1024, count=2, poll=tick)

    assert len(done["output_urls"]) == 2
    for url in done["output_urls"]:
        image = Image.open(io.BytesIO(api.download(url)))
        assert image.format == "PNG"
        assert image.size == (1280, 1024)


def test_video_720p_5s_downloads_as_a_playable_mp4(api: AurousClient, aurous_mock: AurousMock):
    created = api.create_video("A paper boat drifting down a rainy street", resolution="720p", duration=5)
    assert created["id"].startswith("vid_")

    done = api.wait(created["id"], poll=lambda: aurous_mock.clock.advance(15), max_polls=20)
    assert done["status"] == "succeeded"

    with av.open(io.BytesIO(api.download(done["output_video_url"]))) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (1248, 704)
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(5.0, abs=0.1)


def test_estimate_equals_what_is_charged(api: AurousClient, aurous_mock: AurousMock, tick: Tick):
    params = {"count": 2, "enhance_prompt": True, "size": "hd_square"}
    estimate = api.estimate_image("A city at night", **params)
    assert estimate > 0
    before, _ = credits(aurous_mock)

    api.generate_image("A city at night", poll=tick, **params)

    after, held = credits(aurous_mock)
    assert before - after == pytest.approx(estimate)
    assert held == 0.0


# --- failed generations and retries -----------------------------------------------------------------------


def test_failed_generation_surfaces_its_error_message(api: AurousClient, aurous_mock: AurousMock, tick: Tick):
    with pytest.raises(GenerationFailed) as failed:
        api.generate_image("A lighthouse [mock:fail=Content policy violation]", poll=tick)

    assert failed.value.error_message == "Content policy violation"
    assert failed.value.generation["status"] == "failed"
    assert failed.value.generation["output_urls"] is None
    assert credits(aurous_mock) == (1000.0, 0.0)  # the hold is released, nothing charged


def test_retrying_caller_survives_fail_fail_succeed(api: AurousClient, aurous_mock: AurousMock, tick: Tick):
    with aurous_mock.scenario("fail", "fail", "succeed", when={"operation": "createImage"}):
        done = api.generate_image("A storm over the sea", poll=tick, attempts=3)

    assert done["status"] == "succeeded"
    statuses = [g["status"] for g in api.list_generations()]  # newest first
    assert statuses == ["succeeded", "failed", "failed"]
    assert credits(aurous_mock) == (999.0, 0.0)  # only the success is billed


def test_retrying_caller_gives_up_after_its_attempts(api: AurousClient, aurous_mock: AurousMock, tick: Tick):
    with aurous_mock.scenario("fail=Upstream model error", when={"operation": "createImage"}, repeat=True):
        with pytest.raises(GenerationFailed, match="Upstream model error"):
            api.generate_image("A storm over the sea", poll=tick, attempts=2)

    assert aurous_mock.journal.count(operation="createImage") == 2


@pytest.mark.parametrize(
    ("outcome", "code"), [("rate_limit=3", "too_many_requests"), ("concurrency_limit=3", "concurrency_limit_exceeded")]
)
def test_429_is_retried_after_retry_after(
    api: AurousClient, aurous_mock: AurousMock, sleeper: VirtualSleep, outcome: str, code: str
):
    with aurous_mock.scenario(outcome, when={"operation": "createImage"}):
        created = api.create_image("A paper boat")

    assert created["status"] == "pending"
    assert sleeper.delays == [3.0]  # exactly what Retry-After said
    [throttled] = aurous_mock.journal.entries(operation="createImage", status=429)
    assert throttled["response_body"]["error"]["code"] == code
    assert aurous_mock.journal.count(operation="createImage") == 2
    assert credits(aurous_mock) == (1000.0, 1.0)  # held once


def test_persistent_429_gives_up_with_a_typed_error(api: AurousClient, aurous_mock: AurousMock, sleeper: VirtualSleep):
    with aurous_mock.scenario("rate_limit", when={"operation": "getBalance"}, repeat=True):
        with pytest.raises(AurousError) as error:
            api.balance()

    assert (error.value.status, error.value.type, error.value.code) == (429, "rate_limit", "too_many_requests")
    assert error.value.retry_after == 1.0
    assert sleeper.delays == [1.0, 1.0, 1.0]  # bounded: 4 attempts, 3 waits
    assert aurous_mock.journal.count(operation="getBalance") == 4


def test_provider_errors_on_create_are_retried_without_double_billing(
    api: AurousClient, aurous_mock: AurousMock, sleeper: VirtualSleep, tick: Tick
):
    with aurous_mock.scenario("provider_unavailable", "provider_timeout", when={"operation": "createImage"}):
        done = api.generate_image("A lighthouse", poll=tick)

    assert done["status"] == "succeeded"
    assert sleeper.delays == [0.5, 1.0]  # exponential back-off, no Retry-After on 5xx
    assert [e["status"] for e in aurous_mock.journal.entries(operation="createImage")] == [201, 504, 502]
    assert [g["id"] for g in api.list_generations()] == [done["id"]]
    assert credits(aurous_mock) == (999.0, 0.0)


def test_dropped_connection_on_create_is_retried_with_the_same_idempotency_key(
    api: AurousClient, aurous_mock: AurousMock, sleeper: VirtualSleep
):
    with aurous_mock.scenario("drop", when={"operation": "createImage"}):
        created = api.create_image("A lighthouse")

    assert sleeper.delays == [0.5]
    [entry] = aurous_mock.journal.entries(operation="createImage", status=201)
    assert entry["response_body"]["id"] == created["id"]
    assert [g["id"] for g in api.list_generations()] == [created["id"]]
    assert credits(aurous_mock) == (1000.0, 1.0)


def test_same_idempotency_key_creates_and_bills_once(
    api: AurousClient, aurous_mock: AurousMock, tick: Tick, sleeper: VirtualSleep
):
    first = api.create_image("A lighthouse", idempotency_key="order-4711")
    again = api.create_image("A lighthouse", idempotency_key="order-4711")  # 409 while it runs: backs off, retries

    assert again["id"] == first["id"]
    assert sleeper.delays[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]  # the page's back-off, on the virtual clock
    assert max(sleeper.delays) == 8.0
    replay = aurous_mock.journal.entries(operation="createImage")[0]  # newest first
    assert replay["response_headers"].get("aurous-idempotent-replayed") == "true"
    api.wait(first["id"], poll=tick)
    assert credits(aurous_mock) == (999.0, 0.0)
    assert len(list(api.list_generations())) == 1


def test_a_client_that_treats_409_as_fatal_fails_as_in_production(aurous_mock: AurousMock):
    """Without waiting for the original, a keyed retry meets 409 idempotency_key_in_use, as it would upstream."""
    with AurousClient(aurous_mock.base_url, aurous_mock.api_key, in_use_wait=0) as impatient:
        impatient.create_image("A lighthouse", idempotency_key="order-4712")
        with pytest.raises(AurousError) as error:
            impatient.create_image("A lighthouse", idempotency_key="order-4712")
    assert (error.value.status, error.value.code) == (409, "idempotency_key_in_use")
    assert error.value.retry_after is None


# --- typed errors -----------------------------------------------------------------------------------------


def test_low_balance_is_a_typed_402_and_not_retried(api: AurousClient, aurous_mock: AurousMock, sleeper: VirtualSleep):
    team = aurous_mock.client.patch("/_mock/team", json={"credits": 0.5})
    assert team.status_code == 200
    assert team.json()["available_credits"] == 0.5

    with pytest.raises(AurousError) as error:
        api.create_image("A lighthouse")

    assert (error.value.status, error.value.type, error.value.code) == (402, "invalid_request", "balance_too_low")
    assert error.value.request_id
    assert error.value.request_id.startswith("req_")
    assert "0.5" in error.value.message
    assert not error.value.retryable
    assert sleeper.delays == []
    assert aurous_mock.journal.count(operation="createImage") == 1


def test_blocked_prompt_raises_prompt_blocked(api: AurousClient, aurous_mock: AurousMock):
    with pytest.raises(AurousError) as error:
        api.create_image("Something forbidden [mock:block]")

    assert (error.value.status, error.value.code, error.value.param) == (400, "prompt_blocked", "prompt")
    assert list(api.list_generations()) == []
    assert credits(aurous_mock) == (1000.0, 0.0)


# --- cancel and expiry ------------------------------------------------------------------------------------


def test_stalled_generation_is_cancelled_and_its_hold_released(api: AurousClient, aurous_mock: AurousMock, tick: Tick):
    created = api.create_image("A slow one [mock:stall]")

    with pytest.raises(WaitTimeout) as timeout:
        api.wait(created["id"], poll=tick, max_polls=20)  # 100 s of virtual time
    assert timeout.value.generation["status"] == "processing"
    assert credits(aurous_mock) == (1000.0, 1.0)

    cancelled = api.cancel(created["id"])

    assert cancelled["status"] == "cancelled"
    assert api.get(created["id"])["status"] == "cancelled"
    assert credits(aurous_mock) == (1000.0, 0.0)


def test_expired_output_is_refetched_then_reported_as_output_expired(
    api: AurousClient, aurous_mock: AurousMock, tick: Tick
):
    done = api.generate_image("A lighthouse", poll=tick)
    assert Image.open(io.BytesIO(api.download_output(done["id"]))).size == (1024, 1024)

    aurous_mock.clock.advance(24 * 3600)
    reads = aurous_mock.journal.count(operation="getGeneration")
    with pytest.raises(AurousError) as error:
        api.download_output(done["id"])

    assert (error.value.status, error.value.code) == (410, "output_expired")
    assert aurous_mock.journal.count(operation="getGeneration") == reads + 2  # re-read for a fresh URL once


def test_output_that_expires_early(api: AurousClient, aurous_mock: AurousMock, tick: Tick):
    done = api.generate_image("A lighthouse [mock:expire_early=60]", poll=tick)
    assert api.download_output(done["id"]).startswith(b"\x89PNG")

    aurous_mock.clock.advance(61)

    with pytest.raises(AurousError, match="output_expired"):
        api.download_output(done["id"])


# --- webhooks ---------------------------------------------------------------------------------------------


def test_webhook_delivers_a_verified_image_completed(
    api: AurousClient, aurous_mock: AurousMock, aurous_webhook_receiver, tick: Tick
):
    endpoint = api.register_webhook(aurous_webhook_receiver.url, ["image.completed", "image.failed"])
    assert endpoint["secret"].startswith("whsec_")
    aurous_webhook_receiver.secret = endpoint["secret"]

    created = api.create_image("A lighthouse")
    aurous_mock.clock.advance(120)

    [event] = aurous_webhook_receiver.events(1)  # raises unless the signature verifies
    assert event["event"] == "image.completed"
    assert event["data"]["id"] == created["id"]
    assert event["data"] == api.get(created["id"]) | {"output_urls": event["data"]["output_urls"]}


def test_webhook_reports_a_failed_generation(
    api: AurousClient, aurous_mock: AurousMock, aurous_webhook_receiver, tick: Tick
):
    endpoint = api.register_webhook(aurous_webhook_receiver.url, ["image.failed"])
    aurous_webhook_receiver.secret = endpoint["secret"]

    created = api.create_image("A lighthouse [mock:fail=Content policy violation]")
    api.create_image("A boat")  # succeeds: not subscribed
    aurous_mock.clock.advance(120)

    [event] = aurous_webhook_receiver.events(1)
    assert event["event"] == "image.failed"
    assert event["data"]["id"] == created["id"]
    assert event["data"]["error_message"] == "Content policy violation"
    assert len(aurous_webhook_receiver.listener.received) == 1


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL that refuses connections: the port is held by a socket that never listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"


def test_webhook_to_a_failing_receiver_is_retried_on_schedule(
    api: AurousClient, aurous_mock: AurousMock, refused_url: str
):
    api.register_webhook(refused_url, ["image.completed"])
    api.create_image("A lighthouse")
    aurous_mock.clock.advance(60)  # the image is done: first attempt
    aurous_mock.clock.advance(3600)  # retries at +1 min, +5 min, +30 min

    attempts = list(reversed(aurous_mock.webhooks.deliveries))  # oldest first
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert {a["event_type"] for a in attempts} == {"image.completed"}
    assert all(a["outcome"] == "retrying" and a["response_status"] is None for a in attempts)
    assert attempts[-1]["next_retry_at"] is not None


# --- listing, journal, files, characters --------------------------------------------------------------------


def test_listing_walks_every_generation_across_pages(api: AurousClient, aurous_mock: AurousMock):
    created = []
    for n in range(5):
        created.append(api.create_image(f"Picture {n}")["id"])
        aurous_mock.clock.advance(1)

    listed = [g["id"] for g in api.list_generations(page_size=2)]

    assert listed == created[::-1]  # newest first, no duplicates, nothing missing
    assert aurous_mock.journal.count(operation="listGenerations") == 3


def test_journal_counts_what_the_client_sent(api: AurousClient, aurous_mock: AurousMock):
    for prompt in ("One", "Two", "Three [mock:block]"):
        try:
            api.create_image(prompt)
        except AurousError:
            pass
    api.create_video("A boat", resolution="480p", duration=5)

    assert aurous_mock.journal.count(operation="createImage") == 3
    assert aurous_mock.journal.count(operation="createImage", status="4xx") == 1
    assert aurous_mock.journal.count(operation="createVideo") == 1
    [blocked] = aurous_mock.journal.entries(operation="createImage", status=400)
    assert blocked["request_body"]["prompt"] == "Three [mock:block]"
    assert blocked["request_headers"].get("idempotency-key")  # our client always sends one


def test_uploaded_file_is_used_as_a_reference(api: AurousClient, tick: Tick):
    uploaded = api.upload_file(png(640, 480), filename="ref.png", content_type="image/png")
    assert uploaded["id"].startswith("file_")
    assert (uploaded["width_px"], uploaded["height_px"], uploaded["mime_type"]) == (640, 480, "image/png")

    done = api.generate_image("The same scene at dusk", reference_image_urls=[uploaded["id"]], poll=tick)

    assert done["inference_type"] == "i2i"
    assert done["reference_image_urls"] == [uploaded["id"]]


def test_unknown_file_reference_is_rejected_with_its_param(api: AurousClient):
    with pytest.raises(AurousError) as error:
        api.create_image("A scene", reference_image_urls=["file_01HXMQ7Z3K8Y2NABCDEFGHJKMN"])

    assert (error.value.status, error.value.code) == (400, "resource_not_found")
    assert error.value.param is not None
    assert error.value.param.startswith("reference_image_urls")


def test_character_from_an_upload_drives_an_image(api: AurousClient, aurous_mock: AurousMock, tick: Tick):
    character = api.create_character("Aurora", png(768, 1024, (30, 90, 160)))
    assert character["status"] == "ready"
    assert character["id"].startswith("char_")

    done = api.generate_image("Aurora hiking in the Alps", character_id=character["id"], poll=tick)

    assert done["character_id"] == character["id"]
    assert done["inference_type"] == "i2i"
    assert credits(aurous_mock) == (999.0, 0.0)

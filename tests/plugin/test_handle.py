"""The ``aurous_mock`` handle as the README shows it: scenario errors, team credits and billing mode, clock.sleep.

These use the plugin's own fixture (one emulator per session, in a thread; a fresh team per test).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mockserver.testing import AurousMock, ControlError, ScenarioError

TERMINAL = {"succeeded", "failed", "cancelled"}


def test_invalid_scenario_raises_our_error_with_code_message_and_param(aurous_mock: AurousMock) -> None:
    with pytest.raises(ScenarioError) as caught, aurous_mock.scenario("succeed", "fial"):
        pass  # pragma: no cover - the rule is refused before the block runs
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "invalid_format", "then[1]")
    assert "Unknown scenario outcome 'fial'" in error.message
    assert error.request_id is not None
    assert error.request_id.startswith("req_")
    assert str(error).startswith("400 invalid_format (param then[1]): Unknown scenario outcome 'fial'")
    assert isinstance(error, httpx.HTTPStatusError)  # code that caught httpx's error still does


def test_scenario_refuses_an_outcome_the_operation_cannot_reach(aurous_mock: AurousMock) -> None:
    with pytest.raises(ScenarioError) as caught, aurous_mock.scenario("fail", when={"operation": "getBalance"}):
        pass  # pragma: no cover
    assert caught.value.code is not None
    assert caught.value.status == 400


def test_a_rule_without_repeat_is_used_up_by_its_first_match(aurous_mock: AurousMock) -> None:
    with aurous_mock.scenario("block", when={"operation": "createImage"}):
        first = aurous_mock.client.post("/v1/images", json={"prompt": "a lighthouse"})
        second = aurous_mock.client.post("/v1/images", json={"prompt": "a lighthouse"})
    assert (first.status_code, second.status_code) == (400, 201)


def test_other_control_errors_carry_the_envelope(aurous_mock: AurousMock) -> None:
    with pytest.raises(ControlError) as caught:
        aurous_mock.control("POST", "/_mock/clock/advance", {"seconds": "soon"})
    assert caught.value.status == 400
    assert caught.value.param == "seconds"


def test_set_credits_gates_creates(aurous_mock: AurousMock) -> None:
    team = aurous_mock.set_credits(0.5)
    assert team["credits"] == 0.5
    assert aurous_mock.balance["available_credits"] == 0.5
    refused = aurous_mock.client.post("/v1/images", json={"prompt": "a lighthouse"})
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "balance_too_low"


def test_set_billing_mode_exempt_is_never_blocked_or_charged(aurous_mock: AurousMock) -> None:
    aurous_mock.set_credits(0)
    assert aurous_mock.set_billing_mode("exempt")["billing_mode"] == "exempt"
    assert aurous_mock.team["billing_mode"] == "exempt"
    assert aurous_mock.client.post("/v1/images", json={"prompt": "a lighthouse"}).status_code == 201
    aurous_mock.clock.advance(600)
    assert aurous_mock.balance["credits"] == 0


def wait_for_generation(client: httpx.Client, generation_id: str, *, sleep: Any, interval: float = 2.0) -> Any:
    """An application's polling loop, as the README shows it: it sleeps between polls with what it is given."""
    for _ in range(1000):
        generation = client.get(f"/v1/images/{generation_id}").json()
        if generation["status"] in TERMINAL:
            return generation
        sleep(interval)
    raise TimeoutError(generation_id)


def test_polling_application_sleeps_on_the_virtual_clock(aurous_mock: AurousMock) -> None:
    started = aurous_mock.clock.now()
    job = aurous_mock.client.post("/v1/images", json={"prompt": "a lighthouse"}).json()
    done = wait_for_generation(aurous_mock.client, job["id"], sleep=aurous_mock.clock.sleep)
    assert done["status"] == "succeeded"
    waited = (aurous_mock.clock.now() - started).total_seconds()
    assert 2 <= waited <= 60  # the generation's simulated time, slept in 2 s steps without any real waiting
    assert aurous_mock.journal.count(operation="getGeneration") == waited // 2 + 1


@pytest.mark.e2e
def test_a_fresh_handle_authenticates_under_strict_keys_while_an_unknown_key_does_not() -> None:
    from mockserver.settings import Settings
    from mockserver.testing import EmulatorThread, new_key

    with EmulatorThread(Settings(clock="virtual", strict_keys=True)) as server:
        mock = AurousMock.fresh(server.base_url)
        try:
            assert mock.client.get("/v1/balance").status_code == 200
            stranger = httpx.get(f"{server.base_url}/v1/balance", headers={"X-Api-Key": new_key()})
            assert stranger.status_code == 401
            assert stranger.json()["error"]["code"] == "invalid_api_key"
        finally:
            mock.close()

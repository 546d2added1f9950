"""The pytest plugin as a user meets it: a test file using ``aurous_mock``, run by pytest itself (pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import httpx

def test_each_test_has_its_own_team(aurous_mock):
    assert aurous_mock.balance["credits"] == 1000.0
    created = aurous_mock.client.post("/v1/images", json={"prompt": "a lighthouse"})
    assert created.status_code == 201
    assert aurous_mock.balance["held_credits"] == 1.0

def test_a_second_test_starts_clean(aurous_mock):
    assert aurous_mock.balance["held_credits"] == 0.0

def test_clock_moves_generations(aurous_mock):
    job = aurous_mock.client.post("/v1/images", json={"prompt": "a boat"}).json()
    aurous_mock.clock.advance(600)
    assert aurous_mock.client.get(f"/v1/images/{job['id']}").json()["status"] == "succeeded"

def test_webhook_receiver_gets_verified_event(aurous_mock, aurous_webhook_receiver):
    endpoint = aurous_mock.client.post(
        "/v1/webhook_endpoints", json={"url": aurous_webhook_receiver.url, "events": ["image.completed"]}
    ).json()
    aurous_webhook_receiver.secret = endpoint["secret"]
    job = aurous_mock.client.post("/v1/images", json={"prompt": "a tree"}).json()
    aurous_mock.clock.advance(600)
    aurous_mock.webhooks.flush()
    [event] = aurous_webhook_receiver.events(1)
    assert event["event"] == "image.completed"
    assert event["data"]["id"] == job["id"]

def test_reset_forgets_the_team(aurous_mock):
    aurous_mock.client.post("/v1/images", json={"prompt": "x"})
    aurous_mock.reset()
    assert aurous_mock.client.get("/v1/images").json()["data"] == []
"""


@pytest.mark.e2e
def test_plugin_fixtures_work_in_a_user_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=5)


def test_a_failed_test_prints_the_dashboard_link_of_its_team(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
def test_red(aurous_mock):
    assert aurous_mock.dashboard_url.endswith("#key=" + aurous_mock.api_key)
    assert aurous_mock.balance["available_credits"] == -1

def test_green(aurous_mock):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rN")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*aurous-mock*", "this test's team in the dashboard: http://127.0.0.1:*/_mock/ui#key=al_live_*"]
    )
    assert result.stdout.str().count("/_mock/ui#key=") == 1  # the green test prints nothing


@pytest.mark.e2e
def test_plugin_runs_against_an_emulator_given_by_url(pytester: pytest.Pytester) -> None:
    from mockserver.testing import EmulatorThread

    pytester.makepyfile(test_user=USER_TESTS)
    with EmulatorThread() as server:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", f"--aurous-url={server.base_url}")
    result.assert_outcomes(passed=5)


@pytest.mark.e2e
def test_plugin_parallel_workers_share_one_emulator_without_interference(pytester: pytest.Pytester) -> None:
    from mockserver.testing import EmulatorThread

    pytester.makepyfile(test_user=USER_TESTS)
    with EmulatorThread() as server:
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-q", "-n", "2", f"--aurous-url={server.base_url}"
        )
    result.assert_outcomes(passed=5)

"""The kit's pytest entry as a team meets it: a test file using ``aurous_target``, run by pytest itself (pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import httpx
import pytest

@pytest.mark.real_api
def test_balance_is_readable(aurous_target):
    assert aurous_target.profile in ("live-safe", "full")
    answer = httpx.get(aurous_target.base_url + "/v1/balance", headers={"X-Api-Key": aurous_target.api_key})
    assert answer.status_code == 200

@pytest.mark.real_api
def test_lifecycle(aurous_lifecycle):
    aurous_lifecycle(max_examples=2, steps=5, seed=0)
"""


def test_real_api_tests_are_skipped_without_a_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rs", "--strict-markers")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*no --aurous-target given*"])


@pytest.mark.e2e
def test_real_api_tests_run_against_a_given_target(pytester: pytest.Pytester) -> None:
    from mockserver.testing import EmulatorThread

    pytester.makepyfile(test_user=USER_TESTS)
    with EmulatorThread() as server:
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "-q",
            "--strict-markers",
            f"--aurous-target={server.base_url}",
            "--aurous-api-key=al_live_" + "e" * 32,
        )
    result.assert_outcomes(passed=2)


def test_suite_tests_are_skipped_without_a_target(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--pyargs", "contracts.suite_tests")
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) > 40, outcomes  # one per operation of openapi.yaml, plus the other suites
    assert "passed" not in outcomes
    assert "failed" not in outcomes


@pytest.mark.e2e
def test_suite_tests_run_against_a_target_with_junit(pytester: pytest.Pytester) -> None:
    from xml.etree import ElementTree

    from mockserver.testing import EmulatorThread

    with EmulatorThread() as server:
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "-q",
            "--pyargs",
            "contracts.suite_tests",
            f"--aurous-target={server.base_url}",
            "--aurous-max-examples=2",
            "-k",
            "getBalance or listLoras or lifecycle",
            "--junitxml=contracts.xml",
        )
    result.assert_outcomes(passed=3)
    cases = ElementTree.parse(pytester.path / "contracts.xml").getroot().iter("testcase")
    assert {case.get("name") for case in cases} == {
        "test_conformance[getBalance]",
        "test_conformance[listLoras]",
        "test_suite[lifecycle]",
    }


@pytest.mark.e2e
def test_aurous_check_fixture_reports_drift_of_a_target(pytester: pytest.Pytester) -> None:
    """A team's own test with ``aurous_check`` fails, with the kit's summary, when the target drifts."""
    from mockserver import Settings, create_app
    from mockserver.testing import ServerThread

    emulator = create_app(Settings(rate_limits_enabled=False))

    async def drifted(scope, receive, send):  # the emulator without Aurous-Request-Id
        async def strip(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [h for h in message["headers"] if h[0] != b"aurous-request-id"]}
            await send(message)

        await emulator(scope, receive, strip)

    pytester.makepyfile(
        test_team="""
import pytest

@pytest.mark.real_api
def test_balance_conforms(aurous_check):
    result = aurous_check(suites=["conformance"], operations=["getBalance"], max_examples=1)
    assert result.ok, result.summary()
"""
    )
    with ServerThread(drifted) as server:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", f"--aurous-target={server.base_url}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MissingRequestId*"])


def test_suite_settings_reach_the_target_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_team="""
def test_options(aurous_target):
    assert dict(aurous_target.options) == {"read_only_key": "al_live_ro", "receiver_port": "9000"}
    assert aurous_target.allow_spend and aurous_target.max_credits == 5.0
"""
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-q",
        "--aurous-target=https://api.example.test",
        "--aurous-read-only-key=al_live_ro",
        "--aurous-receiver-port=9000",
        "--aurous-allow-spend",
        "--aurous-max-credits=5",
    )
    result.assert_outcomes(passed=1)

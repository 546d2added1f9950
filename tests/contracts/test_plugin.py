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

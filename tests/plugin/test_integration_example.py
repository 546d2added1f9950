"""Acceptance of the pytest plugin (issue 5, "Done when"): the example integration suite in ``examples/integration``
runs green under ``pytest -n 4`` against one seeded emulator, twice in a row, creating the same generation ids."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mockserver.pytest_plugin import SEEDED_START
from mockserver.settings import Settings
from mockserver.testing import EmulatorThread

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "integration"
SEED = 123


def run_example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, base_url: str, ids_file: Path) -> set[str]:
    """One run of the example suite on four workers; the ``<node id> <generation id>`` lines it recorded."""
    monkeypatch.setenv("AUROUS_EXAMPLE_IDS_FILE", str(ids_file))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-q", "-n", "4", "-W", "error", f"--aurous-url={base_url}", f"--aurous-seed={SEED}",
        timeout=240,
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 20, result.stdout.str()
    result.assert_outcomes(passed=outcomes["passed"])
    return set(ids_file.read_text(encoding="utf-8").splitlines())


@pytest.mark.e2e
@pytest.mark.slow
def test_example_suite_runs_green_in_parallel_twice_with_identical_ids(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for source in EXAMPLE.glob("*.py"):
        shutil.copy(source, pytester.path / source.name)
    settings = Settings(clock="virtual", seed=SEED, clock_start=SEEDED_START, host="127.0.0.1", port=0)

    with EmulatorThread(settings) as server:
        first = run_example(pytester, monkeypatch, server.base_url, pytester.path / "ids-1.txt")
        second = run_example(pytester, monkeypatch, server.base_url, pytester.path / "ids-2.txt")

    ids = {line.split()[1] for line in first}
    assert len(ids) >= 30
    assert all(i.startswith(("img_", "vid_")) for i in ids)
    assert len(ids) == len(first)  # every generation belongs to exactly one test: teams are never shared
    assert second == first

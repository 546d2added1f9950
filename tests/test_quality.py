"""The code stays lint-clean and type-checks strictly: ruff and mypy run as part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_reports_no_findings():
    result = _run("ruff", "check", "mockserver", "contracts", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_passes_on_packages():
    result = _run("mypy", "mockserver", "contracts")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_passes_on_the_benchmark_scripts():
    result = _run("mypy", "bench")  # scripts importing each other by name: a run of their own
    assert result.returncode == 0, result.stdout + result.stderr

"""The repository holds sources, not run outputs: reports and saved check output are ignored, none is committed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORT_OUTPUTS = ["out/report.md", "out2/report.json", "reports/junit.xml", "report.md", "proxy-check.txt"]

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)


def test_no_report_output_is_committed() -> None:
    tracked = _git("ls-files").stdout.splitlines()
    outputs = [path for path in tracked if Path(path).name in {"report.md", "report.json", "junit.xml"}]
    assert outputs == []
    assert not [path for path in tracked if path.startswith("out2/") or path == "proxy-check.txt"]


@pytest.mark.parametrize("path", REPORT_OUTPUTS)
def test_report_outputs_are_ignored(path: str) -> None:
    assert _git("check-ignore", "--no-index", "-q", path).returncode == 0, path

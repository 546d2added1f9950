"""As a new user would: ``serve``, a ``drift-proxy`` in front of it, ``check`` each, replay a finding, diff the two."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli_process

pytestmark = pytest.mark.e2e

SERVE_BANNER = re.compile(r"^aurous-mock \S+ serving on (http://127\.0\.0\.1:\d+)$")
PROXY_BANNER = re.compile(r"^aurous-mock drift-proxy on (http://127\.0\.0\.1:\d+) -> (\S+)$")
# Fast: one case per operation and mode, two operations (a billable create and a read).
# The drifts are in 2xx answers: the examples and fuzzing phases show them (the coverage phase adds ~1000 cases).
PHASES = ("--phases", "examples,fuzzing")
ONLY = ("--suite", "conformance", "--operation", "createImage", "--operation", "getBalance")
QUICK = ("--max-examples", "1", *ONLY, *PHASES)


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``aurous-mock ARGS`` to completion, as a user's shell would run it (``$AUROUS_API_KEY`` unset: loopback)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AUROUS_MOCK_", "AUROUS_API"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    command = [sys.executable, "-m", "mockserver", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(emulator, drift proxy in front of it with wrong-status and drop-header), both real processes on loopback."""
    serve_dir, proxy_dir = tmp_path_factory.mktemp("serve"), tmp_path_factory.mktemp("proxy")
    with cli_process(serve_dir, "serve", "--port", "0", "--clock", "virtual", "--log-level", "warning") as serve:
        emulator = serve.first_line(SERVE_BANNER).group(1)
        drifts = ("--drift", "wrong-status", "--drift", "drop-header")
        with cli_process(proxy_dir, "drift-proxy", "--upstream", emulator, "--port", "0", *drifts) as proxy:
            match = proxy.first_line(PROXY_BANNER)
            assert match.group(2) == emulator
            assert proxy.lines.get(timeout=5).startswith("  drift drop-header: ")
            yield emulator, match.group(1)


def test_cli_check_running_emulator_prints_a_clean_report(urls, tmp_path):
    emulator, _ = urls
    done = run_cli(tmp_path, "check", "--target", emulator, *QUICK, "--report", "out")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   conformance POST /v1/images" in done.stdout
    assert f"{emulator} [full]: 1 suites, 2 operations" in done.stdout
    assert "no drift" in done.stdout.splitlines()[-1]
    assert (tmp_path / "out" / "report.md").read_text().startswith("# Aurous contract check: ✅ no drift")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["exit_code"] == 0


def test_cli_check_drift_proxy_prints_findings_exits_1_and_the_replay_reproduces(urls, tmp_path):
    _, proxy = urls
    done = run_cli(tmp_path, "check", "--target", proxy, *QUICK, "--report", "out")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "FAIL conformance POST /v1/images" in out
    assert "conformance · UndefinedStatusCode · POST /v1/images: Undocumented status code" in out
    assert "got HTTP 200" in out
    assert "conformance · MissingRequestId · GET /v1/balance: Missing Aurous-Request-Id" in out
    assert "expected an Aurous-Request-Id header, got none" in out
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.startswith("# Aurous contract check: ❌")
    assert '"X-Api-Key: $AUROUS_API_KEY"' in markdown  # the request as curl, key redacted
    assert 'type="UndefinedStatusCode"' in (tmp_path / "out" / "junit.xml").read_text()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (finding,) = [
        item for item in report["suites"][0]["operations"][0]["findings"] if item["failure"] == "UndefinedStatusCode"
    ]
    # The replay line, run as printed, reproduces the same finding.
    replay = shlex.split(finding["replay"])
    assert replay[:2] == ["aurous-mock", "check"]
    assert " ".join(PHASES) in finding["replay"]  # the same cases: the same phases
    again = run_cli(tmp_path, *replay[1:])
    assert again.returncode == 1, again.stdout + again.stderr
    assert "conformance · UndefinedStatusCode · POST /v1/images" in again.stdout
    assert "GET /v1/balance" not in again.stdout  # only the replayed operation ran


def test_cli_check_against_reports_differential_findings(urls, tmp_path):
    emulator, proxy = urls
    done = run_cli(tmp_path, "check", "--target", emulator, "--against", proxy, *QUICK, "--report", "out")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert f"{emulator} vs {proxy} [full]" in out
    assert "differential · DifferentStatus · conformance: POST /v1/images: HTTP 201 vs 200" in out
    assert f"      A {emulator}: 201" in out
    assert f"      B {proxy}: 200" in out
    assert "differential · DifferentHeaders · conformance: GET /v1/balance" in out
    assert f"conformance [{proxy}] · MissingRequestId" in out  # B's own findings, labelled with B
    assert not [line for line in out.splitlines() if line.startswith("  conformance ·")]  # A itself is clean
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert f"| | A `{emulator}` | B `{proxy}` |" in markdown

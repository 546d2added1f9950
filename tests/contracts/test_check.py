"""The runner against the in-process emulator: clean when conformant, named drift when broken, safe on live."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from contracts import Target, check
from contracts.check import LIVE_SAFE
from mockserver import Settings, create_app
from mockserver.cli import main
from mockserver.clock import VirtualClock
from mockserver.webhooks import RecordingSender

BILLABLE_PATHS = {"/v1/images", "/v1/videos", "/v1/characters", "/v1/generations", "/v1/video-generations"}


def emulator():
    return create_app(
        Settings(clock="virtual", rate_limits_enabled=False, seed=7),
        clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)),
        sender=RecordingSender(),  # fuzzed webhook URLs must never be called for real
    )


def strip_headers(app, *names: bytes):
    """A drifted target: the emulator minus some response headers."""

    async def drifted(scope, receive, send):
        async def without(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(k, v) for k, v in message["headers"] if k.lower() not in names]}
            await send(message)

        await app(scope, receive, without)

    return drifted


class Recorder:
    """Records (method, path) of every request that reaches the app."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def test_check_emulator_in_process_has_no_drift(tmp_path):
    result = check(Target("emulator", app=emulator()), max_examples=2, report_dir=tmp_path)
    assert result.findings == []
    assert result.exit_code == 0
    assert result.cases > 40
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] is True
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")


def test_check_dropped_headers_are_drift_named_for_the_property(tmp_path):
    lines = []
    target = Target("drifted", app=strip_headers(emulator(), b"aurous-request-id", b"aurous-version"))
    result = check(target, max_examples=1, report_dir=tmp_path, progress=lines.append)
    assert result.exit_code == 1
    assert {"MissingRequestId", "MissingVersionEcho"} <= {finding.failure for finding in result.findings}
    assert any(line.startswith("FAIL") for line in lines)
    assert 'type="MissingRequestId"' in (tmp_path / "junit.xml").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 1


def test_check_live_safe_never_sends_billable_create_in_positive_mode():
    recorder = Recorder(emulator())
    result = check(Target("app", app=recorder), profile=LIVE_SAFE, max_credits=0, max_examples=5)
    assert result.exit_code == 0, result.summary()
    assert result.spent == 0
    posts = {path for method, path in recorder.seen if method == "POST" and path in BILLABLE_PATHS}
    assert posts, "billable creates are still exercised with invalid data"
    methods = {method for method, path in recorder.seen}
    assert methods <= {"GET", "POST"}
    # Every POST that reached the emulator was rejected, so nothing was created or billed.
    assert not [op for op in result.operations if op.operation_id == "createFile"]


def test_check_full_profile_budget_refuses_creates_above_cap():
    result = check(Target("app", app=emulator()), profile="full", max_credits=0, max_examples=1)
    create_image = next(op for op in result.operations if op.operation_id == "createImage")
    assert create_image.refused > 0
    assert result.spent == 0
    assert result.exit_code == 0


@pytest.mark.e2e
def test_cli_check_against_running_emulator_exits_zero(live_server, tmp_path, capsys):
    code = main(["check", "--target", live_server, "--max-examples", "1", "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no drift" in out
    assert (tmp_path / "report.json").is_file()

"""The runner against the in-process emulator: clean when conformant, named drift when broken, safe on live."""

from __future__ import annotations

import json

import pytest

from contracts import Target, check
from contracts.check import LIVE_SAFE, SpendNotAllowed
from contracts.suites import SUITES
from mockserver.cli import main
from tests.contracts.drift import Recorder, strip_response_headers
from tests.contracts.emulators import emulator

# This emulator records webhooks instead of sending them (fuzzed URLs must never be called) and does not throttle
# (fuzzing would drain the buckets): the webhooks and conventions suites need both, and have their own tests.
SUITES_HERE = [name for name in SUITES if name not in {"webhooks", "conventions"}]
BILLABLE_PATHS = {"/v1/images", "/v1/videos", "/v1/characters", "/v1/generations", "/v1/video-generations"}


def test_check_emulator_in_process_has_no_drift(tmp_path):
    result = check(Target("emulator", app=emulator()), suites=SUITES_HERE, max_examples=1, report_dir=tmp_path)
    assert result.findings == []
    assert result.exit_code == 0
    assert result.cases > 40
    assert not [note for suite in result.suites for note in suite.skipped if "unusable answer" in note]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] is True
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")


def test_check_dropped_headers_are_drift_named_for_the_property(tmp_path):
    lines = []
    target = Target("drifted", app=strip_response_headers(emulator(), b"aurous-request-id", b"aurous-version"))
    # The headers are judged on every answer: a read, a billable create and a list show them (not all 50 operations).
    operations = ["getBalance", "createImage", "listGenerations"]
    result = check(
        target,
        suites=["conformance"],
        operations=operations,
        max_examples=1,
        report_dir=tmp_path,
        progress=lines.append,
    )
    assert result.exit_code == 1
    assert {"MissingRequestId", "MissingVersionEcho"} <= {finding.failure for finding in result.findings}
    assert any(line.startswith("FAIL") for line in lines)
    assert 'type="MissingRequestId"' in (tmp_path / "junit.xml").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 1


def test_check_live_safe_never_sends_billable_create_in_positive_mode():
    recorder = Recorder(emulator())
    result = check(Target("app", app=recorder), suites=SUITES_HERE, profile=LIVE_SAFE, max_credits=0, max_examples=2)
    assert result.exit_code == 0, result.summary()
    assert result.spent == 0
    posts = {path for method, path in recorder.seen if method == "POST" and path in BILLABLE_PATHS}
    assert posts, "billable creates are still exercised with invalid data"
    methods = {method for method, path in recorder.seen}
    assert methods <= {"GET", "POST"}
    # Every POST that reached the emulator was rejected, so nothing was created or billed.
    assert not [op for op in result.operations if op.operation_id == "createFile"]


def test_check_full_profile_budget_refuses_creates_above_cap():
    # The billable creates of each suite (the lifecycle suite's are its own operation); the others spend nothing.
    billable = ["createImage", "createVideo", "createEmbedding", "image_create_poll_output", "lifecycle"]
    result = check(
        Target("app", app=emulator()),
        suites=SUITES_HERE,
        operations=billable,
        profile="full",
        max_credits=0,
        max_examples=1,
    )
    create_image = next(op for op in result.operations if op.operation_id == "createImage")
    assert create_image.refused > 0
    assert result.spent == 0
    assert result.exit_code == 0


@pytest.mark.e2e
def test_cli_check_against_running_emulator_exits_zero(live_server, tmp_path, capsys):
    # A few operations of each suite over HTTP: the full profile on a running emulator is the soak's (tests/e2e).
    only = ["getBalance", "createImage", "image_create_poll_output", "lifecycle", "plain", "image.completed"]
    argv = ["check", "--target", live_server, "--max-examples", "1", "--report", str(tmp_path)]
    code = main([*argv, *(part for name in only for part in ("--operation", name))])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no drift" in out
    assert (tmp_path / "report.json").is_file()


class BodyRecorder(Recorder):
    """Records the JSON bodies of POSTs to billable paths, and the estimate calls."""

    def __init__(self, app):
        super().__init__(app)
        self.bodies = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in {"/v1/images", "/v1/videos"}:
            await super().__call__(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            self.bodies.append((scope["path"], json.loads(raw)))
        except ValueError:
            pass
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await super().__call__(scope, replay, send)


def test_capped_spending_pins_cheapest_parameters_and_stays_under_the_cap():
    recorder = BodyRecorder(emulator())
    result = check(
        Target("app", app=recorder), suites=["conformance"], operations=["createVideo"], max_credits=3, max_examples=10
    )
    assert result.spent <= 3
    assert result.suite("conformance").spent == result.spent
    sent = [body for path, body in recorder.bodies if isinstance(body, dict) and body.get("video_lora_id")]
    accepted = [body for body in sent if body.get("duration") == 2 and body.get("resolution") == "480p"]
    assert accepted, sent  # valid bodies went out pinned to the shortest 480p video
    create_video = next(op for op in result.operations if op.operation_id == "createVideo")
    assert create_video.refused > 0  # and the cap kept the rest from being sent


def test_live_target_spends_nothing_without_allow_spend_and_a_cap():
    live = Target.from_url("https://api.aurous-labs.com", api_key="al_live_x")
    with pytest.raises(SpendNotAllowed, match="needs --max-credits"):
        check(live, allow_spend=True)
    with pytest.raises(SpendNotAllowed, match="needs --allow-spend"):
        check(live, max_credits=10)


def test_cli_check_refuses_spending_on_a_live_target_without_a_cap(capsys):
    code = main(["check", "--target", "https://api.aurous-labs.com", "--api-key", "al_live_x", "--allow-spend"])
    assert code == 2
    assert "needs --max-credits" in capsys.readouterr().err


def test_findings_carry_replay_commands_and_the_markdown_report(tmp_path):
    target = Target("drifted", app=strip_response_headers(emulator(), b"aurous-request-id"))
    result = check(target, suites=["conformance"], operations=["getBalance"], max_examples=1, report_dir=tmp_path)
    finding = next(f for f in result.findings if f.failure == "MissingRequestId")
    assert finding.suite == "conformance"
    assert "--suite conformance --operation getBalance" in finding.replay
    assert '"X-Api-Key: $AUROUS_API_KEY"' in finding.curl or "$AUROUS_API_KEY" in finding.curl
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.startswith("# Aurous contract check: ❌")
    assert "| conformance |" in markdown
    assert "MissingRequestId" in markdown
    assert "Replay this case:" in markdown


def newer_version(app):
    """A drifted target: every 2xx claims a version newer than any the client could have pinned."""

    async def drifted(scope, receive, send):
        async def rewrite(message):
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"aurous-version"]
                message = {**message, "headers": [*headers, (b"aurous-version", b"2099-01-01")]}
            await send(message)

        await app(scope, receive, rewrite)

    return drifted


def test_version_echo_allows_the_first_version_for_prior_dates_but_never_a_newer_one():
    clean = check(Target("app", app=emulator()), suites=["conformance"], operations=["getBalance"], max_examples=5)
    assert clean.findings == [], clean.summary()
    drifted = check(Target("drifted", app=newer_version(emulator())), suites=["conformance"], operations=["getBalance"])
    finding = next(f for f in drifted.findings if f.failure == "MissingVersionEcho")
    assert finding.actual == "Aurous-Version '2099-01-01'"

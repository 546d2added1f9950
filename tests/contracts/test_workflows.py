"""The workflows suite against the in-process emulator: clean when conformant, the broken property named when not,
nothing created under live-safe, and the credit cap never crossed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from contracts import Target, check
from contracts.check import LIVE_SAFE
from contracts.report import SuiteResult
from contracts.session import Session, SuiteRun
from contracts.suites import workflows
from contracts.suites.workflows import WORKFLOWS
from mockserver import Settings, create_app
from mockserver.clock import VirtualClock
from mockserver.webhooks import RecordingSender
from tests.contracts.drift import Recorder, strip_response_headers

CREATES = {("POST", path) for path in ("/v1/images", "/v1/videos", "/v1/characters")}
NAMES = [workflow.name for workflow in WORKFLOWS]


def emulator(**overrides):
    settings = Settings(clock="virtual", rate_limits_enabled=False, seed=11, **overrides)
    return create_app(settings, clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)), sender=RecordingSender())


def rewrite_json(app, path_suffix: str, change):
    """A drifted target: the emulator with ``change(body)`` applied to the JSON answers of paths ending so."""

    async def drifted(scope, receive, send):
        if scope["type"] != "http" or not scope["path"].endswith(path_suffix):
            await app(scope, receive, send)
            return
        started = {}

        async def capture(message):
            if message["type"] == "http.response.start":
                started.update(message)
                if b"json" not in dict(message["headers"]).get(b"content-type", b""):
                    await send(message)  # bytes (outputs) pass untouched
                return
            if b"json" not in dict(started["headers"]).get(b"content-type", b""):
                await send(message)
                return
            body = json.dumps(change(json.loads(message["body"]))).encode()
            headers = [(k, v) for k, v in started["headers"] if k.lower() != b"content-length"]
            await send({**started, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return drifted


def failures(result, workflow: str) -> set[str]:
    return {finding.failure for finding in result.findings if finding.operation == workflow}


def run(app, *names: str, **options):
    return check(Target("emulator", app=app), suites=["workflows"], operations=names or None, **options)


def test_workflows_emulator_in_process_has_no_drift(tmp_path):
    lines: list[str] = []
    result = run(emulator(), max_examples=2, report_dir=tmp_path, progress=lines.append)
    assert result.findings == [], result.summary()
    suite = result.suite("workflows")
    assert {op.operation: op.cases > 0 for op in suite.operations} == dict.fromkeys(NAMES, True)
    assert suite.skipped == []
    assert suite.spent > 0
    assert len([line for line in lines if line.startswith("ok   workflows")]) == len(NAMES)
    assert "| workflows | 6 |" in (tmp_path / "report.md").read_text()


def test_workflows_same_steps_on_two_conformant_targets():
    """The differential mode compares traces step by step: the poll loop leaves one exchange per status."""
    traces = []
    for seed in (1, 2):  # different seeds: different processing times, so different numbers of reads
        app = create_app(
            Settings(clock="virtual", rate_limits_enabled=False, seed=seed),
            clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)),
            sender=RecordingSender(),
        )
        session = Session(Target("emulator", app=app), operations=frozenset({"image_create_poll_output"}))
        workflows.run(session, SuiteRun(SuiteResult("workflows"), session, lambda operation: ""))
        traces.append([(exchange.step, exchange.status, exchange.body_shape) for exchange in session.trace.exchanges])
    assert traces[0] == traces[1]
    steps = [step for step, _, _ in traces[0]]
    assert steps.count("image_create_poll_output: poll image: succeeded") == 1


def test_workflows_charge_above_the_estimate_is_charged_more_than_estimated():
    def halve(body):
        body["estimated_cost"]["amount"] /= 2
        return body

    result = run(rewrite_json(emulator(), "/estimate", halve), "image_create_poll_output")
    finding = next(f for f in result.findings if f.failure == "ChargedMoreThanEstimated")
    assert (finding.expected, finding.actual) == ("0.5", "1.0")
    assert finding.curl is not None
    assert "/v1/images" in finding.curl
    assert result.exit_code == 1


def test_workflows_status_that_goes_back_is_status_went_backwards():
    reads = {"processing": 0}

    def flicker(body):  # drift: the second read while processing says pending again
        if body.get("status") == "processing":
            reads["processing"] += 1
            if reads["processing"] == 2:
                body["status"] = "pending"
        return body

    app = emulator()
    result = run(rewrite_json(app, "", flicker), "image_create_poll_output")
    finding = next(f for f in result.findings if f.failure == "StatusWentBackwards")
    assert finding.actual == "pending → processing → pending"


def test_workflows_output_that_never_expires_is_output_never_expires():
    result = run(emulator(output_ttl_image_seconds=10 * 86400), "image_create_poll_output")
    assert failures(result, "image_create_poll_output") == {"OutputNeverExpires"}


def test_workflows_output_served_as_other_type_is_output_not_png():
    def as_gif(app):
        async def drifted(scope, receive, send):
            async def retyped(message):
                if message["type"] == "http.response.start" and "/output/" in scope["path"]:
                    headers = [(k, v) for k, v in message["headers"] if k.lower() != b"content-type"]
                    message = {**message, "headers": [*headers, (b"content-type", b"image/gif")]}
                await send(message)

            await app(scope, receive, retyped)

        return drifted

    result = run(as_gif(emulator()), "image_create_poll_output")
    assert "OutputNotPNG" in failures(result, "image_create_poll_output")


def test_workflows_cancel_that_keeps_the_hold_is_cancel_did_not_release_hold():
    app = emulator()
    app.state.emulator.ledger.release = lambda *args, **kwargs: None  # drift: a cancel no longer frees the hold
    result = run(app, "video_create_cancel")
    finding = next(f for f in result.findings if f.failure == "CancelDidNotReleaseHold")
    assert "held=0" in finding.expected
    assert "held=1" in finding.actual


def test_workflows_character_usable_after_delete_is_character_usable_after_delete():
    app = emulator()
    characters = app.state.emulator.characters

    def any_status(team, character_id, now):  # drift: deleted characters still drive generations
        return characters.store.get("character", character_id)

    characters.require_ready = any_status
    result = run(app, "character_workflow")
    assert failures(result, "character_workflow") == {"CharacterUsableAfterDelete"}


def test_workflows_links_failures_are_findings_of_the_links_workflow():
    result = run(strip_response_headers(emulator(), b"aurous-request-id"), "links", max_examples=1)
    assert "MissingRequestId" in failures(result, "links")
    finding = next(f for f in result.findings if f.failure == "MissingRequestId")
    assert finding.curl is not None
    assert "al_live_" not in finding.curl
    assert "--operation links" in (finding.replay or "")


def test_workflows_live_safe_creates_nothing_and_says_why():
    recorder = Recorder(emulator())
    lines: list[str] = []
    result = check(
        Target("app", app=recorder), suites=["workflows"], profile=LIVE_SAFE, max_credits=0, progress=lines.append
    )
    assert result.exit_code == 0, result.summary()
    assert result.spent == 0
    assert not CREATES & set(recorder.seen)
    assert ("POST", "/v1/images/estimate") in recorder.seen
    suite = result.suite("workflows")
    assert [op.operation for op in suite.operations] == ["estimate_holds_nothing"]
    assert any("--allow-spend --max-credits" in reason for reason in suite.skipped)
    assert any(reason.startswith("links: only in the full profile") for reason in suite.skipped)
    assert sum(line.startswith("skip workflows") for line in lines) == len(NAMES) - 1


def test_workflows_budget_stops_before_the_cap_and_reports_it(tmp_path):
    lines: list[str] = []
    result = run(emulator(), max_credits=1.5, report_dir=tmp_path, progress=lines.append)
    assert result.spent <= 1.5
    assert result.spent == 1  # the cheapest image; the next create (a 1-credit video) would cross 1.5
    assert result.aborted is not None
    assert "createVideo" in result.aborted
    assert result.exit_code == 1
    assert "**Aborted:**" in (tmp_path / "report.md").read_text()
    assert any("stopped: the next call would cross the credit cap" in line for line in lines)


def test_workflows_rate_limits_are_waited_out_not_drift():
    app = create_app(
        Settings(clock="virtual", seed=11, rate_limits={"get": {"capacity": 2, "per_minute": 30}}),
        clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)),
        sender=RecordingSender(),
    )
    statuses: list[int] = []

    async def counting(scope, receive, send):
        async def noted(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        await app(scope, receive, noted)

    result = run(counting, "image_create_poll_output")
    assert 429 in statuses
    assert result.findings == [], result.summary()
    assert result.suite("workflows").operations[0].cases > 10


def test_workflows_without_clock_control_poll_in_real_time_and_skip_expiry():
    app = create_app(Settings(clock="system", control_plane=False, rate_limits_enabled=False, generation_speed=50))
    result = run(app, "image_create_poll_output")
    assert result.findings == [], result.summary()
    assert result.suite("workflows").operations[0].cases > 0
    assert any("no clock control" in reason for reason in result.suite("workflows").skipped)

"""The conventions suite: clean against the emulator, each drifted convention reported under its own name."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from contracts import Target, check
from contracts.check import LIVE_SAFE
from contracts.suites._replay import tiny_png
from mockserver import Settings, create_app
from mockserver.clock import VirtualClock
from mockserver.media import inspect_image
from mockserver.settings import KeyConfig
from tests.contracts.drift import (
    Recorder,
    drop_request_headers,
    post_to,
    rewrite_request,
    strip_response_headers,
)

CHECKS = ("auth", "scopes", "version", "idempotency", "rate_limit")


def emulator(**overrides):
    settings = Settings(**{"clock": "virtual", "seed": 7, **overrides})
    return create_app(settings, clock=VirtualClock(datetime(2026, 6, 1, 12, tzinfo=UTC)))


def conventions(app, *checks: str, **options):
    return check(Target("drifted", app=app), suites=["conventions"], operations=checks or None, **options)


def failures(result) -> set[str]:
    return {finding.failure for finding in result.findings}


def test_conventions_emulator_has_no_drift():
    result = conventions(emulator())
    assert result.findings == [], result.summary()
    assert {op.operation for op in result.operations} == set(CHECKS)
    assert all(op.cases > 0 for op in result.operations)
    assert result.exit_code == 0
    assert result.spent == 1  # one cheapest image: its replay is not billed (nor booked), the 409 neither


def test_idempotency_under_a_cap_needs_room_for_two_images():
    assert conventions(emulator(), "idempotency", max_credits=2).spent == 1
    result = conventions(emulator(), "idempotency", max_credits=1)
    assert result.spent == 0
    assert "room for two of the cheapest images" in " ".join(result.suite("conventions").skipped)


def test_tiny_png_is_a_valid_image():
    info = inspect_image(tiny_png())
    assert (info.mime_type, info.width, info.height) == ("image/png", 1, 1)


def test_dropped_ratelimit_remaining_is_rate_limit_headers_missing():
    result = conventions(strip_response_headers(emulator(), b"x-ratelimit-remaining"), "rate_limit")
    finding = next(f for f in result.findings if f.failure == "RateLimitHeadersMissing")
    assert "no X-RateLimit-Remaining" in finding.message
    assert finding.curl.startswith("curl -X POST")
    assert finding.expected == "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"


def test_unthrottled_target_is_rate_limit_not_enforced():
    result = conventions(emulator(rate_limits_enabled=False), "rate_limit")
    assert {"RateLimitHeadersInconsistent", "RateLimitNotEnforced"} <= failures(result)


def test_429_without_retry_after_is_rate_limit_429_shape():
    result = conventions(strip_response_headers(emulator(), b"retry-after"), "rate_limit")
    finding = next(f for f in result.findings if f.failure == "RateLimit429Shape")
    assert "Retry-After None" in finding.message
    assert finding.status == 429


def test_replay_that_rebills_is_reported():
    """The target ignores Idempotency-Key: the 'replay' is a second generation, billed again, and no 409."""
    result = conventions(drop_request_headers(emulator(), b"idempotency-key"), "idempotency")
    assert {
        "IdempotentReplayBilledTwice",
        "IdempotentReplayNewResource",
        "IdempotentReplayNotMarked",
        "IdempotencyConflictNot409",
    } <= failures(result)
    billed = next(f for f in result.findings if f.failure == "IdempotentReplayBilledTwice")
    assert billed.expected.startswith("available_credits stays")
    assert "Idempotency-Key" in billed.curl


def test_replay_without_the_header_is_idempotent_replay_not_marked():
    result = conventions(strip_response_headers(emulator(), b"aurous-idempotent-replayed"), "idempotency")
    assert failures(result) == {"IdempotentReplayNotMarked"}
    assert {f.title for f in result.findings} == {
        "POST /v1/images: the replay lacks aurous-idempotent-replayed: true",
        "POST /v1/files: the replay lacks aurous-idempotent-replayed: true",
    }


def test_replay_before_the_generation_is_terminal_is_reported():
    """A target that replays a running generation's create at once (the emulator's old default) deviates."""
    result = conventions(emulator(idempotency_replay="immediate"), "idempotency")
    assert failures(result) == {"IdempotentReplayWhileRunning"}
    finding = next(f for f in result.findings if f.failure == "IdempotentReplayWhileRunning")
    assert "replayed while the generation is pending" in finding.message
    assert finding.title == "POST /v1/images: the retry replayed before the original was terminal"


def test_a_generation_already_terminal_at_the_retry_replays_without_a_finding():
    """A live generation may finish before the retry: its replay is the documented answer, no false alarm."""
    instant = emulator(image_pending_seconds=0, image_processing_seconds=0)
    result = conventions(instant, "idempotency")
    assert result.findings == [], result.summary()


def _with_retry_after(app):
    """The emulator, but its 409s carry a Retry-After the idempotency page says they lack."""

    async def drifted(scope, receive, send):
        async def adding(message):
            if message["type"] == "http.response.start" and message["status"] == 409:
                message = {**message, "headers": [*message["headers"], (b"retry-after", b"1")]}
            await send(message)

        await app(scope, receive, adding)

    return drifted


def test_a_409_with_retry_after_while_running_is_reported():
    result = conventions(_with_retry_after(emulator()), "idempotency")
    assert "IdempotentRetryWhileRunning" in failures(result)
    finding = next(f for f in result.findings if f.failure == "IdempotentRetryWhileRunning")
    assert "Retry-After: 1" in finding.message


def _pin_to_published(headers, body):
    """A target that applies any later date as if it were the published version."""
    return [(k, v) for k, v in headers if not (k == b"aurous-version" and v > b"2026-05-15")], body


def test_unknown_future_version_accepted_is_reported():
    result = conventions(rewrite_request(emulator(), lambda scope: True, _pin_to_published), "version")
    finding = next(f for f in result.findings if f.failure == "UnknownVersionAccepted")
    assert finding.title == "Aurous-Version 2999-12-31 accepted"
    assert finding.expected == "400 invalid_request/unknown_version"
    assert finding.actual.startswith("200")
    assert "'Aurous-Version: 2999-12-31'" in finding.curl


def _read_keys_get_full_scope(headers, body):
    declared = json.loads(body or b"{}")
    return headers, json.dumps({**declared, "scope": "full"} if declared.get("scope") == "read" else declared).encode()


def test_unenforced_scope_is_scope_not_enforced():
    result = conventions(rewrite_request(emulator(), post_to("/_mock/keys"), _read_keys_get_full_scope), "scopes")
    assert failures(result) == {"ScopeNotEnforced"}
    assert all(f.actual.startswith("404") for f in result.findings)


def test_read_only_key_option_is_used_and_never_shown():
    secret = "al_live_" + "5" * 64
    clean = conventions(
        emulator(keys=[KeyConfig(key=secret, scope="read")]), "scopes", options={"read_only_key": secret}
    )
    assert clean.findings == []
    assert clean.operations[0].cases == 3
    drifted = emulator(keys=[KeyConfig(key=secret, scope="full")])  # the "read-only" key writes
    result = conventions(drifted, "scopes", options={"read_only_key": secret})
    assert failures(result) == {"ScopeNotEnforced"}
    assert all('"X-Api-Key: $AUROUS_READ_ONLY_KEY"' in f.curl and secret not in f.curl for f in result.findings)


def test_auth_error_without_request_id_is_auth_error_shape():
    result = conventions(strip_response_headers(emulator(), b"aurous-request-id"), "auth")
    finding = next(f for f in result.findings if f.failure == "AuthErrorShape")
    assert "differs from Aurous-Request-Id None" in finding.message


def test_bearer_refused_is_bearer_not_accepted():
    result = conventions(drop_request_headers(emulator(), b"authorization"), "auth")
    assert "BearerNotAccepted" in failures(result)


def test_live_safe_sends_no_create_and_says_what_it_skipped():
    recorder = Recorder(emulator())
    result = check(Target("app", app=recorder), suites=["conventions"], profile=LIVE_SAFE, max_credits=0)
    assert result.exit_code == 0, result.summary()
    writes = {(m, p) for m, p in recorder.seen if m != "GET" and not p.startswith("/_mock/")}
    assert {p for _, p in writes} == {
        "/v1/images/estimate",
        "/v1/images/img_00000000000000000000000000/cancel",  # scopes: refused 403, an unknown id anyway
        "/v1/webhook_endpoints/we_00000000000000000000000000/test",
    }
    skipped = " ".join(result.suite("conventions").skipped)
    assert "the image replay needs spending" in skipped
    assert "live-safe skips the file replay" in skipped
    assert result.spent == 0


@pytest.mark.e2e
def test_cli_conventions_against_running_emulator(live_server, capsys):
    from mockserver.cli import main

    code = main(["check", "--target", live_server, "--suite", "conventions"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ok   conventions rate_limit" in out

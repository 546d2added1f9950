"""The chat streaming suite: clean against the emulator, each drifted stream property reported under its name."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from contracts import Target, check
from contracts.budget import Budget, BudgetExceeded, chat_bound
from contracts.check import LIVE_SAFE
from contracts.suites.chat import parse_sse
from mockserver.cli import main
from tests.contracts.drift import post_to, rewrite_json_response, strip_response_headers
from tests.contracts.emulators import emulator

CHECKS = {"stream", "plain", "retrieve", "embedding"}
Rewrite = Callable[[list[dict[str, Any]]], list[Any]]


def chat(app: Any, **options: Any) -> Any:
    return check(Target("chat", app=app), suites=["chat"], **options)


def failures(result: Any) -> set[str]:
    return {finding.failure for finding in result.findings}


def test_emulator_streams_have_no_drift() -> None:
    result = chat(emulator())
    assert result.findings == [], result.summary()
    assert {op.operation for op in result.operations} == CHECKS
    assert all(op.cases > 0 for op in result.operations)
    assert 0 < result.spent < 0.01  # two completions (max_tokens 1) and one embedding, booked at their charge


def test_live_safe_without_spend_skips_the_suite() -> None:
    result = chat(emulator(), profile=LIVE_SAFE, max_credits=0)
    assert result.operations == []
    assert "allow spend" in " ".join(result.suite("chat").skipped)


def test_a_cap_below_one_completion_sends_nothing() -> None:
    result = chat(emulator(), max_credits=0.0001)
    assert result.spent == 0
    assert any("would bring spending" in reason for reason in result.suite("chat").skipped)


def drifted_stream(app: Any, rewrite: Rewrite, *, terminator: bytes = b"data: [DONE]\n\n") -> Any:
    """The app, with every streamed chat answer's JSON frames passed through ``rewrite``."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                parts.append(message.get("body", b""))

        await app(scope, receive, capture)
        body = b"".join(parts)
        headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
        if b"text/event-stream" in dict(start["headers"]).get(b"content-type", b""):
            frames = [json.loads(d) for d in parse_sse(body.decode()).data if d != "[DONE]"]
            lines = [f"data: {json.dumps(f)}\n\n" for f in rewrite(frames)]
            body = "".join(lines).encode() + terminator
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def without_usage(frames: list[dict[str, Any]]) -> list[Any]:
    return [{k: v for k, v in f.items() if k != "usage"} for f in frames]


def role_dropped(frames: list[dict[str, Any]]) -> list[Any]:
    frames[0]["choices"][0]["delta"].pop("role", None)
    return frames


def charge_inflated(frames: list[dict[str, Any]]) -> list[Any]:
    frames[-1]["usage"]["credits_charged"] += 0.01
    return frames


def total_wrong(frames: list[dict[str, Any]]) -> list[Any]:
    frames[-1]["usage"]["total_tokens"] += 1
    return frames


def finish_twice(frames: list[dict[str, Any]]) -> list[Any]:
    frames[0]["choices"][0]["finish_reason"] = "stop"
    return frames


def ids_differ(frames: list[dict[str, Any]]) -> list[Any]:
    frames[0]["id"] = "cmp_other"
    return frames


@pytest.mark.parametrize(
    ("rewrite", "failure"),
    [
        (without_usage, "StreamUsageMissing"),
        (role_dropped, "StreamRoleNotFirst"),
        (charge_inflated, "ChargeNotBreakdown"),
        (total_wrong, "UsageDoesNotAddUp"),
        (finish_twice, "StreamFinishReason"),
        (ids_differ, "StreamChunkShape"),
    ],
)
def test_each_stream_drift_is_reported(rewrite: Rewrite, failure: str) -> None:
    result = chat(drifted_stream(emulator(), rewrite), operations=["stream"])
    assert failure in failures(result), result.summary()
    assert all(f.operation == "stream" for f in result.findings)


def test_a_stream_without_tpm_headers_is_reported() -> None:
    result = chat(strip_response_headers(emulator(), b"x-ratelimit-tpm-remaining"), operations=["stream"])
    assert failures(result) == {"TpmHeadersMissing"}, result.summary()


def test_a_stream_without_done_is_reported() -> None:
    result = chat(drifted_stream(emulator(), lambda frames: frames, terminator=b""), operations=["stream"])
    assert failures(result) == {"StreamNotTerminated"}, result.summary()


def test_parse_sse_reads_comments_and_flags_named_events() -> None:
    stream = parse_sse(': keep-alive\n\ndata: {"a": 1}\n\nevent: chunk\ndata: {"b": 2}\n\ndata: [DONE]\n\n')
    assert stream.data == ['{"a": 1}', '{"b": 2}', "[DONE]"]
    assert stream.comments == 1
    assert stream.done
    assert any("event" in problem for problem in stream.problems)
    assert parse_sse('data: [DONE]\n\ndata: {"late": true}\n\n').problems == ["frames after data: [DONE]"]


def test_chat_budget_bounds_pessimistically_and_books_the_charge() -> None:
    body = {"model": "aurous-grow-2.0-pro", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    bound = chat_bound(body)
    assert 0 < bound < 0.1  # a few hundredths of a credit for a one-word prompt
    assert bound > (10 * 75 + 450) / 1e6  # above the day-1 price of any prompt this small
    budget = Budget(bound)
    assert budget.guard("createChatCompletion", body) == bound
    budget.book("createChatCompletion", {"usage": {"credits_charged": 0.0005}})
    assert budget.spent == 0.0005
    with pytest.raises(BudgetExceeded):
        budget.guard("createChatCompletion", body)


@pytest.mark.e2e
def test_cli_runs_the_chat_suite_over_real_http(live_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--target", live_server, "--suite", "chat"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no drift" in out


def inflated_embedding_charge(body: Any) -> Any:
    body["usage"]["credits_charged"] += 0.001
    return body


def short_vector(body: Any) -> Any:
    body["data"][0]["embedding"] = body["data"][0]["embedding"][:100]
    return body


@pytest.mark.parametrize(
    ("rewrite", "failure"),
    [(inflated_embedding_charge, "EmbeddingChargeNotEstimate"), (short_vector, "EmbeddingShape")],
)
def test_embedding_drift_is_reported(rewrite: Callable[[Any], Any], failure: str) -> None:
    app = rewrite_json_response(emulator(), post_to("/v1/embeddings"), rewrite)
    result = chat(app, operations=["embedding"])
    assert failures(result) == {failure}, result.summary()

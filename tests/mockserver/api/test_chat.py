"""Chat completions in process: create (JSON and SSE), get, cancel; validation, billing, TPM, idempotency, scenarios."""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from mockserver.core import llm_models, tokens
from tests.conftest import ClientFactory, new_api_key
from tests.helpers import assert_envelope
from tests.mockserver.api.chat_helpers import CHAT, MODEL, WEATHER_TOOL, body, content_of, sse


def create(client: TestClient, headers: dict[str, str], payload: dict[str, Any], status: int = 200) -> Any:
    response = client.post(CHAT, json=payload, headers=headers)
    assert response.status_code == status, response.text
    return response


def balance(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return dict(client.get("/v1/balance", headers=headers).json())


def expected_usage(prompt: int, completion: int, reasoning: int) -> float:
    model = next(m for m in llm_models.DEFAULT_LLM_MODELS if m.id == MODEL)
    return float(llm_models.chat_charge(model, prompt, completion, reasoning).total)


# --- the non-streamed completion --------------------------------------------------------------------------------


def test_create_returns_a_completed_completion_with_usage_that_adds_up(client, headers) -> None:
    payload = body("How should a small team plan database migrations?")
    done = create(client, headers, payload).json()
    assert done["object"] == "chat.completion"
    assert done["id"].startswith("cmp_")
    assert done["status"] == "completed"
    [choice] = done["choices"]
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"]
    assert "How should a small team" not in message["content"]  # not an echo
    usage = done["usage"]
    prompt = tokens.count_prompt(payload["messages"]).total
    assert usage["prompt_tokens"] == prompt
    assert usage["completion_tokens"] == tokens.count_text(message["content"])
    assert usage["reasoning_tokens"] == math.floor(0.5 * usage["completion_tokens"])  # default effort: medium
    assert usage["total_tokens"] == prompt + usage["completion_tokens"] + usage["reasoning_tokens"]
    parts = usage["breakdown"]
    assert usage["credits_charged"] == pytest.approx(
        parts["input_credits"] + parts["output_credits"] + parts["reasoning_credits"], abs=1e-9
    )
    assert usage["credits_charged"] == expected_usage(prompt, usage["completion_tokens"], usage["reasoning_tokens"])
    assert parts["model"] == MODEL
    assert parts["pricing_version"] == 7


def test_create_charges_exactly_credits_charged_and_holds_nothing_after(client, headers) -> None:
    before = balance(client, headers)
    done = create(client, headers, body(max_tokens=400, reasoning_effort="minimal")).json()
    after = balance(client, headers)
    assert after["held_credits"] == 0
    assert after["credits"] == pytest.approx(before["credits"] - done["usage"]["credits_charged"], abs=1e-9)
    rows = client.get("/v1/usage/events", headers=headers).json()["data"]
    mine = [row for row in rows if row.get("generation_id") == done["id"]]
    assert {row["type"] for row in mine} == {"hold", "charge", "release"}
    charge = next(row for row in mine if row["type"] == "charge")
    assert charge["amount"] == pytest.approx(done["usage"]["credits_charged"])


def test_max_tokens_cuts_the_reply_with_finish_reason_length(client, headers) -> None:
    done = create(client, headers, body(max_tokens=3)).json()
    assert done["choices"][0]["finish_reason"] == "length"
    assert done["usage"]["completion_tokens"] == 3
    assert tokens.count_text(done["choices"][0]["message"]["content"]) == 3


def test_same_request_same_text_other_temperature_other_text(client, headers) -> None:
    first = create(client, headers, body(max_tokens=200, temperature=0.2)).json()
    again = create(client, headers, body(max_tokens=200, temperature=0.2)).json()
    other = create(client, headers, body(max_tokens=200, temperature=1.3)).json()
    text = first["choices"][0]["message"]["content"]
    assert again["choices"][0]["message"]["content"] == text
    assert other["choices"][0]["message"]["content"] != text


def test_stop_cuts_before_the_first_stop_sequence(client, headers) -> None:
    full = create(client, headers, body(max_tokens=200)).json()["choices"][0]["message"]["content"]
    word = full.split()[3]
    cut = create(client, headers, body(max_tokens=200, stop=[word, "zzz-never"])).json()
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert cut["choices"][0]["message"]["content"] == full[: full.index(word)]


def test_max_completion_tokens_wins_over_max_tokens(client, headers) -> None:
    done = create(client, headers, body(max_tokens=100, max_completion_tokens=2)).json()
    assert done["usage"]["completion_tokens"] == 2


def test_json_object_reply_parses(client, headers) -> None:
    done = create(client, headers, body(max_tokens=400, response_format={"type": "json_object"})).json()
    assert isinstance(json.loads(done["choices"][0]["message"]["content"]), dict)


def test_json_schema_reply_is_an_instance_of_the_schema(client, headers) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 2},
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1},
            "address": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/address"}]},
        },
        "required": ["name", "age", "tags", "address"],
        "additionalProperties": False,
        "$defs": {
            "tag": {"type": "string", "enum": ["red", "green"]},
            "address": {"type": "object", "properties": {"zip": {"type": "string"}}, "required": ["zip"]},
        },
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": schema}}
    done = create(client, headers, body(max_tokens=800, response_format=fmt)).json()
    jsonschema.validate(json.loads(done["choices"][0]["message"]["content"]), schema)


def test_forced_tool_call_has_arguments_valid_against_the_tool(client, headers) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    done = create(client, headers, body(max_tokens=200, tools=[WEATHER_TOOL], tool_choice=choice)).json()
    [c] = done["choices"]
    assert c["finish_reason"] == "tool_calls"
    assert c["message"]["content"] is None
    [call] = c["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER_TOOL["function"]["parameters"])
    assert done["usage"]["completion_tokens"] == tokens.count_text(call["function"]["arguments"])


def test_reasoning_effort_minimal_has_no_reasoning_keys(client, headers) -> None:
    usage = create(client, headers, body(reasoning_effort="minimal")).json()["usage"]
    assert "reasoning_tokens" not in usage
    assert "reasoning_credits" not in usage["breakdown"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_unknown_openai_fields_and_nulls_are_accepted(client, headers) -> None:
    extra = {"user": "u1", "metadata": {"a": "b"}, "parallel_tool_calls": True, "logit_bias": {}, "stop": None}
    create(client, headers, body(**extra))


def test_get_returns_the_stored_completion_and_hides_other_teams(client, headers) -> None:
    done = create(client, headers, body()).json()
    got = client.get(f"{CHAT}/{done['id']}", headers=headers)
    assert got.status_code == 200
    assert got.json() == done
    assert got.headers["X-RateLimit-TPM-Limit"] == "200000"
    other = {"X-Api-Key": new_api_key()}
    assert_envelope(client.get(f"{CHAT}/{done['id']}", headers=other), 404, "resource_not_found")


def test_get_after_the_retention_is_not_found(client, headers) -> None:
    done = create(client, headers, body()).json()
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 31 * 86400})
    assert_envelope(client.get(f"{CHAT}/{done['id']}", headers=headers), 404, "resource_not_found")


# --- validation (the sheet's order: body → model → caps → TPM → balance) --------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "code", "param"),
    [
        ({"model": None}, 400, "missing_field", "model"),
        ({"messages": []}, 400, "value_out_of_range", "messages"),
        ({"temperature": 2.5}, 400, "value_out_of_range", "temperature"),
        ({"top_p": -0.1}, 400, "value_out_of_range", "top_p"),
        ({"presence_penalty": 3}, 400, "value_out_of_range", "presence_penalty"),
        ({"top_logprobs": 21}, 400, "value_out_of_range", "top_logprobs"),
        ({"n": 2}, 400, "value_out_of_range", "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, 400, "value_out_of_range", "stop"),
        ({"max_tokens": 0}, 400, "value_out_of_range", "max_tokens"),
        ({"stream": "yes"}, 400, "invalid_format", "stream"),
        ({"model": "gpt-9"}, 404, "resource_not_found", "model"),
        ({"model": "aurous-embed-vision-1.0"}, 400, "model_wrong_kind", "model"),
        ({"max_tokens": 8193}, 400, "max_tokens_exceeds_hard_cap", "max_tokens"),
        ({"max_completion_tokens": 9000}, 400, "max_tokens_exceeds_hard_cap", "max_completion_tokens"),
        ({"tool_choice": "required"}, 400, "invalid_format", "tool_choice"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 400, "missing_field", "messages[0].tool_call_id"),
        ({"messages": [{"role": "user"}]}, 400, "missing_field", "messages[0].content"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://10.0.0.1/a"}}]}
                ]
            },
            400,
            "invalid_format",
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"$ref": "https://e.com/s"}},
                }
            },
            400,
            "invalid_format",
            "response_format.json_schema.schema",
        ),
    ],
)
def test_invalid_requests_are_refused_with_the_documented_code(client, headers, change, status, code, param) -> None:
    payload = {**body(), **change}
    before = balance(client, headers)
    error = assert_envelope(client.post(CHAT, json=payload, headers=headers), status, code, param)
    assert error["code"] == code
    assert balance(client, headers) == before  # nothing held or charged


def test_errors_carry_the_tpm_headers(client, headers) -> None:
    response = client.post(CHAT, json={**body(), "temperature": 9}, headers=headers)
    assert response.status_code == 400
    assert response.headers["X-RateLimit-TPM-Limit"] == "200000"


def test_data_uri_images_are_accepted_and_counted_by_tier(client, headers) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
    payload = {**body(), "messages": [{"role": "user", "content": [{"type": "text", "text": "what is it"}, image]}]}
    done = create(client, headers, payload).json()
    assert done["usage"]["prompt_tokens"] == tokens.MESSAGE_OVERHEAD + tokens.count_text("what is it") + 512


def test_schema_too_large_and_too_deep(client_for: ClientFactory, headers) -> None:
    client = client_for(chat_max_schema_bytes=200, chat_max_schema_depth=3)
    big = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(30)}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": big}}
    response = client.post(CHAT, json=body(response_format=fmt), headers=headers)
    assert_envelope(response, 400, "response_format_too_large", "response_format.json_schema.schema")
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(4):
        deep = {"type": "object", "properties": {"x": deep}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": deep}}
    response = client.post(CHAT, json=body(response_format=fmt), headers=headers)
    assert_envelope(response, 400, "response_format_too_deep", "response_format.json_schema.schema")


def test_context_window_and_capabilities_follow_the_catalogue(client_for: ClientFactory, headers) -> None:
    small = {MODEL: {"context_window": 10, "capabilities": ["multimodal_input"]}}
    client = client_for(llm_models=small)
    assert_envelope(client.post(CHAT, json=body(), headers=headers), 400, "max_input_tokens_exceeded", "messages")
    client = client_for(llm_models={MODEL: {"capabilities": ["multimodal_input"]}})
    payload = body(tools=[WEATHER_TOOL], tool_choice="required")
    assert_envelope(
        client.post(CHAT, json=payload, headers=headers), 400, "tool_choice_required_unsupported", "tool_choice"
    )
    usage = client.post(CHAT, json=body(reasoning_effort="high"), headers=headers).json()["usage"]
    assert "reasoning_tokens" not in usage  # ignored without the capability


def test_balance_too_low_is_402_before_any_row(client_for: ClientFactory) -> None:
    client = client_for(default_credits=0.001)
    headers = {"X-Api-Key": new_api_key()}
    assert_envelope(client.post(CHAT, json=body(max_tokens=4000), headers=headers), 402, "balance_too_low")
    assert client.get("/v1/usage/events", headers=headers).json()["data"] == []


def test_hold_follows_the_formula(client, headers) -> None:
    """The hold (visible in the ledger) is (ceil(est_in × 1.10) × in_rate + max_tokens × out_rate) / 1e6."""
    payload = body(max_tokens=1000)
    done = create(client, headers, payload).json()
    rows = client.get("/v1/usage/events", headers=headers).json()["data"]
    hold = next(row for row in rows if row["type"] == "hold" and row["generation_id"] == done["id"])
    prompt = done["usage"]["prompt_tokens"]
    assert hold["amount"] == pytest.approx((math.ceil(prompt * 1.1) * 75 + 1000 * 450) / 1e6, abs=1e-6)


# --- TPM ----------------------------------------------------------------------------------------------------------


def test_tpm_bucket_is_debited_refunded_and_refuses_with_retry_after(client_for: ClientFactory, headers) -> None:
    client = client_for(rate_limits={"llm_tpm": {"capacity": 3000, "per_minute": 600}})
    first = create(client, headers, body(max_tokens=2000))
    used = first.json()["usage"]["total_tokens"]
    assert int(first.headers["X-RateLimit-TPM-Remaining"]) == 3000 - first.json()["usage"]["prompt_tokens"] - 2000
    refused = client.post(CHAT, json=body(max_tokens=2990), headers=headers)
    error = assert_envelope(refused, 429, "tpm_rate_limit_exceeded")
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Retry-After" in refused.headers
    assert error["type"] == "rate_limit"
    assert int(refused.headers["X-RateLimit-TPM-Remaining"]) == 3000 - used  # refunded to actual after the first


# --- idempotency --------------------------------------------------------------------------------------------------


def test_non_streamed_idempotent_replay_is_not_billed_again(client, headers) -> None:
    keyed = {**headers, "Idempotency-Key": "chat-1"}
    first = create(client, keyed, body())
    credits = balance(client, headers)["credits"]
    again = create(client, keyed, body())
    assert again.json() == first.json()
    assert again.headers["Aurous-Idempotent-Replayed"] == "true"
    assert "Aurous-Idempotent-Replayed" not in first.headers
    assert "Aurous-Idempotency-Status" not in first.headers
    assert balance(client, headers)["credits"] == credits
    other = client.post(CHAT, json=body(temperature=0.5), headers=keyed)
    assert_envelope(other, 409, "idempotency_key_in_use")


def test_streamed_requests_ignore_the_key(client, headers) -> None:
    keyed = {**headers, "Idempotency-Key": "stream-1"}
    first = create(client, keyed, body(stream=True))
    second = create(client, keyed, body(stream=True))
    assert first.headers["Aurous-Idempotency-Status"] == "ignored_streaming"
    frames, _ = sse(first.text)
    assert frames[0]["choices"] == []
    assert frames[0]["aurous_warning"]["code"] == "idempotency_ignored_streaming"
    assert sse(second.text)[0][1]["id"] != frames[1]["id"]  # not replayed: a new completion
    plain = create(client, headers, body(stream=True))
    assert plain.headers["Aurous-Idempotency-Status"] == "not_set"


# --- streaming ----------------------------------------------------------------------------------------------------


def test_stream_frames_follow_the_openai_grammar(client, headers) -> None:
    response = create(client, headers, body(stream=True, max_tokens=30))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache, no-transform"
    assert response.headers["X-RateLimit-TPM-Limit"] == "200000"
    frames, _ = sse(response.text)
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("usage" not in c for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0]["delta"] == {}
    assert last["choices"][0]["finish_reason"] == "length"
    usage = last["usage"]
    assert usage["completion_tokens"] == 30 == len(chunks) - 2
    stored = client.get(f"{CHAT}/{last['id']}", headers=headers).json()
    assert stored["status"] == "completed"
    assert stored["choices"][0]["message"]["content"] == content_of(chunks)
    assert stored["usage"] == usage


def test_stream_and_json_give_the_same_text(client, headers) -> None:
    plain = create(client, headers, body(max_tokens=80)).json()
    frames, _ = sse(create(client, headers, body(max_tokens=80, stream=True)).text)
    assert content_of(frames) == plain["choices"][0]["message"]["content"]


def test_include_usage_sends_usage_null_until_the_last_chunk(client, headers) -> None:
    frames, _ = sse(create(client, headers, body(stream=True, stream_options={"include_usage": True})).text)
    chunks = frames[:-1]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_streamed_tool_call_deltas_assemble_to_valid_arguments(client, headers) -> None:
    payload = body(stream=True, max_tokens=300, tools=[WEATHER_TOOL], tool_choice="required")
    frames, _ = sse(create(client, headers, payload).text)
    chunks = frames[:-1]
    first = chunks[0]["choices"][0]["delta"]
    [call] = first["tool_calls"]
    assert call["index"] == 0
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-1]]
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in fragments)
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    jsonschema.validate(json.loads(arguments), WEATHER_TOOL["function"]["parameters"])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == tokens.count_text(arguments)


# --- cancel -------------------------------------------------------------------------------------------------------


def test_cancel_errors(client, headers) -> None:
    done = create(client, headers, body()).json()
    response = client.post(f"{CHAT}/{done['id']}/cancel", headers=headers)
    assert_envelope(response, 409, "chat_cancel_target_already_terminal")
    unknown = client.post(f"{CHAT}/cmp_01HXMQ7Z3K8Y2ABCDEFGHJKM/cancel", headers=headers)
    assert_envelope(unknown, 404, "chat_cancel_target_not_found")
    other = client.post(f"{CHAT}/{done['id']}/cancel", headers={"X-Api-Key": new_api_key()})
    assert_envelope(other, 404, "chat_cancel_target_not_found")


# --- scenarios ----------------------------------------------------------------------------------------------------


def test_scripted_reply_text(client, headers) -> None:
    done = create(client, headers, body("hello [mock:reply=Forty-two, obviously.]", max_tokens=100)).json()
    assert done["choices"][0]["message"]["content"] == "Forty-two, obviously."


def test_scenario_forces_a_tool_call(client, headers) -> None:
    done = create(client, {**headers, "Aurous-Mock-Scenario": "tool_call"}, body(tools=[WEATHER_TOOL])).json()
    [call] = done["choices"][0]["message"]["tool_calls"]
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER_TOOL["function"]["parameters"])


def test_error_frame_inside_a_200_stream(client, headers) -> None:
    response = create(client, headers, body("x [mock:stream_error=3]", stream=True, max_tokens=20))
    frames, _ = sse(response.text)
    assert frames[-1] == "[DONE]"
    error = frames[-2]["error"]
    assert error["code"] == "chat_provider_unavailable"
    assert error["request_id"] == response.headers["Aurous-Request-Id"]
    assert len(content_of(frames[:-2])) == 3 * tokens.CHARS_PER_TOKEN
    stored = client.get(f"{CHAT}/{frames[0]['id']}", headers=headers).json()
    assert stored["status"] == "failed"
    assert stored["error"]["code"] == "chat_provider_unavailable"
    assert stored["usage"]["completion_tokens"] == 3  # delivered tokens are billed
    assert balance(client, headers)["held_credits"] == 0


def test_stream_error_on_a_non_streamed_request_is_502_and_free(client, headers) -> None:
    before = balance(client, headers)["credits"]
    response = client.post(CHAT, json=body("x [mock:stream_error]"), headers=headers)
    assert_envelope(response, 502, "chat_provider_unavailable")
    assert balance(client, headers)["credits"] == before


def test_stream_drop_ends_the_stream_without_done(client, headers) -> None:
    frames, _ = sse(create(client, headers, body("x [mock:stream_drop=2]", stream=True)).text)
    assert "[DONE]" not in frames
    assert len(frames) == 3  # role + 2 tokens
    stored = client.get(f"{CHAT}/{frames[0]['id']}", headers=headers).json()
    assert stored["status"] == "failed"


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [
        ("provider_unavailable", 502, "chat_provider_unavailable"),
        ("tpm_rate_limit=7", 429, "tpm_rate_limit_exceeded"),
        ("internal_error", 500, "internal_error"),
        ("balance_too_low", 402, "balance_too_low"),
    ],
)
def test_request_level_scenarios(client, headers, scenario, status, code) -> None:
    response = client.post(CHAT, json=body(), headers={**headers, "Aurous-Mock-Scenario": scenario})
    assert_envelope(response, status, code)
    if status == 429:
        assert response.headers["Retry-After"] == "7"


def test_provider_rate_limited_is_503_rate_limit_with_retry_after(client, headers) -> None:
    response = client.post(CHAT, json=body(), headers={**headers, "Aurous-Mock-Scenario": "provider_rate_limited=4"})
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "rate_limit"
    assert response.json()["error"]["code"] == "provider_rate_limited"
    assert response.headers["Retry-After"] == "4"


def test_scenario_rules_from_the_control_plane_reach_chat(client, headers) -> None:
    rule = {"when": {"operation": "createChatCompletion"}, "then": ["reply=scripted by rule"]}
    assert client.post("/_mock/scenarios", json=rule, headers=headers).status_code == 201
    done = create(client, headers, body()).json()
    assert done["choices"][0]["message"]["content"] == "scripted by rule"
    assert create(client, headers, body()).json()["choices"][0]["message"]["content"] != "scripted by rule"


def test_chat_outcomes_do_not_apply_to_images(client, headers) -> None:
    response = client.post(
        "/v1/images", json={"prompt": "a cat"}, headers={**headers, "Aurous-Mock-Scenario": "reply=x"}
    )
    assert_envelope(response, 400, "invalid_format", "Aurous-Mock-Scenario")


# --- state: reset, snapshots, journal ---------------------------------------------------------------------------


def test_reset_forgets_completions_and_snapshots_restore_them(client, headers) -> None:
    snap = client.post("/_mock/snapshots", headers=headers).json()
    done = create(client, headers, body()).json()
    assert client.post(f"/_mock/snapshots/{snap['id']}/restore", headers=headers).status_code == 200
    assert_envelope(client.get(f"{CHAT}/{done['id']}", headers=headers), 404, "resource_not_found")
    again = create(client, headers, body()).json()
    client.post("/_mock/reset", headers=headers)
    assert_envelope(client.get(f"{CHAT}/{again['id']}", headers=headers), 404, "resource_not_found")


def test_journal_records_chat_exchanges(client, headers) -> None:
    create(client, headers, body())
    create(client, headers, body(stream=True))
    entries = client.get("/_mock/journal", headers=headers, params={"operation": "createChatCompletion"}).json()
    assert len(entries["data"]) == 2


@pytest.mark.parametrize(
    ("message", "code", "param"),
    [
        ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.com/a", "detail": "max"}}]},
         "invalid_format", "messages[0].content[0].image_url.detail"),
        ({"role": "user", "content": [{"type": "text"}]}, "missing_field", "messages[0].content[0].text"),
        ({"role": "robot", "content": "x"}, "invalid_format", "messages[0].role"),
    ],
)  # fmt: skip
def test_nested_errors_name_the_field_without_union_labels(client, headers, message, code, param) -> None:
    response = client.post(CHAT, json={**body(), "messages": [message]}, headers=headers)
    assert_envelope(response, 400, code, param)


def test_each_completion_is_a_row_of_the_usage_event_stream(client, headers) -> None:
    done = create(client, headers, body()).json()
    client.post("/_mock/clock/advance", headers=headers, json={"seconds": 1})  # the window ends (exclusive) now
    params = {"start_time": "2026-06-01T00:00:00Z", "type": "chat"}
    rows = client.get("/v1/usage/events", headers=headers, params=params).json()["data"]
    [row] = rows
    assert row["id"] == done["id"]
    assert row["type"] == "chat"
    assert row["model"] == MODEL
    assert row["status"] == "completed"
    assert row["input_tokens"] == done["usage"]["prompt_tokens"]
    assert row["output_tokens"] == done["usage"]["completion_tokens"]
    assert row["credits_charged"] == done["usage"]["credits_charged"]


def test_rates_are_the_models_current_ones_not_frozen_per_version(client_for: ClientFactory, headers) -> None:
    repriced = client_for(llm_models={MODEL: {"output_rate": 900, "pricing_version": 8}})
    payload = body(reasoning_effort="minimal")
    usage = create(repriced, headers, payload).json()["usage"]
    assert usage["breakdown"]["pricing_version"] == 8
    assert usage["breakdown"]["output_credits"] == usage["completion_tokens"] * 900 / 1e6
    pinned = create(repriced, {**headers, "Aurous-Version": "2026-05-15"}, payload).json()["usage"]
    assert pinned["breakdown"]["pricing_version"] == 8


def test_scopes_read_key_can_get_but_not_create(client, headers) -> None:
    done = create(client, headers, body()).json()
    reader = {"X-Api-Key": client.post("/_mock/keys", headers=headers, json={"scope": "read"}).json()["key"]}
    assert_envelope(client.post(CHAT, json=body(), headers=reader), 403, "missing_scope")
    assert client.get(f"{CHAT}/{done['id']}", headers=reader).status_code == 200
    assert_envelope(client.post(f"{CHAT}/{done['id']}/cancel", headers=reader), 403, "missing_scope")


def test_strict_flag_enforces_64_character_keys_on_chat(client_for: ClientFactory, headers) -> None:
    client = client_for(chat_idempotency_key_max_64=True)
    long_key = {**headers, "Idempotency-Key": "k" * 65}
    assert_envelope(client.post(CHAT, json=body(), headers=long_key), 400, "invalid_format", "Idempotency-Key")
    create(client, {**headers, "Idempotency-Key": "k" * 64}, body())
    create(client_for(), long_key, body())  # 1-256 by default


def test_latency_scenario_reaches_chat(client, headers) -> None:
    done = create(client, {**headers, "Aurous-Mock-Scenario": "latency=5"}, body())
    assert done.json()["status"] == "completed"


def test_a_tool_round_trip_conversation_gets_a_text_reply(client, headers) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
    ]
    done = create(client, headers, {**body(), "messages": messages, "tools": [WEATHER_TOOL]}).json()
    assert done["choices"][0]["finish_reason"] in ("stop", "length")
    assert done["choices"][0]["message"]["content"]
    assert done["usage"]["prompt_tokens"] == tokens.count_prompt(messages, tools=[WEATHER_TOOL]).total


@pytest.mark.every_store
def test_completions_live_in_every_store(client, headers) -> None:
    keyed = {**headers, "Idempotency-Key": "every-store"}
    done = create(client, keyed, body()).json()
    assert create(client, keyed, body()).json() == done
    frames, _ = sse(create(client, headers, body(stream=True, max_tokens=5)).text)
    assert client.get(f"{CHAT}/{done['id']}", headers=headers).json() == done
    streamed = client.get(f"{CHAT}/{frames[0]['id']}", headers=headers).json()
    assert streamed["status"] == "completed"
    assert streamed["usage"] == frames[-2]["usage"]
    assert balance(client, headers)["held_credits"] == 0

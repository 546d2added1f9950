"""``POST /v1/embeddings`` and ``/estimate`` (fact sheet aurous-llm-v1.md §6): vectors, validation, billing, limits."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver.core.errors import EmbeddingsBatchNotSupportedError
from tests.conftest import ClientFactory, new_api_key
from tests.helpers import assert_envelope

MODEL = "aurous-embed-vision-1.0"
IMAGE = {"type": "image_url", "image_url": {"url": "https://assets.example.com/bag.jpg"}}


def embed(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/embeddings", json={"model": MODEL, **body}, headers=headers)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embedding_is_a_deterministic_unit_vector_of_the_native_dimension(
    client: TestClient, headers: dict[str, str]
) -> None:
    first = embed(client, headers, input="The quick brown fox")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["object"] == "list"
    assert body["model"] == MODEL
    [row] = body["data"]
    assert (row["object"], row["index"]) == ("embedding", 0)
    assert len(row["embedding"]) == 2048
    assert math.isclose(math.sqrt(sum(v * v for v in row["embedding"])), 1.0, rel_tol=1e-9)
    other_team = {"X-Api-Key": new_api_key()}
    assert embed(client, other_team, input="The quick brown fox").json()["data"][0]["embedding"] == row["embedding"]
    different = embed(client, headers, input="Quarterly revenue report").json()["data"][0]["embedding"]
    assert different != row["embedding"]


def test_shared_words_make_vectors_closer(client: TestClient, headers: dict[str, str]) -> None:
    def vec(text: str) -> list[float]:
        return list(embed(client, headers, input=text).json()["data"][0]["embedding"])

    anchor = vec("a red leather messenger bag")
    assert cosine(anchor, vec("red leather messenger bag for sale")) > cosine(anchor, vec("quantum chromodynamics"))


def test_usage_and_charge_follow_the_token_counter_and_the_rates(client: TestClient, headers: dict[str, str]) -> None:
    before = client.get("/v1/balance", headers=headers).json()["credits"]
    parts = [{"type": "text", "text": "a" * 2000}, IMAGE, IMAGE]
    body = embed(client, headers, input=parts).json()
    usage = body["usage"]
    assert usage["prompt_tokens"] == usage["total_tokens"] == 500 + 2 * 1024
    # 500 × 18.75 / 1e6 + 2048 × 48.75 / 1e6
    assert usage["breakdown"] == {"input": {"text": 0.009375, "visual": 0.09984, "video": 0}, "model": MODEL}
    assert usage["credits_charged"] == pytest.approx(0.109215, abs=1e-12)
    after = client.get("/v1/balance", headers=headers).json()
    assert after["credits"] == pytest.approx(before - 0.109215, abs=1e-9)
    assert after["held_credits"] == 0


def test_estimate_equals_charge_and_charges_nothing(client: TestClient, headers: dict[str, str]) -> None:
    payload = {"model": "aurous-embed-vision", "input": [{"type": "text", "text": "x" * 2000}, IMAGE]}
    estimate = client.post("/v1/embeddings/estimate", json=payload, headers=headers)
    assert estimate.status_code == 200, estimate.text
    est = estimate.json()
    assert est["estimated"] is True
    assert est["tokens"] == {"text": 500, "image": 1024, "video": 0, "total": 1524}
    assert client.get("/v1/balance", headers=headers).json()["credits"] == 1000.0
    created = client.post("/v1/embeddings", json=payload, headers=headers).json()
    assert created["model"] == "aurous-embed-vision"  # the slug sent is echoed
    assert created["usage"]["credits_charged"] == est["credits_estimated"]
    assert created["usage"]["breakdown"] == est["breakdown"]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"input": ["alpha", "beta"]}, 400, "embeddings_batch_not_supported", "input"),
        ({"input": [{"type": "video_url", "video_url": {"url": "https://x.example/v.mp4"}}]}, 400,
         "embeddings_video_unsupported", "input"),
        ({"input": [{"type": "text", "text": "a"}] * 17}, 400, "embeddings_input_too_many_items", "input"),
        ({"input": [IMAGE] * 9}, 400, "embeddings_input_too_many_items", "input"),
        ({"input": "hi", "dimensions": 512}, 400, "embeddings_unsupported_dimensions", "dimensions"),
        ({"input": "hi", "model": "aurous-grow-2.0-pro"}, 400, "model_wrong_kind", "model"),
        ({"input": "hi", "model": "text-embedding-3-small"}, 404, "resource_not_found", "model"),
        ({"input": [{"type": "image_url", "image_url": {"url": "http://10.0.0.1/a.png"}}]}, 400, "invalid_format",
         "input[0].image_url.url"),
        ({"input": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}, 400,
         "invalid_format", "input[0].image_url.url"),
        ({"input": "hi", "encoding_format": "hex"}, 400, "invalid_format", "encoding_format"),
        ({}, 400, "missing_field", "input"),
    ],
)  # fmt: skip
def test_invalid_requests_get_the_documented_code_on_create_and_estimate(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], status: int, code: str, param: str
) -> None:
    payload = {"model": MODEL, **body}
    for path in ("/v1/embeddings", "/v1/embeddings/estimate"):
        response = client.post(path, json=payload, headers=headers)
        assert_envelope(response, status, code, param)
    assert client.get("/v1/balance", headers=headers).json()["credits"] == 1000.0


def test_batch_message_is_the_vendors(client: TestClient, headers: dict[str, str]) -> None:
    error = embed(client, headers, input=["a", "b", "c"]).json()["error"]
    assert error["message"] == EmbeddingsBatchNotSupportedError.message


def test_too_large_input_is_embeddings_input_too_large(client: TestClient, headers: dict[str, str]) -> None:
    parts = [{"type": "text", "text": "a" * 1_000_000}]  # 250,000 tokens > the 128,000 context
    response = client_post_big(client, headers, parts)
    assert_envelope(response, 400, "embeddings_input_too_large", "input")


def client_post_big(client: TestClient, headers: dict[str, str], parts: list[dict[str, Any]]) -> Any:
    return client.post("/v1/embeddings", json={"model": MODEL, "input": parts}, headers=headers)


def test_valid_dimensions_are_accepted_but_the_vector_stays_native(client: TestClient, headers: dict[str, str]) -> None:
    body = embed(client, headers, input="hello", dimensions=1024).json()
    assert len(body["data"][0]["embedding"]) == 2048


def test_idempotency_replays_without_charging_again(client: TestClient, headers: dict[str, str]) -> None:
    keyed = {**headers, "Idempotency-Key": "emb-key-1"}
    first = embed(client, keyed, input="hello world")
    again = embed(client, keyed, input="hello world")
    assert first.status_code == again.status_code == 200
    assert again.headers["Aurous-Idempotent-Replayed"] == "true"
    assert "Aurous-Idempotent-Replayed" not in first.headers
    assert again.json() == first.json()
    charged = first.json()["usage"]["credits_charged"]
    assert client.get("/v1/balance", headers=headers).json()["credits"] == pytest.approx(1000 - charged, abs=1e-9)
    assert_envelope(embed(client, keyed, input="other"), 409, "idempotency_key_in_use")


def test_insufficient_balance_is_402_and_nothing_moves(client_for: ClientFactory) -> None:
    key = new_api_key()
    client = client_for(keys=[{"key": key, "credits": 0.00001}])
    headers = {"X-Api-Key": key}
    assert_envelope(embed(client, headers, input="a" * 4000), 402, "balance_too_low")
    balance = client.get("/v1/balance", headers=headers).json()
    assert (balance["credits"], balance["held_credits"]) == (0.00001, 0)


def test_tpm_headers_on_every_answer_and_429_when_empty(client_for: ClientFactory) -> None:
    client = client_for(rate_limits={"llm_tpm": {"capacity": 1000, "per_minute": 1000}})
    headers = {"X-Api-Key": new_api_key()}
    ok = embed(client, headers, input="a" * 2400)  # 600 tokens
    assert ok.status_code == 200
    assert (ok.headers["X-RateLimit-TPM-Limit"], ok.headers["X-RateLimit-TPM-Remaining"]) == ("1000", "400")
    assert "X-RateLimit-Limit" in ok.headers  # the RPM trio as well
    bad = embed(client, headers, input=["a", "b"])
    assert bad.headers["X-RateLimit-TPM-Remaining"] == "400"
    limited = embed(client, headers, input="a" * 2400)
    error = assert_envelope(limited, 429, "tpm_rate_limit_exceeded")
    assert error["type"] == "rate_limit"
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.post(
        "/v1/embeddings/estimate", json={"model": MODEL, "input": "a" * 2400}, headers=headers
    ).is_success


def test_base64_is_ignored_by_default_and_honoured_with_the_setting(client_for: ClientFactory) -> None:
    headers = {"X-Api-Key": new_api_key()}
    floats = embed(client_for(), headers, input="hello", encoding_format="base64").json()["data"][0]["embedding"]
    assert isinstance(floats, list)
    honoured = client_for(embeddings_base64=True)
    encoded = embed(honoured, headers, input="hello", encoding_format="base64").json()["data"][0]["embedding"]
    raw = base64.b64decode(encoded)
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(decoded) == 2048
    assert decoded == pytest.approx(floats, abs=1e-6)


def test_each_embedding_writes_one_usage_event_row(client: TestClient, headers: dict[str, str]) -> None:
    created = embed(client, headers, input="hello world").json()
    window = {"start_time": "2026-06-01T00:00:00Z", "end_time": "2026-06-02T00:00:00Z", "type": "embedding"}
    events = client.get("/v1/usage/events", params=window, headers=headers).json()["data"]
    [row] = events
    assert row["id"].startswith("emb_")
    assert (row["type"], row["model"], row["status"]) == ("embedding", MODEL, "completed")
    assert row["input_tokens"] == created["usage"]["prompt_tokens"]
    assert row["credits_charged"] == created["usage"]["credits_charged"]
    ledger = client.get("/v1/usage/events", headers=headers).json()["data"]
    assert {entry["type"] for entry in ledger} == {"hold", "charge"}
    assert all(entry["generation_id"] == row["id"] for entry in ledger)


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [("provider_rate_limited=3", 503, "provider_rate_limited"), ("tpm_rate_limit=3", 429, "tpm_rate_limit_exceeded")],
)
def test_llm_scenarios_reach_embeddings_and_charge_nothing(
    client: TestClient, headers: dict[str, str], scenario: str, status: int, code: str
) -> None:
    response = embed(client, {**headers, "Aurous-Mock-Scenario": scenario}, input="hello")
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit", code)  # 503 with type rate_limit: the vendor's pairing
    assert response.headers["Retry-After"] == "3"
    assert client.get("/v1/balance", headers=headers).json()["credits"] == 1000.0


def test_chat_completions_are_usage_event_rows_too(client: TestClient, headers: dict[str, str]) -> None:
    body = {"model": "aurous-grow-2.0-pro", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    completion = client.post("/v1/chat/completions", json=body, headers=headers).json()
    embed(client, headers, input="hello")
    window = {"start_time": "2026-06-01T00:00:00Z", "end_time": "2026-06-02T00:00:00Z"}
    rows = client.get("/v1/usage/events", params=window, headers=headers).json()["data"]
    assert {row["type"] for row in rows} == {"chat", "embedding"}
    [chat] = [row for row in rows if row["type"] == "chat"]
    usage = completion["usage"]
    assert (chat["id"], chat["status"], chat["model"]) == (completion["id"], "completed", "aurous-grow-2.0-pro")
    assert chat["input_tokens"] == usage["prompt_tokens"]
    assert chat["output_tokens"] == usage["completion_tokens"]
    assert chat["credits_charged"] == usage["credits_charged"]
    only_chat = client.get("/v1/usage/events", params={**window, "type": "chat"}, headers=headers).json()["data"]
    assert [row["id"] for row in only_chat] == [completion["id"]]

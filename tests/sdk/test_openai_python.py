"""Acceptance: the official ``openai`` Python SDK (sync and async) against a real emulator on loopback.

Used exactly as the vendor's OpenAI drop-in guide shows (``base_url`` + the team's key, fact sheet aurous-llm-v1.md
§13): chat (plain, streamed with and without ``include_usage``, tools, ``response_format``), embeddings, models,
and the SDK's typed errors, including its own retry honouring ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mockserver.settings import Settings
from mockserver.testing import AurousMock, EmulatorThread

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.e2e

CHAT = "aurous-grow-2.0-pro"
EMBED = "aurous-embed-vision-1.0"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorThread]:
    with EmulatorThread(Settings(clock="virtual", seed=16)) as running:
        yield running


@pytest.fixture
def mock(server: EmulatorThread) -> Iterator[AurousMock]:
    team = AurousMock.fresh(server.base_url)
    yield team
    team.close()


@pytest.fixture
def client(mock: AurousMock) -> Iterator[Any]:
    with openai.OpenAI(base_url=mock.base_url + "/v1", api_key=mock.api_key, max_retries=0) as sdk:
        yield sdk


def chat_available(mock: AurousMock) -> bool:
    probe = mock.client.post("/v1/chat/completions", json={})
    return probe.status_code not in (404, 405, 501)


@pytest.fixture
def chat_client(mock: AurousMock, client: Any) -> Any:
    if not chat_available(mock):
        pytest.skip("POST /v1/chat/completions is not emulated on this branch yet (w16a builds it)")
    return client


# --- embeddings and models ------------------------------------------------------------------------------------


def test_embeddings_create_returns_the_unit_vector_the_http_api_returns(client: Any, mock: AurousMock) -> None:
    result = client.embeddings.create(model=EMBED, input="The quick brown fox")
    [row] = result.data
    assert len(row.embedding) == 2048
    assert math.isclose(math.fsum(v * v for v in row.embedding), 1.0, rel_tol=1e-9)
    raw = mock.client.post("/v1/embeddings", json={"model": EMBED, "input": "The quick brown fox"}).json()
    assert row.embedding == raw["data"][0]["embedding"]
    assert result.usage.prompt_tokens == result.usage.total_tokens == 5
    assert result.usage.model_extra["credits_charged"] == raw["usage"]["credits_charged"]  # an ignorable extra


def test_embeddings_in_parallel_with_asyncio_gather(mock: AurousMock) -> None:
    """The vendor's workaround for ``string[]``: one request per item, concurrently (§13)."""

    async def run() -> list[list[float]]:
        async with openai.AsyncOpenAI(base_url=mock.base_url + "/v1", api_key=mock.api_key) as sdk:
            texts = ["alpha", "beta", "gamma"]
            results = await asyncio.gather(*(sdk.embeddings.create(model=EMBED, input=t) for t in texts))
            return [r.data[0].embedding for r in results]

    vectors = asyncio.run(run())
    assert len({tuple(v) for v in vectors}) == 3
    assert all(len(v) == 2048 for v in vectors)


def test_models_list_and_retrieve(client: Any) -> None:
    ids = {model.id: model for model in client.models.list()}
    assert set(ids) == {CHAT, EMBED}
    assert ids[CHAT].model_extra["kind"] == "chat"
    assert client.models.retrieve("aurous-embed-vision").id == EMBED


# --- typed errors ---------------------------------------------------------------------------------------------


def test_authentication_error(mock: AurousMock) -> None:
    with openai.OpenAI(base_url=mock.base_url + "/v1", api_key="sk-not-an-aurous-key", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            sdk.models.list()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_bad_request_carries_the_vendor_code(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=EMBED, input=["alpha", "beta"])
    assert caught.value.code == "embeddings_batch_not_supported"
    assert caught.value.param == "input"
    assert caught.value.type == "invalid_request"


def test_not_found_for_an_unknown_model(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert (caught.value.code, caught.value.param) == ("resource_not_found", "model")


def test_conflict_for_a_reused_idempotency_key(client: Any) -> None:
    headers = {"Idempotency-Key": "sdk-conflict-1"}
    first = client.embeddings.with_raw_response.create(model=EMBED, input="one", extra_headers=headers)
    again = client.embeddings.with_raw_response.create(model=EMBED, input="one", extra_headers=headers)
    assert again.headers["Aurous-Idempotent-Replayed"] == "true"
    assert again.parse().data[0].embedding == first.parse().data[0].embedding
    with pytest.raises(openai.ConflictError) as caught:
        client.embeddings.create(model=EMBED, input="two", extra_headers=headers)
    assert caught.value.code == "idempotency_key_in_use"


def test_rate_limit_error_without_retries(client: Any) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.embeddings.create(model=EMBED, input="hi", extra_headers={"Aurous-Mock-Scenario": "tpm_rate_limit=2"})
    assert caught.value.code == "tpm_rate_limit_exceeded"
    assert caught.value.response.headers["Retry-After"] == "2"


def test_the_sdk_retry_honours_retry_after(mock: AurousMock) -> None:
    """One scripted 429 with ``Retry-After: 1``: the SDK waits that long, retries once, and succeeds."""
    with (
        mock.scenario("rate_limit=1", when={"operation": "createEmbedding"}),
        openai.OpenAI(base_url=mock.base_url + "/v1", api_key=mock.api_key, max_retries=2) as sdk,
    ):
        started = time.monotonic()
        result = sdk.embeddings.create(model=EMBED, input="retried")
        waited = time.monotonic() - started
    assert len(result.data[0].embedding) == 2048
    statuses = [entry["status"] for entry in mock.journal.entries(operation="createEmbedding")]
    assert sorted(statuses) == [200, 429]
    assert waited >= 1.0  # the SDK slept for Retry-After, not its own shorter backoff


# --- chat (w16a's endpoint) -----------------------------------------------------------------------------------


def test_chat_plain(chat_client: Any) -> None:
    completion = chat_client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Say hello"}], max_tokens=32
    )
    assert completion.id.startswith("cmp_")
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage.total_tokens >= usage.prompt_tokens + usage.completion_tokens
    assert usage.model_extra["credits_charged"] > 0


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_streamed(chat_client: Any, include_usage: bool) -> None:
    options = {"include_usage": True} if include_usage else None
    stream = chat_client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Tell me a short story"}],
        max_tokens=40,
        stream=True,
        stream_options=options,
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1
    usage = chunks[-1].usage
    assert usage is not None  # the vendor puts usage on the final chunk regardless of include_usage
    assert usage.completion_tokens == math.ceil(len(text) / 4)
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_helper(chat_client: Any) -> None:
    with chat_client.chat.completions.stream(
        model=CHAT, messages=[{"role": "user", "content": "Hi"}], max_tokens=2000
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop"  # the helper refuses "length", like OpenAI's
    assert final.choices[0].message.content == "".join(deltas)


def test_chat_forced_tool_call_has_valid_arguments(chat_client: Any) -> None:
    completion = chat_client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Weather in Tokyo?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str)
    assert set(arguments) <= {"city", "unit"}


def test_chat_streamed_tool_call_deltas_reassemble(chat_client: Any) -> None:
    with chat_client.chat.completions.stream(
        model=CHAT,
        messages=[{"role": "user", "content": "Weather in Tokyo?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
    ) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls
    assert call.id
    assert "city" in json.loads(call.function.arguments)


def test_chat_response_format_json_schema(chat_client: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    completion = chat_client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "A person, please"}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON}},
        max_tokens=400,
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content), PERSON)
    loose = chat_client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Any JSON"}],
        response_format={"type": "json_object"},
        max_tokens=400,
    )
    json.loads(loose.choices[0].message.content)


def test_chat_async_plain_and_streamed(mock: AurousMock) -> None:
    if not chat_available(mock):
        pytest.skip("POST /v1/chat/completions is not emulated on this branch yet (w16a builds it)")

    async def run() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=mock.base_url + "/v1", api_key=mock.api_key) as sdk:
            messages = [{"role": "user", "content": "Hello there"}]
            plain = await sdk.chat.completions.create(model=CHAT, messages=messages, max_tokens=24, temperature=0.5)
            stream = await sdk.chat.completions.create(
                model=CHAT, messages=messages, max_tokens=24, temperature=0.5, stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return plain.choices[0].message.content or "", text

    plain, streamed = asyncio.run(run())
    assert plain == streamed  # same request, same seed: the same reply whether streamed or not


def test_chat_typed_errors(chat_client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat_client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "x"}], max_tokens=99999)
    assert caught.value.code == "max_tokens_exceeds_hard_cap"
    with pytest.raises(openai.BadRequestError) as wrong:
        chat_client.chat.completions.create(model=EMBED, messages=[{"role": "user", "content": "x"}])
    assert wrong.value.code == "model_wrong_kind"


def test_sdk_talks_plain_http_only(mock: AurousMock) -> None:
    """Sanity: the SDK's base URL is the emulator's /v1 (no path rewriting, Bearer auth accepted)."""
    response = httpx.get(mock.base_url + "/v1/models", headers={"Authorization": f"Bearer {mock.api_key}"})
    assert response.status_code == 200

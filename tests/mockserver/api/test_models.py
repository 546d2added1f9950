"""``GET /v1/models`` and the convenience ``GET /v1/models/{id}`` (fact sheet aurous-llm-v1.md §7, §14.22)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import ClientFactory
from tests.helpers import assert_envelope


def test_list_models_is_the_openai_envelope_with_both_kinds(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/models", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    kinds = {row["id"]: row["kind"] for row in body["data"]}
    assert kinds == {"aurous-grow-2.0-pro": "chat", "aurous-embed-vision-1.0": "embedding"}
    for row in body["data"]:
        assert row["object"] == "model"
        assert isinstance(row["created"], int)
        assert (row["chat_pricing"] is None) != (row["embedding_pricing"] is None)
    assert "X-RateLimit-Limit" in response.headers


def test_get_model_by_id_or_alias_and_404_otherwise(client: TestClient, headers: dict[str, str]) -> None:
    row = client.get("/v1/models/aurous-embed-vision", headers=headers).json()
    assert row["id"] == "aurous-embed-vision-1.0"
    assert row["aurous_metadata"]["dimensions"] == [1024, 2048]
    assert_envelope(client.get("/v1/models/gpt-4o", headers=headers), 404, "resource_not_found")


def test_models_need_a_key(client: TestClient) -> None:
    assert_envelope(client.get("/v1/models"), 401, "missing_api_key")


def test_settings_change_the_catalogue(client_for: ClientFactory) -> None:
    client = client_for(llm_models={"aurous-grow-2.0-pro": {"default_max_output_tokens": 128, "input_rate": 80}})
    row = client.get("/v1/models/aurous-grow-2.0-pro", headers={"X-Api-Key": "al_live_" + "1" * 64}).json()
    assert row["aurous_metadata"]["default_max_output_tokens"] == 128
    assert row["chat_pricing"]["input"] == {"credits_per_M": 80}

"""Properties of embeddings for any valid input: unit vectors, determinism, estimate == charge == balance moved."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mockserver import Settings, create_app
from mockserver.core import tokens
from mockserver.core.embeddings import EmbeddingRequest, vector
from tests.conftest import new_api_key

# NUL is refused (400); a lone surrogate is no Unicode text (the request model refuses it before any vector)
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=300)
IMAGE = st.builds(
    lambda n: {"type": "image_url", "image_url": {"url": f"https://img.example.com/{n}.png"}}, st.integers(0, 50)
)
PART = st.one_of(st.builds(lambda t: {"type": "text", "text": t}, TEXT), IMAGE)
INPUT = st.one_of(TEXT, st.lists(PART, min_size=1, max_size=8))


def request(value: Any) -> EmbeddingRequest:
    return EmbeddingRequest.model_validate({"model": "aurous-embed-vision", "input": value})


@pytest.mark.slow
@given(INPUT)
def test_every_vector_is_a_deterministic_unit_vector(value: Any) -> None:
    first = vector(request(value), 2048)
    assert len(first) == 2048
    assert math.isclose(math.fsum(v * v for v in first), 1.0, rel_tol=1e-9)
    assert vector(request(value), 2048) == first


@pytest.mark.slow
@given(INPUT)
def test_estimate_equals_the_charge_and_the_balance_moves_by_it(value: Any) -> None:
    body = {"model": "aurous-embed-vision-1.0", "input": value}
    with TestClient(create_app(Settings(clock="virtual", rate_limits_enabled=False))) as client:
        headers = {"X-Api-Key": new_api_key()}
        estimate = client.post("/v1/embeddings/estimate", json=body, headers=headers).json()
        created = client.post("/v1/embeddings", json=body, headers=headers).json()
        balance = client.get("/v1/balance", headers=headers).json()
    counted = tokens.count_embedding_input(value)
    assert estimate["tokens"]["total"] == created["usage"]["prompt_tokens"] == counted.total
    assert created["usage"]["credits_charged"] == estimate["credits_estimated"]
    assert balance["credits"] == pytest.approx(1000 - estimate["credits_estimated"], abs=1e-9)
    assert balance["held_credits"] == 0

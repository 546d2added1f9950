"""The LLM catalogue: slugs and aliases, kinds, rates, rows, overrides, and the credit formulas."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mockserver.core.errors import ModelWrongKindError, ResourceNotFoundError
from mockserver.core.llm_models import LlmModels, chat_charge, chat_hold, credits, embedding_charge
from mockserver.settings import Settings


def test_resolve_accepts_ids_and_aliases() -> None:
    models = LlmModels()
    assert models.resolve("aurous-embed-vision").id == "aurous-embed-vision-1.0"
    assert models.resolve("aurous-embed-vision-1.0").native_dimension == 2048
    assert models.resolve("aurous-grow-2.0-pro", "chat").max_output_tokens_hard_cap == 8192


def test_unknown_slug_is_404_on_model() -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        LlmModels().resolve("gpt-4o")
    assert (caught.value.status, caught.value.code, caught.value.param) == (404, "resource_not_found", "model")


def test_wrong_kind_is_400_model_wrong_kind() -> None:
    with pytest.raises(ModelWrongKindError) as caught:
        LlmModels().resolve("aurous-grow-2.0-pro", "embedding")
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, "model_wrong_kind", "model")


def test_rows_carry_kind_metadata_and_one_pricing_block() -> None:
    rows = {row["id"]: row for row in (m.wire() for m in LlmModels().list())}
    chat, embed = rows["aurous-grow-2.0-pro"], rows["aurous-embed-vision-1.0"]
    assert chat["kind"] == chat["aurous_metadata"]["kind"] == "chat"
    assert chat["chat_pricing"] == {"input": {"credits_per_M": 75}, "output": {"credits_per_M": 450}}
    assert chat["embedding_pricing"] is None
    assert chat["aurous_metadata"]["hard_max_tokens"] == chat["aurous_metadata"]["max_output_tokens_hard_cap"] == 8192
    assert "tool_choice_required" in chat["aurous_metadata"]["capabilities"]
    assert embed["aurous_metadata"]["dimensions"] == [1024, 2048]
    assert embed["embedding_pricing"] == {"text": {"credits_per_M": 18.75}, "visual": {"credits_per_M": 48.75}}
    assert embed["chat_pricing"] is None


def test_vendor_examples_price_exactly() -> None:
    models = LlmModels()
    chat, embed = models.resolve("aurous-grow-2.0-pro"), models.resolve("aurous-embed-vision")
    streamed = chat_charge(chat, 12, 24)  # sheet §3.9: 0.0009 + 0.0108 = 0.0117
    assert (streamed.input, streamed.output, streamed.total) == (
        Decimal("0.0009"),
        Decimal("0.0108"),
        Decimal("0.0117"),
    )
    assert embedding_charge(embed, 5000, 2000).total == Decimal("0.19125")  # sheet §6.2
    assert embedding_charge(embed, 500, 0).total == Decimal("0.009375")  # sheet §6.3


def test_credits_round_half_up_to_six_places() -> None:
    assert credits(1, 18.75) == Decimal("0.000019")  # 0.00001875
    assert credits(0, 450) == Decimal(0)


def test_hold_pads_input_by_ten_percent_and_reserves_max_tokens() -> None:
    chat = LlmModels().resolve("aurous-grow-2.0-pro")
    assert chat_hold(chat, 100, 64) == credits(110, 75) + credits(64, 450)
    assert chat_hold(chat, 1, 1) == credits(2, 75) + credits(1, 450)  # ceil(1.1) = 2


def test_settings_override_a_row_and_refuse_unknown_slugs() -> None:
    settings = Settings(llm_models={"aurous-grow-2.0-pro": {"default_max_output_tokens": 256, "pricing_version": 9}})
    overrides = {slug: cfg.model_dump(exclude_none=True) for slug, cfg in settings.llm_models.items()}
    chat = LlmModels.configured(overrides).resolve("aurous-grow-2.0-pro")
    assert (chat.default_max_output_tokens, chat.pricing_version, chat.input_rate) == (256, 9, 75)
    with pytest.raises(ValueError, match="unknown model"):
        LlmModels.configured({"nope": {}})

"""The LLM model catalogue (``GET /v1/models``): slugs and aliases, kind, rates, limits, and the credit formulas.

Day-1 catalogue (fact sheet §7, §8.1): ``aurous-grow-2.0-pro`` (chat) and ``aurous-embed-vision-1.0``
(embedding, alias ``aurous-embed-vision``). Values the vendor does not print are the sheet's §14 defaults and can
be changed per model with the ``llm_models`` setting (:class:`~mockserver.settings.LlmModelConfig`).

Credits (sheet §8.2, §14.4, §14.5): every part is ``tokens × credits_per_M / 1e6`` rounded half-up to 6 decimals,
and a charge is the sum of its parts. Rates are *not* frozen per ``Aurous-Version``: each model carries a
``pricing_version`` (the rate card snapshot) that chat receipts echo.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from mockserver.core.errors import ModelWrongKindError, ResourceNotFoundError

Kind = Literal["chat", "embedding"]
CREDIT_PLACES = Decimal("0.000001")
HOLD_INPUT_MARGIN = Decimal("1.10")
MILLION = Decimal(1_000_000)
CREATED = 1778803200  # 2026-05-15T00:00:00Z: OpenAI's ``created`` on each row (inferred, for SDK compatibility)


@dataclass(frozen=True, slots=True)
class LlmModel:
    """One row of ``GET /v1/models``; chat fields are ``None`` on embedding models and the other way round."""

    id: str
    kind: Kind
    context_window: int
    capabilities: tuple[str, ...]
    pricing_version: int = 1
    aliases: tuple[str, ...] = ()
    owned_by: str = "aurous-labs"
    created: int = CREATED
    # chat
    default_max_output_tokens: int | None = None
    max_output_tokens_hard_cap: int | None = None
    input_rate: float | None = None  # credits per 1M tokens
    output_rate: float | None = None  # also the reasoning rate (sheet §8.1)
    # embedding
    dimensions: tuple[int, ...] | None = None
    max_input_items: int | None = None
    max_parts: int | None = None
    max_image_parts: int | None = None
    text_rate: float | None = None
    visual_rate: float | None = None

    @property
    def native_dimension(self) -> int | None:
        """The length of every vector (sheet §14.15: the largest of ``dimensions``, which is validated only)."""
        return max(self.dimensions) if self.dimensions else None

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def wire(self) -> dict[str, Any]:
        """The row as ``GET /v1/models`` shows it: ``kind`` top-level and in ``aurous_metadata`` (sheet §14.18)."""
        meta: dict[str, Any] = {
            "kind": self.kind,
            "context_window": self.context_window,
            "dimensions": list(self.dimensions) if self.dimensions else None,
            "capabilities": list(self.capabilities),
            "pricing_version": self.pricing_version,
        }
        if self.kind == "chat":
            meta["default_max_output_tokens"] = self.default_max_output_tokens
            meta["max_output_tokens_hard_cap"] = self.max_output_tokens_hard_cap
            meta["hard_max_tokens"] = self.max_output_tokens_hard_cap
        else:
            meta["max_input_items"] = self.max_input_items
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": self.owned_by,
            "kind": self.kind,
            "aurous_metadata": meta,
            "chat_pricing": _chat_pricing(self),
            "embedding_pricing": _embedding_pricing(self),
        }


def _chat_pricing(model: LlmModel) -> dict[str, Any] | None:
    if model.kind != "chat":
        return None
    return {"input": {"credits_per_M": model.input_rate}, "output": {"credits_per_M": model.output_rate}}


def _embedding_pricing(model: LlmModel) -> dict[str, Any] | None:
    if model.kind != "embedding":
        return None
    return {"text": {"credits_per_M": model.text_rate}, "visual": {"credits_per_M": model.visual_rate}}


DEFAULT_LLM_MODELS: tuple[LlmModel, ...] = (
    LlmModel(
        id="aurous-grow-2.0-pro",
        kind="chat",
        context_window=256_000,
        capabilities=(
            "multimodal_input",
            "reasoning_effort",
            "tool_choice_required",
            "tools",
            "structured_output",
            "streaming",
        ),
        pricing_version=7,
        default_max_output_tokens=4096,
        max_output_tokens_hard_cap=8192,
        input_rate=75,
        output_rate=450,
    ),
    LlmModel(
        id="aurous-embed-vision-1.0",
        kind="embedding",
        context_window=128_000,
        capabilities=("multimodal_input",),
        pricing_version=1,
        aliases=("aurous-embed-vision",),
        dimensions=(1024, 2048),
        max_input_items=100,
        max_parts=16,
        max_image_parts=8,
        text_rate=18.75,
        visual_rate=48.75,
    ),
)


def credits(tokens: int, credits_per_million: float | None) -> Decimal:
    """``tokens × rate / 1e6``, rounded half-up to 6 decimals (sheet §14.5)."""
    if not tokens or not credits_per_million:
        return Decimal(0)
    amount = Decimal(tokens) * Decimal(str(credits_per_million)) / MILLION
    return amount.quantize(CREDIT_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class ChatCharge:
    """A chat receipt: ``total`` is ``credits_charged``, the parts its ``breakdown``."""

    input: Decimal
    output: Decimal
    reasoning: Decimal

    @property
    def total(self) -> Decimal:
        return self.input + self.output + self.reasoning


@dataclass(frozen=True, slots=True)
class EmbeddingCharge:
    text: Decimal
    visual: Decimal
    video: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.text + self.visual + self.video


def chat_charge(model: LlmModel, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> ChatCharge:
    """Sheet §8.2: input at the input rate; completion and reasoning at the output rate."""
    return ChatCharge(
        input=credits(prompt_tokens, model.input_rate),
        output=credits(completion_tokens, model.output_rate),
        reasoning=credits(reasoning_tokens, model.output_rate),
    )


def chat_hold(model: LlmModel, estimated_input_tokens: int, max_tokens: int) -> Decimal:
    """Sheet §14.4: ``(ceil(est_in × 1.10) × in_rate + max_tokens × out_rate) / 1e6``, parts rounded as charges."""
    padded = math.ceil(Decimal(estimated_input_tokens) * HOLD_INPUT_MARGIN)
    return credits(padded, model.input_rate) + credits(max_tokens, model.output_rate)


def embedding_charge(model: LlmModel, text_tokens: int, image_tokens: int) -> EmbeddingCharge:
    """Sheet §8.2: text at the text rate, images at the visual rate (video parts are refused before pricing)."""
    return EmbeddingCharge(text=credits(text_tokens, model.text_rate), visual=credits(image_tokens, model.visual_rate))


class LlmModels:
    """The catalogue: lookup by slug or alias; an unknown slug is 404 ``resource_not_found`` on ``model``."""

    def __init__(self, models: tuple[LlmModel, ...] = DEFAULT_LLM_MODELS) -> None:
        self.models = models
        self._by_slug = {slug: m for m in models for slug in (m.id, *m.aliases)}

    @classmethod
    def configured(cls, overrides: Mapping[str, Mapping[str, Any]]) -> LlmModels:
        """The default catalogue with per-slug field overrides (the ``llm_models`` setting); unset fields are kept."""
        unknown = set(overrides) - {m.id for m in DEFAULT_LLM_MODELS}
        if unknown:
            raise ValueError(f"llm_models: unknown model slug(s) {sorted(unknown)}")
        models = []
        for model in DEFAULT_LLM_MODELS:
            changes = {k: v for k, v in overrides.get(model.id, {}).items() if v is not None}
            for key in ("capabilities", "aliases", "dimensions"):
                if key in changes:
                    changes[key] = tuple(changes[key])
            models.append(dataclasses.replace(model, **changes))
        return cls(tuple(models))

    def list(self) -> list[LlmModel]:
        return list(self.models)

    def find(self, slug: str) -> LlmModel | None:
        return self._by_slug.get(slug)

    def resolve(self, slug: str, kind: Kind | None = None) -> LlmModel:
        """The model a request names, by id or alias (sheet §14.16, §14.19), of ``kind`` if given.

        Unknown slug: 404 ``resource_not_found``; a model of the other kind: 400 ``model_wrong_kind`` (both ``model``).
        """
        model = self._by_slug.get(slug)
        if model is None:
            raise ResourceNotFoundError(param="model", kind="model", id=slug)
        if kind is not None and model.kind != kind:
            raise ModelWrongKindError(param="model", model=slug, kind=model.kind, expected=kind)
        return model

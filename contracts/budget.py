"""A hard cap on paid calls: estimate before every billable request, book what a 2xx actually charged."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BILLABLE",
    "CHEAPEST",
    "ESTIMATE_OPERATIONS",
    "FALLBACK_COST",
    "Budget",
    "BudgetExceeded",
    "charged",
    "chat_bound",
    "cheapest",
]

# Operations that hold or spend credits on the paid API.
BILLABLE = frozenset(
    {
        "createImage",
        "createVideo",
        "createCharacter",
        "resynthesizeCharacter",
        "regenerateCharacterRef",
        "legacyCreateGeneration",
        "legacyCreateVideoGeneration",
        "createChatCompletion",
        "createEmbedding",
    }
)
# The target's own estimate endpoint for a billable operation, when it has one.
ESTIMATE_OPERATIONS = {
    "createImage": "estimateImage",
    "legacyCreateGeneration": "estimateImage",
    "createVideo": "estimateVideo",
    "legacyCreateVideoGeneration": "estimateVideo",
    "createEmbedding": "estimateEmbedding",
}
# Upper bounds from the rate card for operations without an estimate endpoint (or when it fails):
# deliberately pessimistic, so an unknown price can only make the kit send less.
FALLBACK_COST = {
    "createImage": 8.0,
    "legacyCreateGeneration": 8.0,
    "createVideo": 40.0,
    "legacyCreateVideoGeneration": 40.0,
    "createCharacter": 10.0,
    "resynthesizeCharacter": 10.0,
    "regenerateCharacterRef": 2.0,
    "createEmbedding": 1.0,  # 128K tokens at the visual rate is ~6.3: the estimate endpoint answers first
}
# Chat has no estimate endpoint (aurous-llm-v1.md §2): an upper bound from the body, priced far above the day-1
# rates (75 / 450 credits per 1M tokens) and counting two characters per input token (the vendor's tokenizer is
# never worse than that on text), plus the whole output allowance.
CHAT_BOUND_RATE = 2000.0  # credits per 1M tokens, input or output
CHAT_DEFAULT_MAX_TOKENS = 8192

# The parameters that drive the price, pinned to their cheapest values (reference §4): one image without the
# prompt rewrite (which doubles the price); the shortest 480p video (0.5 credit/s × factor 1 × 2 s = 1 credit).
CHEAPEST: dict[str, dict[str, Any]] = {
    "createImage": {"count": 1, "enhance_prompt": False},
    "legacyCreateGeneration": {"count": 1, "enhance_prompt": False},
    "createVideo": {"duration": 2, "resolution": "480p", "enhance_prompt": False},
    "legacyCreateVideoGeneration": {"duration": 2, "resolution": "480p", "enhance_prompt": False},
    "createChatCompletion": {"max_tokens": 1},
}


def cheapest(operation_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its price-driving parameters pinned to the cheapest values that still test the property.

    Example:
        >>> cheapest("createVideo", {"video_lora_id": "seedance-1-pro", "duration": 12, "resolution": "1080p"})
        {'video_lora_id': 'seedance-1-pro', 'duration': 2, 'resolution': '480p', 'enhance_prompt': False}
    """
    return {**body, **CHEAPEST.get(operation_id, {})}


Estimator = Callable[[str, Any], "float | None"]


class BudgetExceeded(RuntimeError):
    """A billable call would cross the cap (raised before sending) or a 2xx already crossed it."""

    message = "{operation}: {cost:g} credits would bring spending to {total:g}, above the cap of {cap:g}"

    def __init__(self, operation: str, cost: float, spent: float, cap: float) -> None:
        self.operation, self.cost, self.spent, self.cap = operation, cost, spent, cap
        super().__init__(self.message.format(operation=operation, cost=cost, total=spent + cost, cap=cap))


def charged(body: Any) -> float:
    """The ``cost.amount`` of a generation, or the ``usage.credits_charged`` of a chat completion or an embedding,
    in a 2xx body; 0 when absent."""
    if isinstance(body, dict):
        cost = body.get("cost")
        if isinstance(cost, dict) and isinstance(cost.get("amount"), int | float):
            return float(cost["amount"])
        usage = body.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("credits_charged"), int | float):
            return float(usage["credits_charged"])
    return 0.0


def chat_bound(body: Any) -> float:
    """A pessimistic price of a chat completion request (see :data:`CHAT_BOUND_RATE`)."""
    if not isinstance(body, dict):
        return float("inf")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", CHAT_DEFAULT_MAX_TOKENS))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        max_tokens = CHAT_DEFAULT_MAX_TOKENS
    try:
        prompt_chars = len(json.dumps(body.get("messages"))) + len(json.dumps(body.get("tools")))
    except (TypeError, ValueError):
        return float("inf")
    return (prompt_chars / 2 + max_tokens) * CHAT_BOUND_RATE / 1e6


@dataclass
class Budget:
    """Spending cap in credits; ``None`` means unlimited (local targets only).

    Example:
        >>> budget = Budget(5, estimator=lambda operation, body: 2.0)
        >>> budget.guard("createImage", {"prompt": "a cat"})
        2.0
        >>> budget.book("createImage", {"cost": {"amount": 2}})
        >>> budget.spent
        2.0
    """

    max_credits: float | None
    estimator: Estimator | None = None
    spent: float = 0.0
    refused: list[str] = field(default_factory=list)

    def estimate(self, operation_id: str, body: Any) -> float:
        estimate = self.estimator(operation_id, body) if self.estimator is not None else None
        if estimate is None and operation_id == "createChatCompletion":
            return chat_bound(body)
        return estimate if estimate is not None else FALLBACK_COST.get(operation_id, float("inf"))

    def guard(self, operation_id: str, body: Any) -> float:
        """Before sending: the estimated cost, or ``BudgetExceeded`` when it would cross the cap."""
        if operation_id not in BILLABLE or self.max_credits is None:
            return 0.0
        cost = self.estimate(operation_id, body)
        if self.spent + cost > self.max_credits:
            self.refused.append(operation_id)
            raise BudgetExceeded(operation_id, cost, self.spent, self.max_credits)
        return cost

    def affords(self, operation_id: str, body: Any, times: int = 1) -> bool:
        """Whether ``times`` such calls fit under the cap (a suite asks before a flow that needs several)."""
        if operation_id not in BILLABLE or self.max_credits is None:
            return True
        return self.spent + times * self.estimate(operation_id, body) <= self.max_credits

    def book(self, operation_id: str, body: Any) -> None:
        """After a 2xx on a billable operation: record what it charged; raise if that crossed the cap."""
        if operation_id not in BILLABLE:
            return
        cost = charged(body)
        if self.max_credits is not None and self.spent + cost > self.max_credits:
            error = BudgetExceeded(operation_id, cost, self.spent, self.max_credits)
            self.spent += cost
            raise error
        self.spent += cost

"""The rate card, frozen per Aurous-Version, and the cost formulas (reference §4)."""

from __future__ import annotations

from typing import Any

from mockserver.core.models import Cost

RATE_CARDS: dict[str, dict[str, Any]] = {
    "2026-05-15": {
        "object": "pricing",
        "version": "2026-05-15",
        "currency": "credit",
        "description": (
            "Baseline rate card per Aurous-Version. Per-team negotiated rates may differ; "
            "the estimate endpoints return the exact amount."
        ),
        "image": {"base": 1, "enhance_prompt_multiplier": 2, "reference_image_per_image": 0},
        "video": {"base_per_second": 0.5, "resolution_factor": {"480p": 1, "720p": 1.5, "1080p": 2.5}},
    }
}


def rate_card(version: str) -> dict[str, Any]:
    return RATE_CARDS[version]


def _round(amount: float) -> float:
    return round(amount, 4)


def image_cost(version: str, *, count: int, enhance_prompt: bool) -> Cost:
    """``count × base × (enhance ? multiplier : 1)``; references and characters are free.

    Multiplying by ``count`` is inferred (reference §8.4): the vendor prices one image.
    """
    card = rate_card(version)["image"]
    base = _round(count * card["base"])
    enhance = _round(base * (card["enhance_prompt_multiplier"] - 1)) if enhance_prompt else 0
    return Cost(amount=_round(base + enhance), base=base, enhance=enhance)


def video_cost(version: str, *, resolution: str, duration: int) -> Cost:
    """``base_per_second × resolution_factor × duration``; no enhance surcharge (inferred, reference §8.4)."""
    card = rate_card(version)["video"]
    amount = _round(card["base_per_second"] * card["resolution_factor"][resolution] * duration)
    return Cost(amount=amount, base=amount, enhance=0)

"""The rate card frozen per Aurous-Version and the cost formulas (reference §2.8 GET /v1/pricing, §4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.models import Cost
from mockserver.core.pricing import image_cost, rate_card, video_cost

VERSION = "2026-05-15"
HYPOTHESIS = settings(database=None, deadline=None, max_examples=60)


def test_rate_card_is_the_documented_2026_05_15_card() -> None:
    card = rate_card(VERSION)
    assert card["object"] == "pricing"
    assert card["version"] == VERSION
    assert card["currency"] == "credit"
    assert isinstance(card["description"], str)
    assert card["image"] == {"base": 1, "enhance_prompt_multiplier": 2, "reference_image_per_image": 0}
    assert card["video"] == {"base_per_second": 0.5, "resolution_factor": {"480p": 1, "720p": 1.5, "1080p": 2.5}}


@pytest.mark.parametrize(
    ("enhance", "amount", "base", "enhance_part"),
    [(True, 2, 1, 1), (False, 1, 1, 0)],
)
def test_image_cost_documented_examples(enhance: bool, amount: float, base: float, enhance_part: float) -> None:
    cost = image_cost(VERSION, count=1, enhance_prompt=enhance)
    assert (cost.amount, cost.base, cost.enhance) == (amount, base, enhance_part)


@HYPOTHESIS
@given(count=st.integers(1, 4), enhance=st.booleans())
def test_image_cost_is_per_image_and_enhance_doubles(count: int, enhance: bool) -> None:
    cost = image_cost(VERSION, count=count, enhance_prompt=enhance)
    assert cost.base == count
    assert cost.enhance == (count if enhance else 0)
    assert cost.amount == cost.base + cost.enhance == count * (2 if enhance else 1)


@pytest.mark.parametrize(
    ("resolution", "duration", "amount"),
    [("480p", 5, 2.5), ("720p", 5, 3.75), ("1080p", 5, 6.25), ("1080p", 12, 15)],
)
def test_video_cost_documented_examples(resolution: str, duration: int, amount: float) -> None:
    cost = video_cost(VERSION, resolution=resolution, duration=duration)
    assert cost.amount == amount


@HYPOTHESIS
@given(resolution=st.sampled_from(["480p", "720p", "1080p"]), duration=st.integers(2, 12))
def test_video_cost_formula(resolution: str, duration: int) -> None:
    factor = {"480p": 1, "720p": 1.5, "1080p": 2.5}[resolution]
    cost = video_cost(VERSION, resolution=resolution, duration=duration)
    assert cost.amount == 0.5 * factor * duration
    # Reference §8.4 default: the whole amount is base, no enhance surcharge for video.
    assert (cost.base, cost.enhance) == (cost.amount, 0)


def test_video_cost_grows_with_resolution_and_duration() -> None:
    amounts = [video_cost(VERSION, resolution=r, duration=5).amount for r in ("480p", "720p", "1080p")]
    assert amounts == sorted(amounts)
    assert len(set(amounts)) == 3
    assert (
        video_cost(VERSION, resolution="720p", duration=6).amount
        > video_cost(VERSION, resolution="720p", duration=5).amount
    )


def test_cost_wire_shape() -> None:
    assert Cost(amount=2, base=1, enhance=1).wire() == {
        "amount": 2,
        "currency": "credit",
        "breakdown": {"base": 1, "enhance": 1},
    }


def test_unknown_version_has_no_rate_card() -> None:
    with pytest.raises(KeyError):
        rate_card("2030-01-01")

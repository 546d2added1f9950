"""Image size presets (both families) and the custom width/height rules (reference §2.1 size rules, §8.5)."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockserver.core.errors import MissingFieldError, ParameterInvalidCombinationError
from mockserver.core.requests import SizePreset
from mockserver.core.sizes import PRESETS, RATIOS, TIER_PRESETS, resolve_size, snap

HYPOTHESIS = settings(database=None, deadline=None, max_examples=200)


@pytest.mark.parametrize(
    ("size", "expected"),
    [("2k_1_1", (2048, 2048)), ("square", (1024, 1024)), ("hd_square", (2048, 2048)), ("4k_1_1", (4096, 4096))],
)
def test_preset_dimensions(size: str, expected: tuple[int, int]) -> None:
    assert resolve_size(size, None, None) == (*expected, size)


def test_tier_presets_cover_every_tier_and_ratio() -> None:
    ratios = ("1_1", "3_2", "2_3", "4_3", "3_4", "16_9", "9_16", "21_9")
    expected = {f"{tier}_{ratio}" for tier in ("2k", "4k") for ratio in ratios}
    assert set(TIER_PRESETS) == expected
    assert len(expected) == 16


@pytest.mark.parametrize("preset", sorted(TIER_PRESETS))
def test_tier_preset_long_side_is_tier_and_shape_follows_ratio(preset: str) -> None:
    tier, ratio_name = preset.split("_", 1)
    width, height = TIER_PRESETS[preset]
    assert max(width, height) == {"2k": 2048, "4k": 4096}[tier]
    assert width % 32 == 0
    assert height % 32 == 0
    rw, rh = RATIOS[ratio_name]
    assert (width >= height) == (rw >= rh)
    long_side, short_side = max(width, height), min(width, height)
    assert abs(short_side - long_side * min(rw, rh) / max(rw, rh)) <= 16  # the short side is snapped to 32


def test_every_accepted_preset_resolves() -> None:
    # The request schema's enum and the size table must agree, or a valid request would crash.
    assert set(get_args(SizePreset)) == set(PRESETS)


def test_no_size_defaults_to_1024_square() -> None:
    assert resolve_size(None, None, None) == (1024, 1024, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1024, 1024), (1030, 1024), (1050, 1056), (1100, 1088), (2010, 2016), (4090, 4096), (4096, 4096)],
)
def test_snap_to_nearest_multiple_of_32(value: int, expected: int) -> None:
    assert snap(value) == expected


@HYPOTHESIS
@given(st.integers(1024, 4096))
def test_snap_is_nearest_multiple_in_range(value: int) -> None:
    snapped = snap(value)
    assert snapped % 32 == 0
    assert 1024 <= snapped <= 4096
    assert abs(snapped - value) <= 16


@HYPOTHESIS
@given(st.integers(1024, 4096), st.integers(1024, 4096))
def test_custom_dimensions_are_snapped_independently(width: int, height: int) -> None:
    assert resolve_size(None, width, height) == (snap(width), snap(height), None)


@pytest.mark.parametrize(("width", "height"), [(1024, None), (None, 1024), (1024, 1024)])
def test_size_with_width_or_height_is_invalid_combination(width: int | None, height: int | None) -> None:
    with pytest.raises(ParameterInvalidCombinationError):
        resolve_size("square", width, height)


@pytest.mark.parametrize(("width", "height", "missing"), [(1024, None, "height"), (None, 1024, "width")])
def test_only_one_dimension_names_the_missing_one(width: int | None, height: int | None, missing: str) -> None:
    with pytest.raises(MissingFieldError) as raised:
        resolve_size(None, width, height)
    assert raised.value.param == missing
    assert raised.value.code == "missing_field"

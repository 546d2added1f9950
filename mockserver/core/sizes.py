"""Image size presets (both families) and the custom width/height rules (reference §2.1)."""

from __future__ import annotations

from mockserver.core.errors import MissingFieldError, ParameterInvalidCombinationError

SNAP = 32
MIN_SIDE, MAX_SIDE = 1024, 4096
DEFAULT_SIZE = (1024, 1024)

# Only `square` and `hd_square` are seen in the docs ([R] enum begins `square, landsc…`); the other
# legacy names and every legacy dimension are inferred (reference §8.5).
LEGACY_PRESETS: dict[str, tuple[int, int]] = {
    "square": (1024, 1024),
    "landscape": (1536, 1024),
    "portrait": (1024, 1536),
    "hd_square": (2048, 2048),
    "hd_landscape": (2048, 1344),
    "hd_portrait": (1344, 2048),
}

RATIOS: dict[str, tuple[int, int]] = {
    "1_1": (1, 1),
    "3_2": (3, 2),
    "2_3": (2, 3),
    "4_3": (4, 3),
    "3_4": (3, 4),
    "16_9": (16, 9),
    "9_16": (9, 16),
    "21_9": (21, 9),
}
TIERS = {"2k": 2048, "4k": 4096}


def snap(value: int) -> int:
    """Nearest multiple of 32 (halves round up), kept within [1024, 4096]."""
    snapped = ((value + SNAP // 2) // SNAP) * SNAP
    return max(MIN_SIDE, min(MAX_SIDE, snapped))


def _tier_size(long_side: int, ratio: tuple[int, int]) -> tuple[int, int]:
    """The long side is the tier (2048 for 2k, documented for 2k_1_1); the short side follows the ratio."""
    w, h = ratio
    if w >= h:
        return long_side, ((long_side * h // w + SNAP // 2) // SNAP) * SNAP
    return ((long_side * w // h + SNAP // 2) // SNAP) * SNAP, long_side


TIER_PRESETS: dict[str, tuple[int, int]] = {
    f"{tier}_{ratio}": _tier_size(side, RATIOS[ratio]) for tier, side in TIERS.items() for ratio in RATIOS
}
PRESETS: dict[str, tuple[int, int]] = {**LEGACY_PRESETS, **TIER_PRESETS}


def resolve_size(size: str | None, width: int | None, height: int | None) -> tuple[int, int, str | None]:
    """``(width, height, size_preset)`` for a request; raises on the documented combination errors."""
    if size is not None and (width is not None or height is not None):
        second = "width" if width is not None else "height"
        raise ParameterInvalidCombinationError(param="size", first="size", second=second)
    if size is not None:
        w, h = PRESETS[size]
        return w, h, size
    if width is None and height is None:
        w, h = DEFAULT_SIZE
        return w, h, None
    if width is None:
        raise MissingFieldError("width is required when height is set.", param="width")
    if height is None:
        raise MissingFieldError("height is required when width is set.", param="height")
    return snap(width), snap(height), None

"""In-process emulators for the kit's tests: virtual clock, no rate limits, webhooks recorded instead of sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette

from mockserver import Settings, create_app
from mockserver.clock import VirtualClock
from mockserver.webhooks import RecordingSender

START = datetime(2026, 6, 1, 12, tzinfo=UTC)


def emulator(sender: RecordingSender | None = None, **settings: Any) -> Starlette:
    """An emulator app; ``settings`` override the defaults (e.g. ``image_processing_seconds=0``)."""
    return create_app(
        Settings(**{"clock": "virtual", "rate_limits_enabled": False, "seed": 7, **settings}),
        clock=VirtualClock(START),
        sender=sender or RecordingSender(),  # fuzzed webhook URLs must never be called for real
    )

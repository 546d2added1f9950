"""The kit's pytest entry (``pytest11``): options, the ``real_api`` marker and the target fixtures.

``--aurous-target URL`` points tests at a target; ``--aurous-api-key KEY`` (or ``AUROUS_API_KEY``, read when the
fixture runs) authenticates; ``--aurous-profile live-safe|full`` (default: ``full`` on loopback, ``live-safe``
elsewhere) decides whether the lifecycle suite may create generations. Tests marked ``real_api`` are skipped
unless ``--aurous-target`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from contracts.lifecycle import is_loopback, run_lifecycle

__all__ = ["AurousTarget"]

PROFILES = ("live-safe", "full")


@dataclass(frozen=True)
class AurousTarget:
    """The target given on the command line."""

    base_url: str
    api_key: str
    profile: str
    is_live: bool


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aurous-contracts", "Aurous contract-test kit")
    group.addoption("--aurous-target", default=None, metavar="URL", help="base URL of the Aurous API target to check")
    group.addoption("--aurous-api-key", default=None, metavar="KEY", help="API key for the target (or AUROUS_API_KEY)")
    group.addoption(
        "--aurous-profile",
        default=None,
        choices=PROFILES,
        help="live-safe: reads only, no creates (default beyond loopback); full: the whole lifecycle",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_api: tests against the live Aurous API; skipped unless --aurous-target is given"
    )


@pytest.fixture
def aurous_target(request: pytest.FixtureRequest) -> AurousTarget:
    """The ``--aurous-target``; skips the test when none is given."""
    url = request.config.getoption("--aurous-target")
    if not url:
        pytest.skip("no --aurous-target given")
    key = request.config.getoption("--aurous-api-key") or os.environ.get("AUROUS_API_KEY", "")
    live = not is_loopback(url)
    profile = request.config.getoption("--aurous-profile") or ("live-safe" if live else "full")
    return AurousTarget(base_url=url.rstrip("/"), api_key=key, profile=profile, is_live=live)


@pytest.fixture
def aurous_lifecycle(aurous_target: AurousTarget) -> Callable[..., None]:
    """Run the lifecycle suite on the target (``live-safe``: no creates); keywords go to ``run_lifecycle``."""

    def run(**kwargs: Any) -> None:
        if aurous_target.profile == "live-safe":
            kwargs.setdefault("max_creates", 0)
        run_lifecycle(aurous_target.base_url, aurous_target.api_key, **kwargs)

    return run

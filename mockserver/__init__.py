"""aurous-mock: a protocol-faithful, stateful emulator of the Aurous Labs public API v1."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mockserver._version import __version__

if TYPE_CHECKING:
    from mockserver.app import create_app
    from mockserver.clock import SystemClock, VirtualClock
    from mockserver.settings import Settings, load_settings
    from mockserver.store import InMemoryStore, Store

__all__ = [
    # building an emulator
    "Settings",
    "create_app",
    "load_settings",
    # collaborators you may inject
    "InMemoryStore",
    "Store",
    "SystemClock",
    "VirtualClock",
    # metadata
    "__version__",
]

# Imported on first use: every submodule import (the pytest plugin's, the CLI's) passes through this package,
# and the whole app behind ``create_app`` is most of the emulator's start-up.
_LAZY = {
    "create_app": "mockserver.app",
    "Settings": "mockserver.settings",
    "load_settings": "mockserver.settings",
    "InMemoryStore": "mockserver.store",
    "Store": "mockserver.store",
    "SystemClock": "mockserver.clock",
    "VirtualClock": "mockserver.clock",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mockserver' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

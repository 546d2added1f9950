"""aurous-mock: a protocol-faithful, stateful emulator of the Aurous Labs public API v1."""

from __future__ import annotations

from mockserver._version import __version__
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

"""``mockserver.__all__`` is the short, documented public surface, and every name in it resolves."""

from __future__ import annotations

import re

import mockserver
from mockserver._version import __version__

PUBLIC = [
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


def test_public_api_all_is_exactly_the_documented_list() -> None:
    assert mockserver.__all__ == PUBLIC


def test_public_api_every_name_resolves() -> None:
    for name in mockserver.__all__:
        assert getattr(mockserver, name) is not None, name


def test_public_api_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from mockserver import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC)


def test_public_api_names_come_from_their_modules() -> None:
    from mockserver.app import create_app
    from mockserver.clock import SystemClock, VirtualClock
    from mockserver.settings import Settings, load_settings
    from mockserver.store import InMemoryStore, Store

    assert mockserver.create_app is create_app
    assert mockserver.Settings is Settings
    assert mockserver.load_settings is load_settings
    assert mockserver.InMemoryStore is InMemoryStore
    assert mockserver.Store is Store
    assert mockserver.SystemClock is SystemClock
    assert mockserver.VirtualClock is VirtualClock


def test_public_api_version_is_pep440_like() -> None:
    assert mockserver.__version__ == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[.-]?\w+)?", __version__)

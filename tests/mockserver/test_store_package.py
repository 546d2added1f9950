"""The ``mockserver.store`` package: its door keeps every name, and its modules import one way (no cycle)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mockserver.store
from mockserver.store import memory, protocol

PACKAGE = Path(mockserver.store.__file__).parent
# module → the modules of ``mockserver`` it may import (at any depth of its body)
ALLOWED = {
    "protocol": set(),
    "_redis_lua": set(),
    "_pickle": set(),
    "memory": {"mockserver.store.protocol"},
    "sqlite": {"mockserver.store.protocol", "mockserver.store._pickle"},
    "redis": {"mockserver.store.protocol", "mockserver.store._redis_lua", "mockserver.store._pickle"},
    "__init__": {
        "mockserver.store.protocol",
        "mockserver.store.memory",
        "mockserver.store.sqlite",
        "mockserver.store.redis",
    },
}


def _ours(path: Path) -> set[str]:
    """Every ``mockserver`` module ``path`` imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mockserver"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mockserver")}
    return found


def test_store_package_modules_import_one_way_only():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == set(ALLOWED)
    for name in modules:
        assert _ours(PACKAGE / f"{name}.py") <= ALLOWED[name], name


def test_store_package_door_exports_every_name_the_old_module_had():
    for name in (
        "SYSTEM",
        "MEMORY",
        "BAD_URL",
        "CANNOT_OPEN",
        "Records",
        "Store",
        "InMemoryStore",
        "StoreOpenError",
        "StoreUrl",
        "parse_store_url",
        "open_store",
    ):
        assert hasattr(mockserver.store, name), name
    assert mockserver.store.InMemoryStore is memory.InMemoryStore
    assert mockserver.store.Store is protocol.Store
    assert mockserver.store.SYSTEM == protocol.SYSTEM == "_system"


def test_store_package_door_does_not_import_the_shared_backends():
    code = "import sys, mockserver.store; print(sorted(m for m in sys.modules if m.startswith('mockserver.store')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['mockserver.store', 'mockserver.store.memory', 'mockserver.store.protocol']"

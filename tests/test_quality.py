"""The code stays lint-clean, formatted and type-checks strictly (ruff and mypy run as part of the suite), and the
domain imports only what ARCHITECTURE.md lets it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_reports_no_findings():
    result = _run("ruff", "check", "mockserver", "contracts", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_has_nothing_to_change():
    result = _run("ruff", "format", "--check", ".")  # the Python blocks of the Markdown pages included
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_passes_on_packages():
    result = _run("mypy", "mockserver", "contracts")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_passes_on_the_benchmark_scripts():
    result = _run("mypy", "bench")  # scripts importing each other by name: a run of their own
    assert result.returncode == 0, result.stdout + result.stderr


# --- the domain's imports ---------------------------------------------------------------------------

CORE = ROOT / "mockserver" / "core"
# ``core`` may import itself and these leaves of ours (ARCHITECTURE.md); Pillow and PyAV reach it only through
# ``core/ports.py``, implemented by ``mockserver.media`` and wired in by ``create_app``.
CORE_MAY_IMPORT = (
    "mockserver.core",
    "mockserver.store",
    "mockserver.clock",
    "mockserver.ids",
    "mockserver.settings",
    "mockserver._version",
)
CORE_MUST_NOT_IMPORT = ("PIL", "av", "starlette", "httpx", "uvicorn", "contracts")


def _imports(source: str, module: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, at any depth (functions, ``TYPE_CHECKING`` blocks)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                base = module.rsplit(".", node.level)[0]
                found.append((node.lineno, f"{base}.{node.module}" if node.module else base))
            else:
                found.append((node.lineno, str(node.module)))
    return found


def _domain_violations(source: str, module: str) -> list[str]:
    def within(name: str, roots: tuple[str, ...]) -> bool:
        return any(name == root or name.startswith(f"{root}.") for root in roots)

    bad = []
    for line, name in _imports(source, module):
        ours = within(name, ("mockserver",))
        if within(name, CORE_MUST_NOT_IMPORT) or (ours and not within(name, CORE_MAY_IMPORT)):
            bad.append(f"{module}:{line} imports {name}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            bad.append(f"{module}:{node.lineno} reads os.{node.attr}")
    return bad


def test_domain_imports_no_media_library_framework_or_upper_layer():
    violations = []
    for path in sorted(CORE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        violations += _domain_violations(path.read_text(encoding="utf-8"), module)
    assert violations == []


@pytest.mark.parametrize(
    ("source", "offence"),
    [
        ("from mockserver.media import inspect_image", "imports mockserver.media"),
        ("def f():\n    from PIL import Image", "imports PIL"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import av", "imports av"),
        ("from ..api import pipeline", "imports mockserver.api"),
        ("from .. import media", "imports mockserver"),
        ("import starlette.requests", "imports starlette.requests"),
        ("import os\nkey = os.environ['X']", "reads os.environ"),
    ],
)
def test_domain_import_rule_catches_each_kind_of_offence(source, offence):
    [violation] = _domain_violations(source, "mockserver.core.example")
    assert violation.endswith(offence)


def test_domain_import_rule_allows_its_leaves():
    source = "from mockserver.store import Store\nfrom mockserver.core.ports import MediaFiles\nfrom . import errors"
    assert _domain_violations(source, "mockserver.core.example") == []

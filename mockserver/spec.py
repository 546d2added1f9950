"""Locates and loads ``openapi.yaml``, the single source of truth for the public surface, and the control plane's."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

CONTROL_SPEC = "control-openapi.yaml"
_CANDIDATES = (
    Path(__file__).resolve().parent / "openapi.yaml",  # inside an installed wheel
    Path(__file__).resolve().parent.parent / "openapi.yaml",  # a source checkout / editable install
)


def spec_path(name: str = "openapi.yaml") -> Path:
    """``openapi.yaml`` (or ``control-openapi.yaml``, the control plane's) in a wheel or a source checkout."""
    for candidate in _CANDIDATES:
        if candidate.with_name(name).is_file():
            return candidate.with_name(name)
    raise FileNotFoundError(f"{name} is missing from the aurous-mock installation")


@functools.cache
def spec_text() -> str:
    return spec_path().read_text(encoding="utf-8")


@functools.cache
def control_spec_text() -> str:
    return spec_path(CONTROL_SPEC).read_text(encoding="utf-8")


@functools.cache
def spec_document() -> dict[str, Any]:
    import yaml  # on first use: PyYAML is ~30 ms of start-up, and a run that never reads the spec needs none

    document: dict[str, Any] = yaml.safe_load(spec_text())
    return document


def operation_ids() -> dict[str, tuple[str, str]]:
    """operationId → (method, path) for every operation in the spec."""
    found: dict[str, tuple[str, str]] = {}
    for path, item in spec_document().get("paths", {}).items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                found[op["operationId"]] = (method.upper(), path)
    return found

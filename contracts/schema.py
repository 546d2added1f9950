"""Loads ``openapi.yaml`` and binds it to a Target, so Schemathesis calls the right place."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import schemathesis
import yaml
from schemathesis.specs.openapi.schemas import OpenApiSchema

from contracts.targets import Target

__all__ = ["load_schema", "spec_document", "spec_path"]

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (
    _HERE / "openapi.yaml",  # a wheel that force-includes it next to the kit
    _HERE.parent / "openapi.yaml",  # a source checkout / editable install
    # The wheel force-includes it under mockserver/ (pyproject.toml): read the file, never import the package.
    _HERE.parent / "mockserver" / "openapi.yaml",
)


def spec_path() -> Path:
    for candidate in _CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("openapi.yaml is missing from the aurous-mock installation")


@functools.cache
def _spec_text() -> str:
    return spec_path().read_text(encoding="utf-8")


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: the same document, ~10x faster


def spec_document() -> dict[str, Any]:
    """A fresh copy of the parsed spec (Schemathesis may annotate what it is given)."""
    document: dict[str, Any] = yaml.load(_spec_text(), Loader=_LOADER)  # a safe loader (C or Python)
    return document


def load_schema(target: Target) -> OpenApiSchema:
    """The spec as a Schemathesis schema, bound to ``target`` (ASGI app in-process, else its base URL)."""
    schema = schemathesis.openapi.from_dict(spec_document())
    if target.in_process:
        schema.app = target.app
    else:
        schema.config.update(base_url=target.base_url)
    schema.config.generation.update(with_security_parameters=False)
    return schema

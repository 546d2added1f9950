"""What openapi.yaml's ``webhooks:`` section says a delivery looks like: its headers and its body schema.

Each entry (``image.completed`` …, ``generationCallback``) is a POST the target sends; its header parameters say
which headers must be present, its request body schema what the JSON must be. Schemas are validated with
``jsonschema_rs`` with the spec's ``components`` embedded, so their ``$ref`` s resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

__all__ = ["Problem", "WebhookSpec", "json_path"]

PAYLOAD_VIOLATION = "WebhookPayloadSchemaViolation"
HEADER_MISSING = "WebhookHeaderMissing"
HEADER_INVALID = "WebhookHeaderInvalid"
MAX_ERRORS = 10  # per delivery: a wholly wrong body would otherwise list every field


@dataclass(frozen=True)
class Problem:
    """One way a delivery breaks its ``webhooks:`` entry (becomes a finding named ``failure``)."""

    failure: str
    title: str
    message: str
    expected: str | None = None
    actual: str | None = None


def json_path(parts: Any) -> str:
    """``["data", "outputs", 0]`` → ``$.data.outputs[0]``.

    Example:
        >>> json_path(["data", "output_urls", 0])
        '$.data.output_urls[0]'
    """
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


class WebhookSpec:
    """The ``webhooks:`` entries of one parsed openapi.yaml."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.entries: dict[str, Any] = dict(document.get("webhooks") or {})
        self.components: dict[str, Any] = dict(document.get("components") or {})
        self._validators: dict[str, Any] = {}

    def known(self, name: str) -> bool:
        return name in self.entries

    def _operation(self, name: str) -> dict[str, Any]:
        operation: dict[str, Any] = self.entries[name].get("post", {})
        return operation

    def _resolve(self, node: Any) -> Any:
        reference = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(reference, str) or not reference.startswith("#/components/"):
            return node
        resolved: Any = self.components
        for part in reference.removeprefix("#/components/").split("/"):
            resolved = resolved.get(part, {}) if isinstance(resolved, dict) else {}
        return self._resolve(resolved)

    def headers(self, name: str) -> list[dict[str, Any]]:
        """The entry's header parameters, ``$ref`` s resolved."""
        parameters = (self._resolve(node) for node in self._operation(name).get("parameters", []))
        return [
            parameter for parameter in parameters if isinstance(parameter, dict) and parameter.get("in") == "header"
        ]

    def requires(self, name: str, header: str) -> bool:
        return any(p.get("name", "").lower() == header.lower() and p.get("required") for p in self.headers(name))

    def _validator(self, name: str) -> Any:
        if name not in self._validators:
            content = self._operation(name).get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            valid = isinstance(schema, dict)
            self._validators[name] = (
                jsonschema_rs.validator_for({**schema, "components": self.components}) if valid else None
            )
        return self._validators[name]

    def header_problems(self, name: str, headers: Mapping[str, str]) -> list[Problem]:
        """Required headers that are missing, and present ones whose value breaks their schema."""
        present = {key.lower(): value for key, value in headers.items()}
        problems = []
        for parameter in self.headers(name):
            header = str(parameter.get("name", ""))
            value = present.get(header.lower())
            if value is None:
                if parameter.get("required"):
                    problems.append(
                        Problem(HEADER_MISSING, f"{name} delivery without {header}", f"no {header} header", header)
                    )
                continue
            schema = parameter.get("schema")
            if isinstance(schema, dict) and not jsonschema_rs.validator_for(schema).is_valid(value):
                title = f"{name} delivery has an invalid {header}"
                problems.append(Problem(HEADER_INVALID, title, f"{header}: {value}", str(schema), value))
        return problems

    def body_problems(self, name: str, payload: Any) -> list[Problem]:
        """The body against the entry's schema; an unknown event type is a problem of its own."""
        if not self.known(name):
            title = f"event type {name} is not in the webhooks section"
            return [Problem(PAYLOAD_VIOLATION, title, title, f"one of {', '.join(self.entries)}", name)]
        if payload is None:
            return [Problem(PAYLOAD_VIOLATION, f"{name} payload is not JSON", "the body is not JSON", "JSON", None)]
        validator = self._validator(name)
        if validator is None:
            return []
        problems = []
        for error in list(validator.iter_errors(payload))[:MAX_ERRORS]:
            path = json_path(error.instance_path)
            problems.append(
                Problem(
                    PAYLOAD_VIOLATION,
                    f"{name} payload violates the webhooks schema at {path}",
                    f"{name} at {path}: {error.message}",
                    expected="/".join(str(part) for part in error.schema_path),
                    actual=repr(error.instance)[:300],
                )
            )
        return problems

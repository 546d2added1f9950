"""What two conformant targets must agree on: a response reduced to its status, body shape and conventional headers
(:class:`Exchange`), the run's :class:`Trace` of them (compared by :mod:`contracts.differential`), and the helpers
that read a response from httpx, Starlette's TestClient or Schemathesis alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CONVENTIONAL_HEADERS", "Exchange", "Trace", "exchange", "header", "json_of", "parsed", "shape"]

# Response headers whose presence is part of the contract (compared by the differential mode).
CONVENTIONAL_HEADERS = (
    "aurous-request-id",
    "aurous-version",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "aurous-idempotent-replayed",
    "location",
)
# Body keys whose string value is part of the contract (enums and codes); every other string is just "string".
VALUE_KEYS = frozenset(
    {"object", "status", "code", "type", "media_type", "currency", "dispatch", "event", "pose", "param", "purpose"}
)


def shape(value: Any, key: str | None = None) -> Any:
    """A body with its values replaced by their JSON types, keeping enum-like values (``status``, ``code`` …).

    Two targets answering the same request must agree on the shape even when ids, instants and prices differ.

    Example:
        >>> shape({"id": "img_1", "status": "pending", "cost": {"amount": 2}, "outputs": []})
        {'cost': {'amount': 'number'}, 'id': 'string', 'outputs': [], 'status': '=pending'}
    """
    if isinstance(value, dict):
        return {name: shape(value[name], name) for name in sorted(value)}
    if isinstance(value, list):
        kinds: list[Any] = []
        for item in value:
            item_shape = shape(item)
            if item_shape not in kinds:
                kinds.append(item_shape)
        return kinds
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, str) and key in VALUE_KEYS:
        return f"={value}"
    return "string"


@dataclass(frozen=True)
class Exchange:
    """One request and what came back, reduced to what two conformant targets must agree on."""

    step: str  # a label the suite chose ("create image", "poll until terminal" …), stable across targets
    method: str
    path: str
    status: int
    body_shape: Any
    headers: tuple[str, ...]  # the conventional headers present
    curl: str
    content_type: str | None = None  # the media type, without parameters


def exchange(step: str, method: str, path: str, response: Any, curl: str) -> Exchange:
    """What a response (httpx, Starlette's TestClient, or Schemathesis') says, reduced for comparison."""
    content_type = header(response, "content-type")
    return Exchange(
        step=step,
        method=method,
        path=path,
        status=response.status_code,
        body_shape=shape(json_of(response)),
        headers=tuple(name for name in CONVENTIONAL_HEADERS if header(response, name) is not None),
        curl=curl,
        content_type=content_type.split(";")[0].strip().lower() if content_type else None,
    )


@dataclass
class Trace:
    exchanges: list[Exchange] = field(default_factory=list)


def header(response: Any, name: str) -> str | None:
    """A header of an httpx-style response (a string) or of a Schemathesis one (a list per lower-case name)."""
    value = response.headers.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def json_of(response: Any) -> Any:
    """The JSON body of a response that says it is JSON, else ``None``."""
    if "json" not in (header(response, "content-type") or ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def parsed(response: Any) -> Any:
    """The body parsed as JSON whatever the content type says, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None

"""Renders every failure in the upstream error envelope, validation failures included."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from mockserver.core.errors import (
    DOC_URL_BASE,
    DomainError,
    InvalidFormatError,
    MissingFieldError,
    ValueOutOfRangeError,
)

_RANGE_ERRORS = frozenset(
    {
        "string_too_short",
        "string_too_long",
        "too_short",
        "too_long",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
    }
)


def error_body(error: DomainError, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "type": error.type,
            "code": error.code,
            "message": error.detail,
            "param": error.param,
            "doc_url": DOC_URL_BASE + error.code,
            "request_id": request_id,
        }
    }


def error_response(error: DomainError, request_id: str) -> Response:
    return Response(
        orjson.dumps(error_body(error, request_id)),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


def param_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``("reference_image_urls", 1)`` → ``reference_image_urls[1]``; ``("a", "b")`` → ``a.b``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def from_validation_error(exc: ValidationError, *, prefix: str = "") -> DomainError:
    """The first pydantic error as the documented code: missing, out of range, or badly formatted."""
    first = exc.errors(include_url=False)[0]
    param = param_path(tuple(p for p in first["loc"] if p not in ("body",)), prefix) or None
    kind = first["type"]
    message = f"{param}: {first['msg']}" if param else first["msg"]
    if kind == "missing":
        return MissingFieldError(f"Missing required field: {param}.", param=param)
    if kind in _RANGE_ERRORS:
        return ValueOutOfRangeError(message, param=param)
    return InvalidFormatError(message, param=param)

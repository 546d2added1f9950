"""What a failed check expected and what it got, read from the Schemathesis failure's own attributes (for reports)."""

from __future__ import annotations

import json
from typing import Any

from schemathesis.core.failures import AcceptedNegativeData, Failure, MalformedJson, ServerError
from schemathesis.openapi.checks import (
    AllowHeaderMismatch,
    JsonSchemaError,
    MalformedMediaType,
    MissingContentType,
    MissingHeaderNotRejected,
    MissingHeaders,
    RejectedPositiveData,
    UndefinedContentType,
    UndefinedStatusCode,
    UnsupportedMethodResponse,
)

__all__ = ["expectation"]

_WIDTH = 200


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 1] + "…"


def _path(parts: Any) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts or ())


def _schema(failure: JsonSchemaError) -> tuple[str, str]:
    where = _path(failure.instance_path)
    keyword = failure.schema_path[-1] if failure.schema_path else None
    rule = failure.schema.get(keyword) if isinstance(keyword, str) else None
    instance = failure.instance
    if keyword == "required" and isinstance(rule, list) and isinstance(instance, dict):
        missing = [name for name in rule if name not in instance]
        extra = sorted(set(instance) - set(failure.schema.get("properties", instance)))
        also = f"; it has {', '.join(extra)}, which the schema does not define" if extra else ""
        return f"{where} with {', '.join(missing)}", f"{where} without {', '.join(missing)}{also}"
    if keyword == "additionalProperties" and isinstance(instance, dict):
        known = set(failure.schema.get("properties", {}))
        return f"{where} with only {_json(sorted(known))}", f"{where} with {_json(sorted(set(instance) - known))}"
    if isinstance(keyword, str):
        return f"{where}: {keyword} {_json(rule)}", f"{where} = {_json(instance)}"
    return f"{where} valid", f"{where} = {_json(instance)}"


def _statuses(values: Any) -> str:
    return ", ".join(map(str, values))


def expectation(failure: Failure) -> tuple[str | None, str | None]:
    """``(expected, actual)`` for the report, or ``(None, None)`` where the failure only has a message.

    Example:
        >>> failure = UndefinedStatusCode(
        ...     operation="POST /v1/images", status_code=200, defined_status_codes=["201", "400"],
        ...     allowed_status_codes=[201, 400], message="")
        >>> expectation(failure)
        ('HTTP 201, 400', 'HTTP 200')
    """
    if isinstance(failure, JsonSchemaError):
        return _schema(failure)
    if isinstance(failure, UndefinedStatusCode):
        return f"HTTP {_statuses(failure.defined_status_codes)}", f"HTTP {failure.status_code}"
    if isinstance(failure, AcceptedNegativeData):
        return f"a rejection (HTTP {_statuses(failure.expected_statuses)})", f"HTTP {failure.status_code}"
    if isinstance(failure, RejectedPositiveData):
        return f"acceptance (HTTP {_statuses(failure.allowed_statuses)})", f"HTTP {failure.status_code}"
    if isinstance(failure, MissingHeaderNotRejected):
        expected = f"HTTP {_statuses(failure.expected_statuses)} without {failure.header_name}"
        return expected, f"HTTP {failure.status_code}"
    if isinstance(failure, UnsupportedMethodResponse):
        allow = "" if failure.allow_header_present is not False else " without Allow"
        return f"HTTP 405 with Allow to {failure.method}", f"HTTP {failure.status_code}{allow}"
    if isinstance(failure, AllowHeaderMismatch):
        missing, extra = _statuses(failure.missing_methods), _statuses(failure.undocumented_methods)
        return (
            f"Allow lists the documented methods (also {missing or '—'})",
            f"Allow: {failure.allow_header} (extra {extra or '—'})",
        )
    if isinstance(failure, ServerError):
        return "a status below 500", f"HTTP {failure.status_code}"
    if isinstance(failure, MissingHeaders):
        return f"headers {', '.join(failure.missing_headers)}", "absent"
    if isinstance(failure, UndefinedContentType):
        return f"Content-Type {', '.join(failure.defined_content_types)}", f"Content-Type {failure.content_type}"
    if isinstance(failure, MissingContentType):
        return f"Content-Type {', '.join(failure.media_types)}", "no Content-Type"
    if isinstance(failure, MalformedMediaType):
        return f"a media type like {failure.defined}", str(failure.actual)
    if isinstance(failure, MalformedJson):
        return "a JSON body", f"{failure.validation_message} at line {failure.lineno} column {failure.colno}"
    wanted, got = getattr(failure, "expected", None), getattr(failure, "actual", None)  # the project checks
    return (None if wanted is None else str(wanted)), (None if got is None else str(got))

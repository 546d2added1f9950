"""Assertions shared by the whole suite: the upstream error envelope (reference §1.7)."""

from __future__ import annotations

import re
from typing import Any

import httpx

DOC_URL_BASE = "https://docs.aurous-labs.com/errors#"
REQUEST_ID = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")
ENVELOPE_FIELDS = {"type", "code", "message", "param", "doc_url", "request_id"}


def error_type_for(status: int) -> str:
    """The envelope ``type`` the newest ``/errors`` map (reference §1.7) gives an HTTP status."""
    if status in (400, 402, 409, 413, 422):
        return "invalid_request"
    if status in (401, 403):
        return "authentication"
    if status in (404, 405, 410):
        return "not_found"
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server_error"
    raise AssertionError(f"no error type is documented for HTTP {status}")


def assert_envelope(
    response: httpx.Response,
    status: int,
    code: str,
    param: str | None = None,
    *,
    message: str | None = None,
) -> dict[str, Any]:
    """Check that ``response`` is exactly the upstream error envelope; return its ``error`` object.

    ``param`` is compared exactly (``None`` by default); ``message`` only when given.
    """
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert "Aurous-Version" in response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    extra = {"status"} if "provider" in code else set()
    assert ENVELOPE_FIELDS <= set(error) <= ENVELOPE_FIELDS | extra, error
    assert error["type"] == error_type_for(status), error
    assert error["code"] == code, error
    assert error["param"] == param, error
    assert isinstance(error["message"], str)
    assert error["message"]
    if message is not None:
        assert error["message"] == message, error
    assert error["doc_url"] == DOC_URL_BASE + code
    assert REQUEST_ID.match(error["request_id"]), error["request_id"]
    assert error["request_id"] == response.headers["Aurous-Request-Id"]
    return dict(error)

"""Project checks registered with Schemathesis: request ids, the version echo, and the error envelope.

Failures (each a Schemathesis ``Failure`` named for the property it breaks)::

    Failure
     ├── MissingRequestId      no Aurous-Request-Id header
     ├── RequestIdMismatch     error.request_id differs from the Aurous-Request-Id header
     ├── MissingVersionEcho    no Aurous-Version header, or a 2xx echoes another version than was sent
     ├── ErrorEnvelopeMissing  a JSON error body that is not {"error": {"code": ..., ...}}
     └── DocUrlMismatch        error.doc_url is not https://docs.aurous-labs.com/errors#<code>
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from schemathesis.core.failures import Failure

from contracts.exchanges import header, json_of

__all__ = [
    "DOC_URL",
    "PROJECT_CHECKS",
    "DocUrlMismatch",
    "ErrorEnvelopeMissing",
    "MissingRequestId",
    "MissingVersionEcho",
    "RequestIdMismatch",
    "error_envelope_conformance",
    "request_id_conformance",
    "version_echo_conformance",
]

DOC_URL = "https://docs.aurous-labs.com/errors#"
REQUEST_ID = "aurous-request-id"
VERSION = "aurous-version"
FIRST_VERSION = "2026-05-15"  # the first (and so far only) published version, reference §1.3
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _ProjectFailure(Failure):
    code = "AU900"

    def __init__(self, *, operation: str, message: str, expected: str | None = None, actual: str | None = None) -> None:
        super().__init__(operation=operation, title=self.kind_title, message=message)
        self.expected, self.actual = expected, actual  # for the report (contracts.expectation)


class MissingRequestId(_ProjectFailure):
    code, kind_title = "AU901", "Missing Aurous-Request-Id"


class RequestIdMismatch(_ProjectFailure):
    code, kind_title = "AU902", "error.request_id differs from Aurous-Request-Id"


class MissingVersionEcho(_ProjectFailure):
    code, kind_title = "AU903", "Aurous-Version not echoed"


class ErrorEnvelopeMissing(_ProjectFailure):
    code, kind_title = "AU904", "Error body is not the error envelope"


class DocUrlMismatch(_ProjectFailure):
    code, kind_title = "AU905", "error.doc_url does not point at the error code"


@schemathesis.check
def request_id_conformance(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every response carries ``Aurous-Request-Id``; an error body repeats it as ``error.request_id``."""
    request_id = header(response, REQUEST_ID)
    if not request_id:
        raise MissingRequestId(
            operation=case.operation.label,
            message=f"status {response.status_code}, no header",
            expected="an Aurous-Request-Id header",
            actual="none",
        )
    body = json_of(response)
    if response.status_code >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        echoed = body["error"].get("request_id")
        if echoed != request_id:
            raise RequestIdMismatch(
                operation=case.operation.label,
                message=f"header {request_id!r}, error.request_id {echoed!r}",
                expected=f"error.request_id {request_id!r}",
                actual=f"error.request_id {echoed!r}",
            )
    return None


@schemathesis.check
def version_echo_conformance(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every response names the API version it applied; a 2xx never applies a version newer than was asked for.

    The applied version for a pinned date is the newest published version on or before it; any date before the
    first published version (``2026-05-15``, reference §1.3) applies that first version.
    """
    echoed = header(response, VERSION)
    if not echoed:
        raise MissingVersionEcho(
            operation=case.operation.label,
            message=f"status {response.status_code}, no header",
            expected="an Aurous-Version header",
            actual="none",
        )
    sent = response.request.headers.get("Aurous-Version") if response.request is not None else None
    if not sent or not 200 <= response.status_code < 300 or not _DATE.fullmatch(sent):
        return None
    newest_allowed = max(sent, FIRST_VERSION)
    if not _DATE.fullmatch(echoed) or echoed > newest_allowed:
        raise MissingVersionEcho(
            operation=case.operation.label,
            message=f"sent {sent!r}, echoed {echoed!r}",
            expected=f"Aurous-Version on or before {newest_allowed!r}",
            actual=f"Aurous-Version {echoed!r}",
        )
    return None


@schemathesis.check
def error_envelope_conformance(ctx: Any, response: Any, case: Any) -> bool | None:
    """JSON error bodies are ``{"error": {code, message, ...}}`` with the documented ``doc_url``."""
    body = json_of(response)
    if response.status_code < 400 or body is None:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        raise ErrorEnvelopeMissing(
            operation=case.operation.label,
            message=f"status {response.status_code}: {body!r}"[:300],
            expected='{"error": {"code": "…", "message": "…", …}}',
            actual=repr(body)[:200],
        )
    expected = DOC_URL + error["code"]
    if error.get("doc_url") != expected:
        raise DocUrlMismatch(
            operation=case.operation.label,
            message=f"expected {expected!r}, got {error.get('doc_url')!r}",
            expected=expected,
            actual=repr(error.get("doc_url")),
        )
    return None


PROJECT_CHECKS = (request_id_conformance, version_echo_conformance, error_envelope_conformance)

"""What every check of the conventions suite shares: sending through the session, the error envelope, verdicts.

A :class:`Convention` is one named check (``auth``, ``scopes`` …), an "operation" of the report: each
:meth:`Convention.verdict` is one case, and a case with problems is one finding with expected vs actual and the curl.
"""

from __future__ import annotations

import shlex
from typing import Any

from contracts.session import REDACTED_KEY, Session, SuiteRun

__all__ = ["DOC_URL", "ERROR_TYPES", "Convention", "describe", "envelope_problems", "json_object"]

DOC_URL = "https://docs.aurous-labs.com/errors#"
ERROR_TYPES = frozenset({"invalid_request", "authentication", "not_found", "rate_limit", "server_error"})  # §1.7
SHOWN_HEADERS = ("aurous-version", "aurous-idempotent-replayed", "retry-after", "x-ratelimit-remaining")


def json_object(response: Any) -> dict[str, Any]:
    """The response's JSON object, or ``{}``."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def describe(response: Any) -> str:
    """``401 authentication/missing_api_key`` (or the id / start of a success), with the convention headers present."""
    body = json_object(response)
    error = body.get("error")
    if isinstance(error, dict):
        what = f"{error.get('type')}/{error.get('code')}"
    elif isinstance(body.get("id"), str):
        what = f"id {body['id']}"
    else:
        what = response.text[:120]
    headers = [f"{name}: {response.headers[name]}" for name in SHOWN_HEADERS if name in response.headers]
    return " ".join([str(response.status_code), what, *([f"({', '.join(headers)})"] if headers else [])])


def envelope_problems(response: Any, *, status: int, code: str, error_type: str | None = None) -> list[str]:
    """How ``response`` differs from ``status`` with ``code`` in the documented envelope (§1.4, §1.7).

    ``error_type`` is asserted when the spec documents it; otherwise the type must be one of the five.
    """
    problems = [] if response.status_code == status else [f"status {response.status_code}, expected {status}"]
    error = json_object(response).get("error")
    if not isinstance(error, dict):
        return [*problems, "the body is not the error envelope {error: {type, code, …}}"]
    if error.get("code") != code:
        problems.append(f"code {error.get('code')!r}, expected {code!r}")
    if error_type is not None and error.get("type") != error_type:
        problems.append(f"type {error.get('type')!r}, expected {error_type!r}")
    elif error.get("type") not in ERROR_TYPES:
        problems.append(f"type {error.get('type')!r} is none of {', '.join(sorted(ERROR_TYPES))}")
    if error.get("doc_url") != DOC_URL + code:
        problems.append(f"doc_url {error.get('doc_url')!r}, expected {DOC_URL + code!r}")
    request_id = response.headers.get("aurous-request-id")
    if not request_id or error.get("request_id") != request_id:
        problems.append(f"error.request_id {error.get('request_id')!r} differs from Aurous-Request-Id {request_id!r}")
    return problems


class Convention:
    """One named check: its requests carry the check's name as their trace step, its verdicts count cases."""

    def __init__(self, name: str, session: Session, suite: SuiteRun) -> None:
        self.name, self.session, self.suite = name, session, suite
        self._curls: dict[int, str] = {}  # response id → the curl of its request

    def send(
        self, method: str, path: str, step: str, *, key: str | None = None, shown: str | None = None, **kwargs: Any
    ) -> Any:
        """Send through the session; ``key`` replaces the session's ``X-Api-Key``.

        The curl redacts every ``X-Api-Key``; ``shown`` is what it shows for ``key`` instead: the key itself when the
        kit made it up (so the command reproduces the case), a variable such as ``$AUROUS_READ_ONLY_KEY`` for a secret.
        """
        if key is not None:
            kwargs = {**kwargs, "auth": False, "headers": {**kwargs.get("headers", {}), "X-Api-Key": key}}
        response = self.session.request(method, path, step=f"{self.name}: {step}", **kwargs)
        curl = self.session.trace.exchanges[-1].curl
        if key is not None:
            header = (
                f'"X-Api-Key: {shown}"'
                if shown and shown.startswith("$")
                else shlex.quote(f"X-Api-Key: {shown or key}")
            )
            curl = curl.replace(f'"X-Api-Key: {REDACTED_KEY}"', header)
        self._curls[id(response)] = curl
        return response

    def verdict(self, failure: str, title: str, problems: list[str], *, expected: str, response: Any) -> bool:
        """One case: passes without problems, else one finding (``failure``, ``title``) on the last request."""
        self.suite.operation(self.name).cases += 1
        if not problems:
            return True
        self.suite.finding(
            self.name,
            failure,
            title,
            "; ".join(problems),
            expected=expected,
            actual=describe(response),
            status=response.status_code,
            curl=self._curls.get(id(response)),
        )
        return False

    def skip(self, reason: str) -> None:
        self.suite.skip(f"{self.name}: {reason}")

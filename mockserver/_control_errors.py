"""The errors of ``mockserver.testing``'s control calls: ``httpx.HTTPStatusError`` subclasses, hence the one
module of the test helpers that imports httpx when loaded (``mockserver.testing`` imports it on first use)."""

from __future__ import annotations

from typing import Any

from mockserver import _httpx

_httpx.load()
import httpx  # noqa: E402  # loaded above, without its command-line client

__all__ = ["ControlError", "ScenarioError", "reply_error"]


class ControlError(httpx.HTTPStatusError):
    """A control-plane call was refused: the envelope's ``code``, ``message`` and ``param`` (and the request id),
    shown in ``str()``. An ``httpx.HTTPStatusError``, so code catching that still works."""

    __module__ = "mockserver.testing"  # where users import it from, and where repr() and pickle look

    def __init__(self, response: httpx.Response) -> None:
        error = _envelope(response)
        self.status = response.status_code
        self.code: str | None = error.get("code")
        self.message: str = str(error.get("message") or response.reason_phrase)
        self.param: str | None = error.get("param")
        self.request_id: str | None = error.get("request_id")
        where = f" (param {self.param})" if self.param else ""
        text = f"{self.status} {self.code or response.reason_phrase}{where}: {self.message}"
        super().__init__(text, request=response.request, response=response)


class ScenarioError(ControlError):
    """``AurousMock.scenario(...)`` was refused: an unknown outcome, an outcome the operation cannot reach, a bad
    ``when`` … ``param`` names the field, e.g. ``then[1].arg``."""

    __module__ = "mockserver.testing"


def reply_error(method: str, url: str, status: int, headers: list[tuple[str, str]], body: bytes) -> ControlError:
    """The :class:`ControlError` of a refusal received without httpx (``AurousMock.fresh``'s standard-library
    call), around the same ``httpx.Response`` an httpx client would have made of it."""
    response = httpx.Response(status, headers=headers, content=body, request=httpx.Request(method, url))
    return ControlError(response)


def _envelope(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}

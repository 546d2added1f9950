"""A target that stops answering: the first request that waits out its read timeout marks the run's target stalled,
and every later request of that run fails at once (``TargetHung``) instead of waiting again (issue 14)."""

from __future__ import annotations

import httpx

__all__ = ["Stall", "StallGuard", "TargetHung"]


class TargetHung(httpx.TimeoutException):
    """The target stopped answering: one request of this run waited out its read timeout. Raised at once for every
    later request (an ``httpx.TimeoutException``, so code handling transport errors handles it)."""


class Stall:
    """Whether the target of a run stopped answering, and where: shared by every session of that target."""

    def __init__(self) -> None:
        self.why: str | None = None

    def note(self, method: str, url: str, seconds: float) -> str:
        self.why = self.why or f"{method} {url} got no answer within {seconds:g} s; nothing more was sent"
        return self.why


class StallGuard(httpx.BaseTransport):
    """The session's transport: after the first request that timed out, fail every request without sending it."""

    def __init__(self, inner: httpx.BaseTransport, stall: Stall, seconds: float) -> None:
        self.inner, self.stall, self.seconds = inner, stall, seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.stall.why is not None:
            raise TargetHung(self.stall.why, request=request)
        try:
            return self.inner.handle_request(request)
        except httpx.TimeoutException as exc:
            raise TargetHung(self.stall.note(request.method, request.url.path, self.seconds), request=request) from exc

    def close(self) -> None:
        self.inner.close()

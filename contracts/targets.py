"""Where the kit sends its requests: a live API, a running emulator, or an in-process ASGI app."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["IN_PROCESS_URL", "LOCAL_API_KEY", "Target", "has_clock_control", "not_an_aurous_api"]

IN_PROCESS_URL = "http://localhost"
# Any well-formed key gets its own team on the emulator (a run's throwaway key starts with this); a live target always
# needs the user's key.
LOCAL_API_KEY = "al_live_aurous_contracts"
PROBES = ("/v1/balance", "/v1/pricing")  # authenticated reads every Aurous API answers, with its headers
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class Target:
    """An API to check.

    Args:
        name: a label for progress lines and reports.
        base_url: the API root (``https://api.aurous-labs.com``); ignored for an in-process ``app``.
        api_key: sent as ``X-Api-Key``; loopback and in-process targets default to a throwaway key.
        app: an ASGI application called in-process, with no network.
    """

    name: str
    base_url: str = IN_PROCESS_URL
    api_key: str | None = None
    app: Any = None

    @classmethod
    def from_url(cls, url: str, api_key: str | None = None) -> Target:
        return cls(name=url, base_url=url.rstrip("/"), api_key=api_key)

    @property
    def in_process(self) -> bool:
        return self.app is not None

    @property
    def is_loopback(self) -> bool:
        host = (urlsplit(self.base_url).hostname or "").lower()
        if host in _LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def is_live(self) -> bool:
        """Anything we cannot prove is local is treated as the paid API."""
        return not self.in_process and not self.is_loopback

    def key(self) -> str | None:
        """The key to send: the user's, or a throwaway one for a local target.

        The throwaway key is new on every call (every run): the emulator gives each key a team of its own, so a run
        (or the replay of one of its findings) starts from fresh credits and rate-limit buckets, not from whatever
        the previous run left behind.
        """
        if self.api_key is not None:
            return self.api_key
        return None if self.is_live else f"{LOCAL_API_KEY}_{secrets.token_hex(8)}"


def has_clock_control(client: httpx.Client, headers: dict[str, str]) -> bool:
    """Whether the target is the emulator with its control plane: ``GET /_mock/clock`` answers 200."""
    try:
        return client.get("/_mock/clock", headers=headers).status_code == 200
    except httpx.HTTPError:
        return False


def _speaks_aurous(response: Any) -> bool:
    """An answer only an Aurous API gives: one of its headers, or a JSON object that is a resource or its error."""
    names = {name.lower() for name in response.headers}
    if any(name.startswith(("aurous-", "x-ratelimit-")) for name in names):
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    return (isinstance(error, dict) and isinstance(error.get("code"), str)) or "credits" in body or "object" in body


def not_an_aurous_api(client: Any, headers: dict[str, str]) -> str | None:
    """``None`` when the target answers like an Aurous API; otherwise why not (no answer at all, or answers that no
    Aurous API gives). Everything short of that is the suites' business: their findings carry the evidence."""
    seen = []
    for path in PROBES:
        try:
            response = client.get(path, headers=headers)
        except Exception as exc:  # refused, reset, timed out, bad TLS, malformed HTTP: all mean no Aurous API here
            return f"GET {path} got no answer: {exc!r}"[:500]
        if _speaks_aurous(response):
            return None
        kind = response.headers.get("content-type", "no content type")
        seen.append(f"GET {path}: {response.status_code} {kind} {response.text[:120]!r}")
    return "it answers like no Aurous API (no Aurous-* header, no JSON resource or error envelope): " + "; ".join(seen)

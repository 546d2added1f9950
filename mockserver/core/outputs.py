"""Signed output tokens (``?token=``): an HMAC over the generation id, the output index and an expiry.

The vendor does not document the token (reference §2.3); ours is ``<exp>.<hex>`` and re-minted on every read.
"""

from __future__ import annotations

import functools
import hashlib
import hmac


def _sign(secret: str, subject: str, index: str, expires: int) -> str:
    signer = _keyed(secret).copy()
    signer.update(f"{subject}:{index}:{expires}".encode())
    return signer.hexdigest()[:40]


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC already keyed with ``secret``: copying it skips hashing the key's pads again, a quarter of the
    cost of a token, and every poll of a finished image signs one per output (bench/README.md)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def mint(secret: str, subject: str, index: str, expires: int) -> str:
    return f"{expires}.{_sign(secret, subject, index, expires)}"


def authentic_until(secret: str, token: str, subject: str, index: str) -> int | None:
    """The expiry of a token minted for this subject and index, or None when it is not ours."""
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return None
    expires = int(expires_text)
    return expires if hmac.compare_digest(signature, _sign(secret, subject, index, expires)) else None


def verify(secret: str, token: str, subject: str, index: str, now: int) -> bool:
    """True when ``token`` was minted for this subject and index and has not expired at ``now``."""
    expires = authentic_until(secret, token, subject, index)
    return expires is not None and expires > now

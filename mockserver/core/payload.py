"""What a decoded JSON request body may hold beyond its schema (bounded nesting, no NUL), and encoded JSON to keep.

orjson parses up to 1024 levels but encodes only 254 and ``json`` recurses, so a body nested a few hundred
levels deep would parse and then crash whatever re-encodes it (the idempotency fingerprint, the journal).
No operation needs more than a few levels; :data:`MAX_DEPTH` leaves room. A NUL character (``\\u0000``)
in a string is refused like the raw byte is: upstream stores text where NUL is not representable (inferred).
"""

from __future__ import annotations

from typing import Any

from mockserver.core.errors import InvalidFormatError

MAX_DEPTH = 32
TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels is refused."
NUL = "{where} must not contain NUL characters."


def check(value: Any, raw: bytes, *, field: str | None = None) -> None:
    """Refuse ``value`` (decoded from ``raw``; the body, or the request ``field`` holding JSON) if it nests
    deeper than :data:`MAX_DEPTH` or holds a NUL."""
    if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH and b"\\u0000" not in raw:
        return  # nothing can be too deep, and no string holds a NUL: no walk (the common case)
    root: tuple[int | str, ...] = (field,) if field is not None else ()
    stack: list[tuple[Any, int, tuple[int | str, ...]]] = [(value, 1, root)]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise InvalidFormatError(NUL.format(where=_name(path)), param=_param(path))
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise InvalidFormatError(TOO_DEEP, param=field)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(key, str) and "\x00" in key:
                raise InvalidFormatError(NUL.format(where="Keys"), param=_param(path) or None)
            stack.append((child, depth + 1, (*path, key)))


def shallow(value: Any) -> bool:
    """Whether ``value`` nests at most :data:`MAX_DEPTH` levels (so that it can be encoded again)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return False
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return True


def _param(path: tuple[int | str, ...]) -> str | None:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _name(path: tuple[int | str, ...]) -> str:
    return _param(path) or "The request body"


def kept(data: bytes) -> bytes:
    """``data`` copied to an allocation of its own size, for bytes that outlive the request.

    orjson's output keeps the buffer it encoded into: measured, 10,000 one-kilobyte bodies held 78 MB as
    orjson returned them and 9 MB copied (bench/README.md). The journal, cached poll bodies, idempotency replays
    and webhook events keep encoded JSON for a long time, so each copies it once.
    """
    return bytes(memoryview(data))

"""Raw ASGI header lists: read a request's once, set several of a response's in one pass.

Starlette's ``Headers.get`` and ``MutableHeaders`` scan the list, lower-case and encode for every call; a
request reads five to eight headers and sets seven, which cost a poll 15 µs (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

RawHeaders = list[tuple[bytes, bytes]]
Scope = MutableMapping[str, Any]
# Where the pipeline leaves the header list of a response it has stamped with the request id and version
# itself (in the request's state), so that ConventionsMiddleware passes that list through without a scan.
STAMPED = "stamped_headers"
REQUEST_ID = b"aurous-request-id"
VERSION_KEY = b"aurous-version"  # core.versions.HEADER, as a request or response carries its name


def first_values(raw: Sequence[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Each header's first value by its (lower-case, as ASGI sends them) name: what ``Headers.get`` finds."""
    return dict(reversed(raw))  # later pairs overwrite: reversed, the first one stays


def request_headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's :func:`first_values`, read once (by ``ConventionsMiddleware``) and kept in its state."""
    state = scope.setdefault("state", {})
    found: dict[bytes, bytes] | None = state.get("headers")
    if found is None:
        found = state["headers"] = first_values(scope["headers"])
    return found


def text(headers: Mapping[bytes, bytes], name: bytes) -> str | None:
    """A header's value as text (latin-1, as Starlette decodes it), or None when it was not sent."""
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def assign_raw(raw: Sequence[tuple[bytes, bytes]], updates: dict[bytes, bytes]) -> RawHeaders:
    """:func:`assign` for names and values already encoded (names lower-case)."""
    if not any(name in updates for name, _ in raw):
        return [*raw, *updates.items()]  # the usual case: nothing to replace
    done: set[bytes] = set()
    headers: RawHeaders = []
    for name, value in raw:
        if name in updates:
            if name in done:
                continue
            done.add(name)
            value = updates[name]
        headers.append((name, value))
    headers.extend((name, value) for name, value in updates.items() if name not in done)
    return headers


def assign(raw: Sequence[tuple[bytes, bytes]], values: dict[str, str]) -> RawHeaders:
    """``raw`` with ``headers[name] = value`` applied for each pair: the first header of that name is replaced
    in place, later ones dropped, and names not present appended in order.

    The result is what the same assignments through ``MutableHeaders`` give, but every request sets five to
    seven headers and ``MutableHeaders`` rescans the list for each; walking it once takes a quarter less
    (bench/README.md).
    """
    return assign_raw(raw, {name.lower().encode("latin-1"): value.encode("latin-1") for name, value in values.items()})


def has(raw: Iterable[tuple[bytes, bytes]], name: bytes) -> bool:
    """Whether a header called ``name`` (lower case) is in ``raw``."""
    return any(key == name for key, _ in raw)

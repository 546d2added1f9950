"""State: the ``Store`` protocol and its backends, with :func:`open_store` (``--store URL``) at the door.

Three backends implement :class:`Store` (in :mod:`mockserver.store.protocol`): ``memory``
(:mod:`mockserver.store.memory`: live objects behind one lock, the default), ``sqlite:///path.db``
(:mod:`mockserver.store.sqlite`) and ``redis://host:port/db`` (:mod:`mockserver.store.redis`). The last two
serialize every value, so a service must ``put`` each record it changes inside the transaction that read it;
they are ``shared``: several processes may use one state. They are imported on demand: the default needs neither.

The modules import one way only: ``protocol`` imports nothing of ours, each backend imports ``protocol``, and
this module imports ``protocol`` and ``memory`` (the other two inside :func:`open_store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mockserver.store.memory import InMemoryStore
from mockserver.store.protocol import SYSTEM, Records, Store

__all__ = [
    "BAD_URL",
    "CANNOT_OPEN",
    "MEMORY",
    "SYSTEM",
    "InMemoryStore",
    "Records",
    "Store",
    "StoreOpenError",
    "StoreUrl",
    "open_store",
    "parse_store_url",
]

MEMORY = "memory"
BAD_URL = "store must be 'memory', 'sqlite:///path/to/file.db' or 'redis://host:port/db', not {url!r}."
CANNOT_OPEN = "cannot open the store {url}: {error}"


class StoreOpenError(Exception):
    """The store a URL names could not be opened (a missing directory, Redis not answering …)."""


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A parsed ``--store`` value: ``scheme`` is ``memory``, ``sqlite`` or ``redis``; ``target`` the path or URL."""

    scheme: str
    target: str


def parse_store_url(url: str) -> StoreUrl:
    """Check a ``--store`` value without opening anything (``ValueError`` with the accepted forms otherwise)."""
    if url == MEMORY:
        return StoreUrl(MEMORY, "")
    parts = urlsplit(url)
    if parts.scheme == "sqlite" and not parts.netloc and len(parts.path) > 1 and not parts.query:
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them
        return StoreUrl("sqlite", parts.path[1:])
    if parts.scheme in ("redis", "rediss", "unix") and (parts.netloc or parts.path):
        return StoreUrl("redis", url)
    raise ValueError(BAD_URL.format(url=url))


def open_store(url: str) -> Store:
    """The backend a ``--store`` URL names; the only place that knows the forms (see :func:`parse_store_url`)."""
    parsed = parse_store_url(url)
    try:
        if parsed.scheme == "sqlite":
            from mockserver.store.sqlite import SqliteStore  # imported on demand: the default needs neither

            return SqliteStore(Path(parsed.target))
        if parsed.scheme == "redis":
            from mockserver.store.redis import RedisStore

            return RedisStore(parsed.target)
    except Exception as error:  # each backend fails in its own way; the caller needs one
        raise StoreOpenError(CANNOT_OPEN.format(url=url, error=error)) from error
    return InMemoryStore()

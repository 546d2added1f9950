"""``RedisStore``: the ``Store`` in Redis (``--store redis://host:port/db``), shared by workers and replicas.

Every key starts with a prefix (``aurous-mock``; ``?prefix=name`` in the URL picks another, so several emulators
can share one Redis):

    {p}:v:{kind}          hash    key → pickled value
    {p}:w:{kind}          hash    key → owner
    {p}:o:{kind}          zset    key → seq: insertion order over every owner
    {p}:o:{kind}:{owner}  zset    key → seq: insertion order of one owner
    {p}:kinds:{owner}     set     the kinds the owner has had records of
    {p}:owners            set     every owner that has had records
    {p}:seq               string  the last seq handed out
    {p}:lock              string  the transaction lock: a random token with a TTL

A transaction is pessimistic and simple. The outermost one takes the lock (``SET NX PX``), so while it runs no
other process writes; its reads go to Redis, its writes are buffered (and read back from the buffer), and the
commit applies them all in one ``MULTI``/``EXEC`` that ``WATCH``es the lock. So a commit is all-or-nothing, an
exception or a process killed before the commit leaves nothing behind, and a commit whose lock expired (held past
``LOCK_TTL_MS``) fails instead of interleaving with another process. A write outside a transaction is a
transaction of one write; a read outside one takes no lock.

Values are pickled: pickle runs code when it loads, which is acceptable only because this emulator is the sole
writer of its keys (never share the prefix with anything else).
"""

from __future__ import annotations

import pickle
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from mockserver.store.protocol import SYSTEM, Records

DEFAULT_PREFIX = "aurous-mock"
LOCK_TTL_MS = 30_000  # a transaction that takes longer loses its lock and fails at commit
LOCK_WAIT_SECONDS = 60.0  # how long a transaction waits for another one before failing
LOST_LOCK = "The store lock expired before the transaction committed (held longer than {ttl} ms); nothing was written."
LOCK_TIMEOUT = "Waited {seconds} s for the store lock; another process holds it."
UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class StoreLockError(RuntimeError):
    """The transaction lock could not be taken in time, or expired before the commit."""


def dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def load(blob: bytes) -> Any:
    return pickle.loads(blob)  # our own keys: see the module docstring


def split_url(url: str) -> tuple[str, str]:
    """``(url for redis-py, prefix)``: the ``prefix`` query parameter is ours, the rest is redis-py's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = next((value for name, value in query if name == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


@dataclass(slots=True)
class _Write:
    owner: str | None  # None: deleted
    blob: bytes = b""
    fresh: bool = False  # deleted and put again in this transaction: it goes to the end of the order


class _Tx(threading.local):
    def __init__(self) -> None:
        self.depth = 0
        self.writes: dict[tuple[str, str], _Write] = {}


class RedisStore:
    """Records in Redis; ``shared`` by every process that uses the same server, database and prefix."""

    shared = True

    def __init__(self, url: str) -> None:
        self.url = url
        address, self.prefix = split_url(url)
        self.client = redis.Redis.from_url(address)
        self.client.ping()  # fail at start-up, not on the first request
        self._tx = _Tx()
        self._local_lock = threading.Lock()  # threads of this process queue here, not by polling Redis
        self._unlock = self.client.register_script(UNLOCK)

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _order(self, kind: str, owner: str | None) -> str:
        return self._k("o", kind) if owner is None else self._k("o", kind, owner)

    # --- transactions -----------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        tx = self._tx
        if tx.depth:
            tx.depth += 1
            try:
                yield
            finally:
                tx.depth -= 1
            return
        with self._local_lock:
            token = self._acquire()
            tx.depth, tx.writes = 1, {}
            try:
                yield
                self._commit(token, tx.writes)
            finally:
                tx.depth, tx.writes = 0, {}
                self._unlock(keys=[self._k("lock")], args=[token])

    def _acquire(self) -> bytes:
        token = secrets.token_bytes(16)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        pause = 0.0002
        while not self.client.set(self._k("lock"), token, nx=True, px=LOCK_TTL_MS):
            if time.monotonic() > deadline:
                raise StoreLockError(LOCK_TIMEOUT.format(seconds=LOCK_WAIT_SECONDS))
            time.sleep(pause)
            pause = min(pause * 2, 0.005)
        return token

    def _commit(self, token: bytes, writes: dict[tuple[str, str], _Write]) -> None:
        if not writes:
            return
        items = list(writes.items())
        info = self.client.pipeline(transaction=False)
        for (kind, key), _ in items:
            info.hget(self._k("w", kind), key)
            info.zscore(self._k("o", kind), key)
        answers = info.execute()
        placed = [answers[2 * i] is None or w.fresh for i, (_, w) in enumerate(items) if w.owner is not None]
        seq = self.client.incrby(self._k("seq"), sum(placed)) - sum(placed)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.watch(self._k("lock"))  # type: ignore[no-untyped-call]
            if pipe.get(self._k("lock")) != token:
                raise StoreLockError(LOST_LOCK.format(ttl=LOCK_TTL_MS))
            pipe.multi()
            for i, ((kind, key), write) in enumerate(items):
                stored = answers[2 * i]
                old_owner = stored.decode() if stored is not None else None
                if write.owner is None:
                    if old_owner is not None:
                        pipe.hdel(self._k("v", kind), key)
                        pipe.hdel(self._k("w", kind), key)
                        pipe.zrem(self._k("o", kind), key)
                        pipe.zrem(self._k("o", kind, old_owner), key)
                    continue
                pipe.hset(self._k("v", kind), key, write.blob)
                if old_owner is not None and old_owner == write.owner and not write.fresh:
                    continue  # same place: only the value changed
                if old_owner is not None and old_owner != write.owner:
                    pipe.zrem(self._k("o", kind, old_owner), key)
                if old_owner is None or write.fresh:
                    seq += 1
                    score = float(seq)
                else:
                    score = float(answers[2 * i + 1])
                pipe.hset(self._k("w", kind), key, write.owner)
                pipe.zadd(self._k("o", kind), {key: score})
                pipe.zadd(self._k("o", kind, write.owner), {key: score})
                pipe.sadd(self._k("kinds", write.owner), kind)
                pipe.sadd(self._k("owners"), write.owner)
            pipe.execute()  # WatchError if the lock changed hands since the check

    def _pending(self, kind: str, key: str) -> _Write | None:
        return self._tx.writes.get((kind, key)) if self._tx.depth else None

    # --- reads --------------------------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Any | None:
        write = self._pending(kind, key)
        if write is not None:
            return None if write.owner is None else load(write.blob)
        blob = self.client.hget(self._k("v", kind), key)
        return None if blob is None else load(cast(bytes, blob))

    def owner(self, kind: str, key: str) -> str | None:
        write = self._pending(kind, key)
        if write is not None:
            return write.owner
        owner = self.client.hget(self._k("w", kind), key)
        return None if owner is None else cast(bytes, owner).decode()

    def _keys(self, kind: str, owner: str | None) -> list[str]:
        return [key.decode() for key in cast(list[bytes], self.client.zrange(self._order(kind, owner), 0, -1))]

    def _merge(self, rows: dict[str, bytes | None], kind: str, owner: str | None) -> dict[str, bytes | None]:
        """``rows`` (stored, in order) as this transaction's buffered writes change them."""
        if not self._tx.depth:
            return rows
        appended: dict[str, bytes | None] = {}
        for (written_kind, key), write in self._tx.writes.items():
            if written_kind != kind:
                continue
            if write.owner is None or (owner is not None and write.owner != owner):
                rows.pop(key, None)
            elif write.fresh or key not in rows:
                rows.pop(key, None)
                appended[key] = write.blob
            else:
                rows[key] = write.blob
        rows.update(appended)
        return rows

    def _rows(self, kind: str, owner: str | None) -> dict[str, bytes | None]:
        keys = self._keys(kind, owner)
        blobs = cast(list[bytes | None], self.client.hmget(self._k("v", kind), keys)) if keys else []
        stored = {key: blob for key, blob in zip(keys, blobs, strict=True) if blob is not None}
        return self._merge(dict(stored), kind, owner)

    def values(self, kind: str, *, owner: str | None) -> list[Any]:
        return [load(blob) for blob in self._rows(kind, owner).values() if blob is not None]

    def count(self, kind: str, *, owner: str | None = None) -> int:
        if self._tx.depth and any(written == kind for written, _ in self._tx.writes):
            return len(self._merge(dict.fromkeys(self._keys(kind, owner)), kind, owner))
        return self.client.zcard(self._order(kind, owner))

    def _members(self, name: str) -> set[str]:
        return {member.decode() for member in cast(set[bytes], self.client.smembers(name))}

    def _owners(self) -> set[str]:
        pending = {w.owner for w in self._tx.writes.values() if w.owner is not None} if self._tx.depth else set()
        return self._members(self._k("owners")) | pending

    def _kinds(self, owner: str) -> list[str]:
        pending = {kind for (kind, _), w in self._tx.writes.items() if w.owner == owner} if self._tx.depth else set()
        return sorted(self._members(self._k("kinds", owner)) | pending)

    # --- writes -------------------------------------------------------------------------------------------------

    def put(self, kind: str, key: str, value: Any, *, owner: str) -> None:
        blob = dump(value)
        with self.transaction():
            writes = self._tx.writes
            previous = writes.get((kind, key))
            if previous is not None and previous.owner is None:  # deleted earlier in this transaction
                del writes[(kind, key)]
                writes[(kind, key)] = _Write(owner, blob, fresh=True)
            else:  # an update keeps its place in the buffer, hence in the order
                writes[(kind, key)] = _Write(owner, blob, fresh=previous is not None and previous.fresh)

    def delete(self, kind: str, key: str) -> bool:
        with self.transaction():
            if self.owner(kind, key) is None:
                return False
            self._tx.writes[(kind, key)] = _Write(None)
            return True

    def clear(self, *, owner: str | None = None) -> None:
        with self.transaction():
            owners = [owner] if owner is not None else sorted(self._owners() - {SYSTEM})
            for who in owners:
                for kind in self._kinds(who):
                    for key in self._merge(dict.fromkeys(self._keys(kind, who)), kind, who):
                        self._tx.writes[(kind, key)] = _Write(None)

    def snapshot(self, *, owner: str | None = None) -> Records:
        records: Records = {}
        with self.transaction():  # one consistent read (a transaction without writes commits nothing)
            owners = [owner] if owner is not None else sorted(self._owners() - {SYSTEM})
            kinds = sorted({kind for who in owners for kind in self._kinds(who)})
            for kind in kinds:
                rows = self._rows(kind, owner)
                for key, who in zip(rows, self._owners_of(kind, list(rows), owner), strict=True):
                    blob = rows[key]
                    if blob is not None and who is not None and who != SYSTEM:
                        records.setdefault(kind, {})[key] = (who, load(blob))
        return records

    def _owners_of(self, kind: str, keys: list[str], owner: str | None) -> list[str | None]:
        if owner is not None or not keys:
            return [owner] * len(keys)
        stored = cast(list[bytes | None], self.client.hmget(self._k("w", kind), keys))
        found = [None if who is None else who.decode() for who in stored]
        pending = [self._pending(kind, key) for key in keys]
        return [write.owner if write is not None else who for write, who in zip(pending, found, strict=True)]

    def restore(self, records: Records, *, owner: str | None = None) -> None:
        with self.transaction():
            self.clear(owner=owner)
            for kind, entries in records.items():
                for key, (who, value) in entries.items():
                    if who == owner or (owner is None and who != SYSTEM):
                        self.put(kind, key, value, owner=who)

    def close(self) -> None:
        self.client.close()

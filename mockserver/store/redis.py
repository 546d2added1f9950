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
    {p}:lock              string  the lease: ``holder:n`` of the process that may write (``holder:granted``: handed
                                  to it, not yet taken), with a TTL
    {p}:want:{holder}     list    the processes waiting for that holder's lease, by name, first come first
    {p}:grant:{holder}    list    wakes that process: the lease was handed to it
    {p}:ver               string  how many commits the prefix has seen
    {p}:log               list    the keys each of the last commits wrote (for the next holder's cache)

Writes need the lease, which a process keeps while nobody else asks for it. Whoever holds it is the only writer,
so it keeps the records it has read or written in a local cache, and serves reads from there, inside a transaction
or not, with no round trip. A transaction buffers its writes (reading them back) and commits them with one
``EVALSHA`` (:data:`~mockserver.store._redis_lua.COMMIT`): applied all at once or not at all, only if the lease is
still this process's and nobody else committed meanwhile; the same call renews the lease, or hands it over when
another process waits for it. Taking the lease (:data:`~mockserver.store._redis_lua.ACQUIRE`, one round trip)
also returns the keys other processes changed since this one last held it, which it drops from its cache. So a
single worker pays one round trip per transaction that writes, and none for reads; several workers pay a few more
each time the lease changes hands. A process that finds the lease taken queues by name in the holder's ``want``
list and blocks on its own ``grant`` list; the holder, once it has had the lease for ``TURN_SECONDS``, hands it to
the first in its queue (its commit does, or its keeper thread, or its next transaction), moving the rest of the
queue along: every waiting process gets its turn, first come first served, and none waits for long however busy
the others are. A thread renews the lease while it is held and hands it over when another process asks, so an idle
holder never makes others wait beyond its turn; a holder that died stops renewing, and its lease lapses after
``LEASE_MS``. A process without the lease reads straight from Redis, as a read outside a
transaction always did. A lazy transaction (``transaction(lazy=True)``) keeps its writes in ``_deferred`` until
the next commit, the hand-over or the next renewal (docs/redis-store.md says what a killed process loses then).

Values are pickled: pickle runs code when it loads, which is acceptable only because this emulator is the sole
writer of its keys (never share the prefix with anything else).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import hiredis
import redis

from mockserver.store._pickle import dump, load
from mockserver.store._redis_lua import SCRIPTS
from mockserver.store.protocol import SYSTEM, Records

DEFAULT_PREFIX = "aurous-mock"
LOCK_TTL_MS = 30_000  # a transaction that takes longer loses the lease and fails at commit
LEASE_MS = 2_000  # the lease's TTL: renewed every RENEW_SECONDS while held, so a dead holder blocks others this long
RENEW_SECONDS = 0.5
LOCK_WAIT_SECONDS = 60.0  # how long a transaction waits for another process's lease before failing
TURN_SECONDS = 0.005  # a holder others wait for lets go after this long: their wait is bounded, and a hand-over
# (two round trips and a wake-up) is paid once per turn rather than once per request
GRANT_MS = 250  # a lease granted to a waiting process is its alone this long (a grantee that left: others wait so long)
GRANT_WAIT_SECONDS = 0.05  # a waiting process asks again this often (the grant itself wakes it at once)
DEFERRED_MAX = 256  # deferred writes that make the next lazy transaction commit at once
CACHE_MAX = 20_000  # records a lease holder keeps decoded-ready (pickled) in memory; the oldest go first
LOST_LOCK = "The store lock expired before the transaction committed (held longer than {ttl} ms); nothing was written."
LOCK_TIMEOUT = "Waited {seconds} s for the store lock; another process holds it."
ABSENT = (None, None)  # a cached "no such record"


class StoreLockError(RuntimeError):
    """The transaction lock could not be taken in time, or expired before the commit."""


# Values no later change can reach: a deferred write of one is pickled at its commit, not when it is deferred (an
# id position is rewritten by every id drawn, and only the last one reaches Redis).
_ATOMIC = frozenset({str, int, float, bytes, bool, type(None)})


def _immutable(value: Any) -> bool:
    kind = type(value)
    return kind in _ATOMIC or (kind is tuple and all(type(item) in _ATOMIC for item in value))


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
    value: Any = None  # pickled at the commit, so it is stored as it is then (as the memory store would have it)
    fresh: bool = False  # deleted and put again in this transaction: it goes to the end of the order
    blob: bytes | None = None  # a deferred write's value, pickled when its lazy transaction ended

    def pickled(self) -> bytes:
        if self.owner is None:
            return b""
        return self.blob if self.blob is not None else dump(self.value)


def _merge_write(writes: dict[tuple[str, str], _Write], at: tuple[str, str], write: _Write) -> None:
    """Add ``write`` to ``writes`` as if it came after them: a put after a delete goes last (``fresh``)."""
    previous = writes.get(at)
    if previous is not None and previous.owner is None and write.owner is not None:
        del writes[at]
        write.fresh = True
    elif previous is not None and write.owner is not None:
        write.fresh = write.fresh or previous.fresh
    writes[at] = write


class _Tx(threading.local):
    def __init__(self) -> None:
        self.depth = 0
        self.lazy = False
        self.writes: dict[tuple[str, str], _Write] = {}
        self.read: set[tuple[str, str]] = set()  # cached records handed out: dropped if the transaction fails


class _Connections(threading.local):
    conn: redis.Connection | None = None


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
        self._holder = secrets.token_hex(8)  # this store's name in the lease; no ':' in it
        self._acquisitions = 0
        self._token: bytes | None = None  # the lease's value while this process holds it
        self._held_until = 0.0  # monotonic: past it, the lease may have lapsed, so reads go to Redis
        self._version = -1  # the commit count this cache reflects (-1: nothing known)
        self._cache: dict[tuple[str, str], tuple[str | None, Any]] = {}  # (kind, key) → (owner, value)
        self._scripts = {name: self.client.script_load(source) for name, source in SCRIPTS.items()}  # name → sha
        self._connections = _Connections()
        self._opened: list[redis.Connection] = []
        self._local_lock_for_list = threading.Lock()  # guards _opened
        self._tx_started = 0.0  # monotonic start of the transaction in progress (0: none)
        self._deferred: dict[tuple[str, str], _Write] = {}  # lazy transactions' writes, not yet in Redis
        self._committing = False  # a COMMIT is in flight (it may hand the lease over)
        self._keeper: threading.Thread | None = None
        self._turn_ends = 0.0  # monotonic: from then on this holder lets the lease go when another process asks
        self._asker: str | None = None  # a process the keeper saw asking for the lease, not yet handed it
        self._closed = threading.Event()

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _order(self, kind: str, owner: str | None) -> str:
        return self._k("o", kind) if owner is None else self._k("o", kind, owner)

    def _connection(self) -> redis.Connection:
        """This thread's own connection: the hot path skips the pool's checkout and return (half a call's CPU)."""
        conn = self._connections.conn
        if conn is None:
            conn = self._connections.conn = cast(redis.Connection, self.client.connection_pool.make_connection())
            with self._local_lock_for_list:
                self._opened.append(conn)
        return conn

    def _calls(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send ``commands`` together and read their answers: one round trip on this thread's connection."""
        conn = self._connection()
        try:
            # hiredis packs the same bytes as redis-py's encoder, seven times faster (a commit's blobs are most of it)
            packed = b"".join(map(hiredis.pack_command, commands))
            conn.send_packed_command([packed], check_health=False)  # type: ignore[no-untyped-call]
            return [conn.read_response() for _ in commands]
        except (redis.ConnectionError, redis.TimeoutError):
            conn.disconnect()  # type: ignore[no-untyped-call]  # the next call connects again
            raise

    def _run(self, script: str, *args: Any) -> Any:
        command = ("EVALSHA", self._scripts[script], 0, self.prefix, *args)
        try:
            return self._calls(command)[0]
        except redis.exceptions.NoScriptError:  # the server restarted or its scripts were flushed
            self._scripts[script] = self.client.script_load(SCRIPTS[script])
            return self._calls(("EVALSHA", self._scripts[script], 0, self.prefix, *args))[0]

    # --- the lease --------------------------------------------------------------------------------------------

    def _holding(self) -> bool:
        return self._token is not None and time.monotonic() < self._held_until

    def _acquire(self) -> None:
        """Take the lease (queued behind other processes, woken by the grant) and bring the cache up to date."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        grant = self._k("grant", self._holder)
        while True:
            self._acquisitions += 1
            token = f"{self._holder}:{self._acquisitions}".encode()
            sent = time.monotonic()
            answer = self._run("ACQUIRE", token, LEASE_MS, self._version, self._holder)
            if answer[0] == 1:
                break
            if sent > deadline:
                raise StoreLockError(LOCK_TIMEOUT.format(seconds=LOCK_WAIT_SECONDS))
            self.client.blpop([grant], timeout=GRANT_WAIT_SECONDS)  # queued: the holder's hand-over wakes this
        self._forget(cast(list[bytes], answer[2]))
        if int(answer[1]) != self._version:  # another process wrote: what this one deferred may clash, so it is lost
            self._deferred = {}
        self._version = int(answer[1])
        self._token, self._held_until, self._turn_ends = token, sent + LEASE_MS / 1000 * 0.8, sent + TURN_SECONDS
        if self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name="aurous-mock-redis-lease", daemon=True)
            self._keeper.start()

    def _forget(self, changes: list[bytes]) -> None:
        """Drop from the cache what other processes wrote while this one did not hold the lease."""
        if b"*" in changes:
            self._cache.clear()
            return
        for entry in changes:
            for item in entry.split(b"\x1e"):
                kind, _, key = item.decode().partition("\x1f")
                self._cache.pop((kind, key), None)

    def _drop_lease(self) -> None:
        self._token, self._held_until, self._deferred = None, 0.0, {}

    def _release(self, grantee: str = "") -> None:
        """Write what was deferred and give the lease up, to ``grantee`` or the first process waiting (under the
        local lock)."""
        if self._token is not None:
            self._flush()
            token, self._token, self._held_until = self._token, None, 0.0
            if token is not None:
                self._run("RELEASE", token, self._holder, grantee, GRANT_MS)

    def _flush(self) -> None:
        """Write what lazy transactions deferred (under the local lock, or inside this thread's transaction)."""
        if self._deferred and self._token is not None:
            self._commit({})

    def _keep(self) -> None:
        """While the lease is held: renew it, and give it up when another process asks (after this one's turn)."""
        want = self._k("want", self._holder)
        while not self._closed.is_set():
            try:
                asked = self.client.blpop([want], timeout=RENEW_SECONDS)
                if self._closed.is_set():
                    return
                if asked is not None:
                    asker = cast(list[bytes], asked)[1].decode()
                    if asker != self._holder:  # close() wakes this thread with its own name
                        self._yield_to(asker)
                elif self._token is not None:
                    self._renew()
                    if self._deferred:
                        with self._local_lock:
                            self._flush()
            except (redis.RedisError, StoreLockError):  # Redis went away, or the lease lapsed: the next commit says so
                self._closed.wait(RENEW_SECONDS)

    def _yield_to(self, asker: str) -> None:
        """Hand the lease to ``asker`` once this holder's turn is over: here if this process is idle, else at the
        start of its next transaction (the thread running transactions would keep the local lock from this one)."""
        rest = self._turn_ends - time.monotonic()
        if rest > 0:
            self._closed.wait(rest)
        self._asker = asker
        while self._asker is not None and not self._closed.is_set():
            if self._local_lock.acquire(timeout=0.001):
                try:
                    self._hand_over()
                finally:
                    self._local_lock.release()

    def _hand_over(self) -> None:
        """Give the lease to the process that asked for it, if one did (under the local lock)."""
        asker, self._asker = self._asker, None
        if asker is not None:
            self._release(asker)

    def _renew(self) -> None:
        tx_started = self._tx_started
        if tx_started and time.monotonic() - tx_started > LOCK_TTL_MS / 1000:
            return  # a transaction this long loses the lease (and fails at commit), as documented
        token, sent = self._token, time.monotonic()
        if token is not None and self._run("RENEW", token, LEASE_MS) == 1:
            if self._token == token and not self._committing:  # a commit in flight may be handing it over
                self._held_until = sent + LEASE_MS / 1000 * 0.8
        elif self._token == token:
            self._drop_lease()

    # --- transactions -----------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, lazy: bool = False) -> Iterator[None]:
        """See :meth:`Store.transaction`; a lazy one's writes wait in ``_deferred`` for the next commit (at the
        latest ``RENEW_SECONDS`` later, or when the lease is handed over), and reach Redis in it."""
        tx = self._tx
        if tx.depth:
            tx.depth += 1  # the outermost transaction decides whether the commit is lazy
            try:
                yield
            finally:
                tx.depth -= 1
            return
        with self._local_lock:
            if self._asker is not None:
                self._hand_over()
            if not self._holding():
                self._acquire()
            tx.depth, tx.writes, tx.read, tx.lazy = 1, {}, set(), lazy
            self._tx_started = time.monotonic()
            try:
                yield
                if tx.lazy and len(self._deferred) < DEFERRED_MAX:
                    self._defer(tx.writes)
                else:
                    self._commit(tx.writes)
            except BaseException:
                for stale in tx.read | tx.writes.keys():  # handed out, maybe changed in place: read them again
                    self._cache.pop(stale, None)
                raise
            finally:
                tx.depth, tx.writes, tx.read = 0, {}, set()
                self._tx_started = 0.0

    def _defer(self, writes: dict[tuple[str, str], _Write]) -> None:
        for at, write in writes.items():
            if not _immutable(write.value):
                write.blob = write.pickled()  # as it is now, whatever happens to the object later
            _merge_write(self._deferred, at, write)
            self._cache[at] = ABSENT if write.owner is None else (write.owner, write.value)

    def _commit(self, writes: dict[tuple[str, str], _Write]) -> None:
        unsent = self._deferred  # in the cache, not in Redis: Redis may not have these keys yet
        if unsent:
            merged = dict(unsent)
            for at, write in writes.items():
                _merge_write(merged, at, write)
            writes = merged
        if not writes:
            return
        may_yield = b"1" if time.monotonic() >= self._turn_ends else b"0"
        args: list[Any] = [self._token, self._version, LEASE_MS, self._holder, len(writes), may_yield, GRANT_MS]
        for at, write in writes.items():
            args += (*at, write.owner or "", write.pickled(), self._how(at, write, unsent))
        # The commit may hand the lease over: until its answer is in, other threads read from Redis, not the cache
        # (another process may write the moment the lease is its).
        sent, self._held_until, self._committing = time.monotonic(), 0.0, True
        try:
            answer = self._run("COMMIT", *args)
        except BaseException:
            self._drop_lease()  # nobody knows whether it was applied: read from Redis, take the lease again
            self._cache.clear()
            raise
        finally:
            self._committing = False
        self._deferred = {}
        if answer[0] < 0:  # lapsed (-1) or someone else committed meanwhile (-2): nothing was written
            self._drop_lease()
            self._cache.clear()
            raise StoreLockError(LOST_LOCK.format(ttl=LOCK_TTL_MS))
        self._version = int(answer[0])
        if len(self._cache) + len(writes) > CACHE_MAX:
            for stale in list(self._cache)[: CACHE_MAX // 4]:
                self._cache.pop(stale, None)
        for (kind, key), write in writes.items():
            self._cache[(kind, key)] = ABSENT if write.owner is None else (write.owner, write.value)
        if answer[1] == 1:
            self._drop_lease()  # handed over inside the commit
        else:
            self._held_until = sent + LEASE_MS / 1000 * 0.8

    def _how(self, at: tuple[str, str], write: _Write, unsent: dict[tuple[str, str], _Write]) -> bytes:
        """The commit's flag for one write: ``1`` fresh, ``u`` an update Redis has with this owner already."""
        if write.fresh:
            return b"1"
        known = self._cache.get(at) if at not in unsent else None
        return b"u" if known is not None and write.owner is not None and known[0] == write.owner else b"0"

    def _pending(self, kind: str, key: str) -> _Write | None:
        return self._tx.writes.get((kind, key)) if self._tx.depth else None

    def _stored(self, kind: str, key: str) -> tuple[str | None, Any]:
        """``(owner, value)`` as committed: from the cache while the lease is held, else from Redis.

        The cache hands out the same object until the record changes, as the memory store does (so what is
        derived from a record, such as a poll's body, can be kept with it); a transaction that fails drops what
        it read, in case it was changed in place.
        """
        holding, version = self._holding(), self._version
        if holding:
            found = self._cache.get((kind, key))
            if found is not None:
                if self._tx.depth:
                    self._tx.read.add((kind, key))
                return found
        deferred = self._deferred.get((kind, key))
        if deferred is not None:  # not in Redis yet (and no longer cached)
            return ABSENT if deferred.owner is None else (deferred.owner, load(deferred.pickled()))
        owner, blob = self._calls(("HGET", self._k("w", kind), key), ("HGET", self._k("v", kind), key))
        entry = ABSENT if owner is None or blob is None else (owner.decode(), load(blob))
        if holding and self._holding() and self._version == version:  # no commit of ours raced this read
            self._cache[(kind, key)] = entry
        return entry

    # --- reads --------------------------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Any | None:
        tx = self._tx
        if tx.depth:
            write = tx.writes.get((kind, key))
            if write is not None:
                return write.value
        elif self._token is not None and time.monotonic() < self._held_until:  # the hot path: a cached read
            found = self._cache.get((kind, key))
            if found is not None:
                return found[1]
        return self._stored(kind, key)[1]

    def owner(self, kind: str, key: str) -> str | None:
        write = self._pending(kind, key)
        if write is not None:
            return write.owner
        return self._stored(kind, key)[0]

    def _written(self) -> None:
        """Deferred writes into Redis first, for a read that goes through Redis's indexes (lists, counts)."""
        if not self._deferred:
            return
        if self._tx.depth:  # this thread holds the local lock already
            self._flush()
            return
        with self._local_lock:
            self._flush()

    def _keys(self, kind: str, owner: str | None) -> list[str]:
        self._written()
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
                appended[key] = dump(write.value)
            else:
                rows[key] = dump(write.value)
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
        self._written()
        return self.client.zcard(self._order(kind, owner))

    def _members(self, name: str) -> set[str]:
        self._written()
        return {member.decode() for member in cast(set[bytes], self.client.smembers(name))}

    def _owners(self) -> set[str]:
        pending = {w.owner for w in self._tx.writes.values() if w.owner is not None} if self._tx.depth else set()
        return self._members(self._k("owners")) | pending

    def _kinds(self, owner: str) -> list[str]:
        pending = {kind for (kind, _), w in self._tx.writes.items() if w.owner == owner} if self._tx.depth else set()
        return sorted(self._members(self._k("kinds", owner)) | pending)

    # --- writes -------------------------------------------------------------------------------------------------

    def put(self, kind: str, key: str, value: Any, *, owner: str) -> None:
        if not self._tx.depth:  # a write of its own: a transaction of one write
            with self.transaction():
                self._buffer(kind, key, value, owner)
            return
        self._buffer(kind, key, value, owner)  # most puts: inside a transaction, which needs no new frame

    def _buffer(self, kind: str, key: str, value: Any, owner: str) -> None:
        writes = self._tx.writes
        previous = writes.get((kind, key))
        if previous is not None and previous.owner is None:  # deleted earlier in this transaction
            del writes[(kind, key)]
            writes[(kind, key)] = _Write(owner, value, fresh=True)
        else:  # an update keeps its place in the buffer, hence in the order
            writes[(kind, key)] = _Write(owner, value, fresh=previous is not None and previous.fresh)

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
        records = load(dump(records))  # a copy: the snapshot stays as it was, whatever happens to the records
        with self.transaction():
            self.clear(owner=owner)
            for kind, entries in records.items():
                for key, (who, value) in entries.items():
                    if who == owner or (owner is None and who != SYSTEM):
                        self.put(kind, key, value, owner=who)

    def close(self) -> None:
        """Give the lease up (others need not wait for it to lapse), stop its keeper, close the connections."""
        self._closed.set()
        try:
            with self._local_lock:
                self._release()
            self.client.rpush(self._k("want", self._holder), self._holder)  # wakes the keeper now (itself: no grant)
            self.client.delete(self._k("want", self._holder))
        except (redis.RedisError, StoreLockError):
            pass  # Redis is gone, or the lease already lapsed: it lapses by itself
        if self._keeper is not None:
            self._keeper.join(timeout=2 * RENEW_SECONDS)
        with self._local_lock_for_list:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.disconnect()  # type: ignore[no-untyped-call]
        self.client.close()

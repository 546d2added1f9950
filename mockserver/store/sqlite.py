"""``SqliteStore``: the ``Store`` in one SQLite file (``--store sqlite:///state.db``), which survives restarts.

One table holds every record: ``(kind, key)`` is unique, ``owner`` indexes per-team listing and reset, and
``seq`` (the rowid, kept by an update) gives the insertion order ``values`` promises. The file is in WAL mode,
so readers never wait for a writer; a transaction is ``BEGIN IMMEDIATE`` (the one writer, across every process
that opened the file), re-entrant within a thread. A process killed mid-transaction leaves nothing of it behind.
Writers queue on an ``flock`` of ``<file>.lock`` first, so a waiting process wakes the moment the lock is free
instead of in SQLite's busy handler, which sleeps up to 100 ms between tries.

Values are pickled. Pickle runs code when it loads, which is acceptable here and only here: the file is written
by this emulator alone and is as trusted as its code (never point ``--store`` at a file someone else wrote).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mockserver.store._pickle import dump, load
from mockserver.store.protocol import SYSTEM, Records

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

BUSY_TIMEOUT_MS = 60_000  # how long a writer waits for another process's transaction before failing
SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    owner TEXT NOT NULL,
    value BLOB NOT NULL,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS records_by_kind ON records (kind, seq);
CREATE INDEX IF NOT EXISTS records_by_owner ON records (owner, kind, seq);
"""
UPSERT = (
    "INSERT INTO records (kind, key, owner, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET owner = excluded.owner, value = excluded.value"
)


class _Local(threading.local):
    connection: sqlite3.Connection | None = None
    depth = 0


class SqliteStore:
    """Records in a SQLite file, one connection per thread; ``shared`` by every process that opens the file."""

    shared = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._local = _Local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()  # guards _connections
        # One writer per process at a time: threads queue here, processes on the lock file.
        self._writer = threading.RLock()
        self._lock_file = open(f"{self.path}.lock", "ab")  # held open for the store's life
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = self._local.connection
        if conn is None:
            timeout = BUSY_TIMEOUT_MS / 1000
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=timeout)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses no commit
            self._local.connection = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, lazy: bool = False) -> Iterator[None]:  # committed at once all the same
        local = self._local
        if local.depth:
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        with self._writer, self._exclusive():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            local.depth = 1
            try:
                yield
            except BaseException:
                local.depth = 0
                if conn.in_transaction:  # SQLite may have rolled back already (a full disk, an interrupt)
                    conn.execute("ROLLBACK")
                raise
            local.depth = 0
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if fcntl is None:  # no flock (Windows): SQLite's own locking still serializes the writers
            yield
            return
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    def get(self, kind: str, key: str) -> Any | None:
        row = self._conn().execute("SELECT value FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return None if row is None else load(row[0])

    def owner(self, kind: str, key: str) -> str | None:
        row = self._conn().execute("SELECT owner FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return None if row is None else str(row[0])

    def put(self, kind: str, key: str, value: Any, *, owner: str) -> None:
        blob = dump(value)
        with self.transaction():
            self._conn().execute(UPSERT, (kind, key, owner, blob))

    def delete(self, kind: str, key: str) -> bool:
        with self.transaction():
            cursor = self._conn().execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
            return cursor.rowcount > 0

    def values(self, kind: str, *, owner: str | None) -> list[Any]:
        if owner is None:
            rows = self._conn().execute("SELECT value FROM records WHERE kind = ? ORDER BY seq", (kind,))
        else:
            query = "SELECT value FROM records WHERE owner = ? AND kind = ? ORDER BY seq"
            rows = self._conn().execute(query, (owner, kind))
        return [load(blob) for (blob,) in rows.fetchall()]

    def count(self, kind: str, *, owner: str | None = None) -> int:
        if owner is None:
            row = self._conn().execute("SELECT COUNT(*) FROM records WHERE kind = ?", (kind,)).fetchone()
        else:
            query = "SELECT COUNT(*) FROM records WHERE owner = ? AND kind = ?"
            row = self._conn().execute(query, (owner, kind)).fetchone()
        return int(row[0])

    def clear(self, *, owner: str | None = None) -> None:
        with self.transaction():
            if owner is None:
                self._conn().execute("DELETE FROM records WHERE owner != ?", (SYSTEM,))
            else:
                self._conn().execute("DELETE FROM records WHERE owner = ?", (owner,))

    def snapshot(self, *, owner: str | None = None) -> Records:
        if owner is None:
            query, args = "SELECT kind, key, owner, value FROM records WHERE owner != ? ORDER BY seq", (SYSTEM,)
        else:
            query, args = "SELECT kind, key, owner, value FROM records WHERE owner = ? ORDER BY seq", (owner,)
        records: Records = {}
        with self.transaction():  # one consistent read
            for kind, key, who, blob in self._conn().execute(query, args).fetchall():
                records.setdefault(kind, {})[key] = (who, load(blob))
        return records

    def restore(self, records: Records, *, owner: str | None = None) -> None:
        rows = [
            (kind, key, who, dump(value))
            for kind, entries in records.items()
            for key, (who, value) in entries.items()
            if who == owner or (owner is None and who != SYSTEM)
        ]
        with self.transaction():
            self.clear(owner=owner)
            self._conn().executemany(UPSERT, rows)

    def close(self) -> None:
        with self._guard:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = _Local()
        self._lock_file.close()

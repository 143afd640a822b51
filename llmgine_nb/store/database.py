"""The one database object every kind of record shares: connection, lock, transactions.

``Database`` opens the SQLite file (WAL, ``synchronous=NORMAL``, foreign keys,
a busy timeout), runs the migrations, and hands out:

* ``transaction()``: one atomic write on the writer connection (``BEGIN
  IMMEDIATE``, so concurrent writers queue on the busy timeout instead of
  failing with "database is locked"); nested use becomes a savepoint;
* ``read()``: a short read on the writer connection, under the same lock;
* ``reading()``: a second, read-only-by-use connection for long reads (search).
  In WAL mode readers never wait for writers nor hold them up, so a slow
  search does not stall a turn being written.  An in-memory database has
  no second connection to offer; there ``reading()`` shares the writer's.

The record modules (``sessions``, ``messages``, ``tool_calls`` ...) are plain
functions over a ``sqlite3.Connection``; they read rows by column name
(``rows()`` returns ``sqlite3.Row`` objects).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from .migrations import migrate
from .paths import MEMORY
from .records import StoreError

__all__ = ["Database", "rows", "one", "new_id"]


def new_id() -> str:
    return uuid.uuid4().hex


def rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    """The rows of a query, each readable by column name (``row["created"]``)."""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchall()


def one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
    """The first row of a query (by column name), or None."""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    row: sqlite3.Row | None = cursor.execute(sql, params).fetchone()
    return row


def _enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL mode, waiting out other processes that hold it.

    Changing the journal mode can fail with "database is locked" at once,
    without the busy handler's wait, while another process is opening the
    same file; so retry for up to ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _cannot_open(target: str | Path, exc: Exception) -> StoreError:
    return StoreError(
        f"cannot open the llmgine database {target}: {exc}. Check that the file is a "
        "SQLite database you can write to, or pass Store(path=...) / set LLMGINE_DB "
        "to use another file."
    )


class Database:
    """One SQLite file: the writer connection (shared by threads under one lock) and a reader.

    ``path`` is a file path or ``":memory:"``; ``timeout`` is how long (seconds) a
    write waits for another writer.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self.lock = threading.RLock()
        self.db = self._open_writer()
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()

    @property
    def memory(self) -> bool:
        return self.path == MEMORY

    def _open_writer(self) -> sqlite_utils.Database:
        target = self.path
        if not self.memory:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder for the llmgine database {target}: {exc}. "
                    "Pass Store(path=...) or set LLMGINE_DB to a writable location."
                ) from exc
        try:
            conn = sqlite3.connect(str(target), timeout=self.timeout, check_same_thread=False)
            db = sqlite_utils.Database(conn, execute_plugins=False)
            if not self.memory:
                _enable_wal(conn, self.timeout)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            migrate(db)
        except sqlite3.DatabaseError as exc:
            raise _cannot_open(target, exc) from exc
        return db

    @property
    def conn(self) -> sqlite3.Connection:
        """The writer connection (hold ``lock`` while using it)."""
        return self.db.conn

    def close(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self.lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self.lock:
            conn = self.db.conn
            if conn.in_transaction:
                with self.db.atomic():
                    yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                conn.rollback()
                raise

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """The writer connection for a few quick reads that must agree with each other."""
        with self.lock:
            yield self.db.conn

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A quick read on the writer connection (sees this process's latest commit)."""
        with self.lock:
            return rows(self.db.conn, sql, params)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for a long read that must not hold writers up, inside one read transaction.

        Everything read inside sees one snapshot of the database.  Reads on a
        file use their own connection (WAL lets it read while others write);
        an in-memory database can only be read through the writer connection.
        """
        if self.memory:
            with self.lock:
                yield self.db.conn
            return
        with self._reader_lock:
            if self._reader is None:
                try:
                    self._reader = sqlite3.connect(str(self.path), timeout=self.timeout, check_same_thread=False)
                except sqlite3.DatabaseError as exc:
                    raise _cannot_open(self.path, exc) from exc
            reader = self._reader
            reader.execute("BEGIN")  # deferred: a read snapshot, no write lock ...
            reader.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # ... taken now, by the first read
            try:
                yield reader
            finally:
                reader.rollback()  # nothing was written; ends the snapshot

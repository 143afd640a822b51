"""The one database object every kind of record shares: connection, lock, transactions.

``Database`` opens the SQLite file (WAL, ``synchronous=NORMAL``, foreign keys,
a busy timeout), runs the migrations, and hands out:

* ``transaction()``: one atomic write on the writer connection (``BEGIN
  IMMEDIATE``, so concurrent writers wait for the lock, polling, up to the
  timeout, instead of failing with "database is locked"); nested use
  becomes a savepoint;
* ``read()``: a short read on the writer connection, under the same lock;
* ``reading()``: a second, read-only-by-use connection for long reads (search).
  In WAL mode readers never wait for writers nor hold them up, so a slow
  search does not stall a turn being written.  An in-memory database has
  no second connection to offer; there ``reading()`` shares the writer's.

The record modules (``sessions``, ``messages``, ``tool_calls`` ...) are plain
functions over a ``Connection``: a ``sqlite3.Connection`` here, or the
PostgreSQL connection of ``postgres.py``, which takes the same SQL (``?``
placeholders; the few statements the two dialects spell differently are
written in the subset both read).  They read rows by column name (``rows()``).
``serialise_session`` is the one point where the backends differ in kind:
what keeps two writers of one session from taking the same position.

``open_database`` picks the backend from the target: a ``postgresql://`` URL
opens ``PostgresDatabase``, anything else this SQLite ``Database``.
"""

from __future__ import annotations

import secrets
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import search
from .connection import Connection
from .migrations import migrate
from .paths import MEMORY, is_postgres_url
from .records import StoreError

if TYPE_CHECKING:
    import sqlite_utils

    from .postgres import PostgresDatabase

__all__ = [
    "Connection", "Database", "integrity_errors", "is_sqlite", "new_id", "one", "open_database", "rows",
    "serialise_session",
]


def integrity_errors() -> tuple[type[Exception], ...]:
    """What a refused unique or foreign key raises, on either backend (``except integrity_errors():``).

    psycopg's error counts only once psycopg is imported - which a PostgreSQL
    store has done - so a SQLite store never pays for importing it.
    """
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, psycopg.IntegrityError)


def is_sqlite(conn: Connection) -> bool:
    return isinstance(conn, sqlite3.Connection)


def serialise_session(conn: Connection, session_id: str) -> None:
    """Inside a write transaction: wait until no other transaction writes this session's numbered rows.

    Positions (``messages.seq``) and stream numbers (``events.seq``) are the
    last one plus one; two writers must not both read the same "last".  On
    SQLite every write transaction already holds the database's one write
    lock (``BEGIN IMMEDIATE``).  On PostgreSQL, writers of different sessions
    run at once and those of one session queue on a transaction-scoped
    advisory lock keyed by the session (see ``postgres.py``).
    """
    if not is_sqlite(conn):
        conn.execute("SELECT pg_advisory_xact_lock(7481, hashtext(?))", (session_id,))


def new_id() -> str:
    return uuid.uuid4().hex


def rows(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """The rows of a query, each readable by column name (``row["created"]``) and by position."""
    if not isinstance(conn, sqlite3.Connection):
        return list(conn.execute(sql, params).fetchall())  # Postgres rows are read by name already
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchall()


def one(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first row of a query (by column name), or None."""
    if not isinstance(conn, sqlite3.Connection):
        return conn.execute(sql, params).fetchone()
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    row: sqlite3.Row | None = cursor.execute(sql, params).fetchone()
    return row


@contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """A write nested in another: a savepoint, undone alone if the inner block fails."""
    name = f"llmgine_{secrets.token_hex(8)}"
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        # An error that destroyed the whole transaction (e.g. a RAISE(ROLLBACK)
        # trigger) took the savepoint with it: then there is nothing to undo here.
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            conn.execute(f"RELEASE SAVEPOINT {name}")
        raise
    conn.execute(f"RELEASE SAVEPOINT {name}")


def _enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL mode, waiting out other processes that hold it.

    Changing the journal mode can fail with "database is locked" at once,
    without the busy handler's wait, while another process is opening the
    same file; so retry for up to ``timeout`` seconds.
    """

    def switch() -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")

    _while_locked(switch, timeout, first_pause=0.005, last_pause=0.2)


def _while_locked(action: Callable[[], object], timeout: float, *, first_pause: float, last_pause: float) -> None:
    """``action()``, tried again while SQLite answers "database is locked", for up to ``timeout`` seconds
    (pausing ``first_pause``, doubling up to ``last_pause``)."""
    deadline = time.monotonic() + timeout
    pause = first_pause
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, last_pause)


#: How soon a writer looks again for the write lock another process holds (seconds): at first, and at most.
_FIRST_LOCK_POLL_S = 0.00005
_LAST_LOCK_POLL_S = 0.001


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

    #: The search functions for this backend (``search.py``: SQLite FTS5).
    search = search

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self.lock = threading.RLock()
        #: The writer connection (hold ``lock`` while using it).
        self.conn: sqlite3.Connection = self._open_writer()
        self._sqlite_utils: sqlite_utils.Database | None = None
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()

    @property
    def memory(self) -> bool:
        return self.path == MEMORY

    def _open_writer(self) -> sqlite3.Connection:
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
            if not self.memory:
                _enable_wal(conn, self.timeout)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise _cannot_open(target, exc) from exc
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """The writer connection as a sqlite-utils ``Database`` (made when first asked for; the store needs none)."""
        if self._sqlite_utils is None:
            import sqlite_utils

            self._sqlite_utils = sqlite_utils.Database(self.conn, execute_plugins=False)
        return self._sqlite_utils

    def close(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self.lock:
            conn = self.conn
            if conn.in_transaction:
                with _savepoint(conn):
                    yield conn
                return
            self._begin_immediate(conn)
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

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``: take the file's write lock, waiting up to ``timeout`` for another process's write.

        Why not SQLite's busy handler: it sleeps 1, 2, 5, 10, 15 ... ms between tries, while a write here
        holds the lock for 0.1-0.3 ms; so a waiting writer woke long after the lock was free, and the
        event loop that called it (an engine worker's) stood still all that time.  Polling every 50 us,
        backing off to 1 ms, two workers on one file ran 1.45-1.56 times one worker's turns per second
        (medians of ``benchmarks/bench_distributed.py``'s ``worker_scaling``; single rounds 1.37-1.82)
        instead of 1.04-1.32.
        """
        conn.execute("PRAGMA busy_timeout=0")  # this statement only: every other one keeps the busy handler
        try:
            _while_locked(lambda: conn.execute("BEGIN IMMEDIATE"), self.timeout,
                          first_pause=_FIRST_LOCK_POLL_S, last_pause=_LAST_LOCK_POLL_S)
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """The writer connection for a few quick reads that must agree with each other."""
        with self.lock:
            yield self.conn

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A quick read on the writer connection (sees this process's latest commit)."""
        with self.lock:
            return rows(self.conn, sql, params)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for a long read that must not hold writers up, inside one read transaction.

        Everything read inside sees one snapshot of the database.  Reads on a
        file use their own connection (WAL lets it read while others write);
        an in-memory database can only be read through the writer connection.
        """
        if self.memory:
            with self.lock:
                yield self.conn
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

    def vacuum(self) -> None:
        """Reclaim the space of deleted rows (rewrites the file; run it when idle)."""
        with self.lock:
            if not self.memory:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("VACUUM")

    def integrity_check(self) -> list[str]:
        """Problems SQLite finds in the file (an empty list when it is sound)."""
        found = [row[0] for row in self.read("PRAGMA integrity_check")]
        return [] if found == ["ok"] else found


def open_database(target: str | Path, *, timeout: float = 30.0) -> Database | PostgresDatabase:
    """The database for ``target``: PostgreSQL for a ``postgresql://`` URL, else a SQLite file."""
    if is_postgres_url(target):
        from .postgres import PostgresDatabase  # psycopg is an optional extra

        return PostgresDatabase(str(target), timeout=timeout)
    return Database(target, timeout=timeout)

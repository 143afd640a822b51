"""The store on PostgreSQL: the same records and SQL as on SQLite, through psycopg 3.

    store = Store("postgresql://llmgine@db.internal/llmgine")   # or LLMGINE_DB=postgresql://...

``PostgresDatabase`` offers what the SQLite ``Database`` offers the ``Store``
(``transaction()``, ``locked()``, ``read()``, ``reading()``, ``search``,
``vacuum()``, ``integrity_check()``), so the record modules run unchanged:

* ``PgConnection`` takes their SQL as written for SQLite's DB-API, ``?``
  placeholders and all, and hands psycopg its own (``%s``); the statements
  themselves keep to what both dialects read (``ON CONFLICT``, ``coalesce``,
  ``CASE``, a ``rowid`` column standing for SQLite's implicit one);
* rows come back readable by column name and by position, like ``sqlite3.Row``;
* text cannot hold NUL characters in PostgreSQL: they are stored as U+FFFD
  (the rest of the row is kept; SQLite keeps them as they are);
* a transaction is psycopg's ``Connection.transaction()`` (nested: a
  savepoint) on an autocommit connection, under one lock per ``Store``, as on
  SQLite; many processes (engine workers) share one database, and writers of
  one session queue on an advisory lock (``database.serialise_session``), so
  positions and stream numbers stay unique and gap-free across processes;
* long reads (search) take a second connection in a ``REPEATABLE READ``
  read-only transaction: one snapshot, never holding a writer up.

Schema: ``postgres_schema.py`` (the same migrations, by name, as
``migrations.py``); search: ``postgres_search.py``.  The password of the URL
is never shown: messages name the database by ``display_target``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from psycopg.rows import RowMaker

from . import postgres_search
from .paths import display_target
from .postgres_schema import migrate
from .records import StoreError

__all__ = ["PostgresDatabase", "PgConnection", "to_psycopg"]


@functools.lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> str:
    """``sql`` written with ``?`` placeholders as psycopg wants it: ``%s``, and a literal ``%`` doubled.

    Quoted text (``'...'``, ``"..."``) is left as it is.
    """
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class _NamedRow(tuple[Any, ...]):
    """A row readable by position and by column name, as ``sqlite3.Row`` is."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@functools.lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[_NamedRow]:
    return type("Row", (_NamedRow,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def named_row(cursor: Any) -> RowMaker[Any]:
    """psycopg row factory: ``_NamedRow`` objects for the cursor's columns."""
    description = cursor.description
    if description is None:
        return tuple
    cls = _row_class(tuple(column.name for column in description))
    return cls


def _storable(values: Sequence[Any]) -> tuple[Any, ...]:
    """``values`` with NUL characters in text replaced by U+FFFD: PostgreSQL text cannot hold them,
    and refusing the whole row would lose the rest of it."""
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v for v in values)


class PgConnection:
    """A psycopg connection that takes the record modules' SQL (``?`` placeholders)."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        if not parameters:  # sent as written: psycopg reads no placeholders without parameters
            return self.raw.execute(sql)
        return self.raw.execute(to_psycopg(sql), _storable(parameters))

    def executemany(self, sql: str, parameters: Any) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        values = [_storable(p) for p in parameters]
        if values:
            cursor.executemany(to_psycopg(sql), values)
        return cursor


def _connect(url: str, timeout: float) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(url, autocommit=True, row_factory=named_row, connect_timeout=max(1, int(timeout)))
        # A write that waits longer than ``timeout`` for another one's lock fails, as on SQLite.
        conn.execute(f"SET lock_timeout = {int(timeout * 1000)}")
        return conn
    except psycopg.Error as exc:
        raise StoreError(
            f"cannot open the llmgine database {display_target(url)}: "
            f"{display_target(str(exc).strip())}. Check that PostgreSQL is running and the URL "
            "(user, host, port, database name) is right, or set LLMGINE_DB to a SQLite file instead."
        ) from None


class PostgresDatabase:
    """One PostgreSQL database: a writer connection (shared by threads under one lock) and a reader."""

    search = postgres_search
    memory = False

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.path = url
        self.timeout = timeout
        self.lock = threading.RLock()
        self._raw = _connect(url, timeout)
        self._conn = PgConnection(self._raw)
        with self.transaction() as conn:
            migrate(conn)
        self._reader: PgConnection | None = None
        self._reader_lock = threading.Lock()

    @property
    def conn(self) -> PgConnection:
        """The writer connection (hold ``lock`` while using it)."""
        return self._conn

    def close(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.raw.close()
                self._reader = None
        with self.lock:
            self._raw.close()

    def _live(self, *, reconnect: bool = False) -> PgConnection:
        # A connection lost (the server restarted, an idle timeout, a network cut) is opened
        # again.  What was in flight failed with an error and is not replayed; only a start
        # (BEGIN, or a lone read) that finds the connection dead is tried once more.
        if reconnect or self._raw.closed or self._raw.broken:
            self._raw.close()
            self._raw = _connect(self.path, self.timeout)
            self._conn = PgConnection(self._raw)
        return self._conn

    def _idle(self) -> bool:
        return self._raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """One atomic write: everything inside commits together or not at all (nested: a savepoint)."""
        with self.lock, ExitStack() as stack:
            conn = self._live()
            outermost = self._idle()
            try:
                stack.enter_context(conn.raw.transaction())
            except psycopg.OperationalError:
                if not outermost:
                    raise
                conn = self._live(reconnect=True)
                stack.enter_context(conn.raw.transaction())
            yield conn

    @contextmanager
    def locked(self) -> Iterator[PgConnection]:
        """The writer connection for a few quick reads that must agree with each other (one transaction)."""
        with self.transaction() as conn:
            yield conn

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """A quick read on the writer connection (sees this process's latest commit)."""
        with self.lock:
            conn = self._live()
            if not self._idle():
                return list(conn.execute(sql, params).fetchall())
            try:
                return list(conn.execute(sql, params).fetchall())
            except psycopg.OperationalError:
                return list(self._live(reconnect=True).execute(sql, params).fetchall())

    @contextmanager
    def reading(self) -> Iterator[PgConnection]:
        """A connection for a long read, inside one read-only snapshot that holds no writer up."""
        with self._reader_lock:
            try:
                reader = self._begin_reading(reconnect=False)
            except psycopg.OperationalError:  # dropped while idle: once more on a new connection
                reader = self._begin_reading(reconnect=True)
            try:
                yield reader
            finally:
                if not (reader.raw.closed or reader.raw.broken):
                    reader.raw.execute("ROLLBACK")

    def _begin_reading(self, *, reconnect: bool) -> PgConnection:
        if reconnect or self._reader is None or self._reader.raw.closed or self._reader.raw.broken:
            if self._reader is not None:
                self._reader.raw.close()
            self._reader = PgConnection(_connect(self.path, self.timeout))
        self._reader.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self._reader.raw.execute("SELECT 1")  # the snapshot is taken by the first statement: now
        return self._reader

    def vacuum(self) -> None:
        """Reclaim the space of deleted rows and refresh the planner's statistics."""
        with self.lock:
            self._live().raw.execute("VACUUM ANALYZE")

    def integrity_check(self) -> list[str]:
        """Problems found: foreign keys are enforced by PostgreSQL itself, so rows that break
        the store's own rules (a message without its session) are what is checked."""
        orphans = self.read(
            "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = m.session_id)"
        )[0][0]
        return [f"{orphans} messages belong to no session"] if orphans else []

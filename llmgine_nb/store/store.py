"""The store: one SQLite database (through sqlite-utils) holding every session.

    store = Store()                       # LLMGINE_DB, or the per-user default
    session = store.create_session("analysis", model="gpt-4o-mini")
    store.append_message(session.id, ChatMessage(role="user", content="hi"))
    resumed = store.load_session("analysis")   # after a kernel restart

Every write is one transaction (``BEGIN IMMEDIATE`` so that concurrent
writers queue on the busy timeout instead of failing with "database is
locked").  The database runs in WAL mode with ``synchronous=NORMAL``: a
write that has returned survives the process being killed; only a power
loss can take back the last few commits.

Schema, migrations, WAL, full-text search and savepoints go through
sqlite-utils; the per-turn hot paths run prepared SQL on the same
connection, which keeps a turn's write within a small factor of bare
sqlite3 (``benchmarks/bench_store.py``).

A ``Store`` may be shared between threads (the notebook's main thread and the
bus's background loop): one lock serialises its use of the connection.
Open one ``Store`` per process; several processes may open the same file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from ..chat import ChatMessage
from ..messages import Event, Message, UnknownMessageType
from . import queries
from .migrations import migrate
from .paths import MEMORY, resolve_db_path
from .records import (
    ApprovalRecord,
    Decision,
    LLMCall,
    LoadedSession,
    MemoryNote,
    SearchHit,
    SessionNotFound,
    SessionRecord,
    SessionSummary,
    StoredSummary,
    StoreError,
    ToolCallNotFound,
    ToolCallRecord,
    UsageRow,
)
from .rows import (
    MESSAGE_COLUMNS,
    from_json,
    message_row,
    messages_from_rows,
    might_hold_secret,
    parse_time,
    redact_secrets,
    to_json,
    utc_text,
)

__all__ = ["Store", "UnknownEvent"]

log = logging.getLogger("llmgine_nb.store")

_INSERT_MESSAGE = (
    "INSERT INTO messages (id, session_id, seq, role, content, tool_calls, tool_call_id, name, model, "
    "status, pinned, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_TOOL_CALL = (
    "INSERT INTO tool_calls (id, call_id, session_id, message_id, tool, arguments, status, requested) "
    "VALUES (?,?,?,?,?,?,'requested',?)"
)
# A tool-result message completes the latest call with that id, unless the
# call was already settled (denied, or failed with its own error).
_COMPLETE_TOOL_CALL = (
    "UPDATE tool_calls SET result_message_id = ?, result = coalesce(result, ?), "
    "status = CASE WHEN status IN ('requested', 'approved', 'running') THEN 'done' ELSE status END, "
    "finished = coalesce(finished, ?) "
    "WHERE id = (SELECT id FROM tool_calls WHERE session_id = ? AND call_id = ? ORDER BY rowid DESC LIMIT 1)"
)
_INSERT_LLM_CALL = (
    "INSERT INTO llm_calls (id, session_id, message_id, model, provider, input_tokens, output_tokens, "
    "cached_tokens, cost, latency_ms, ttft_ms, error, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_EVENT = "INSERT OR IGNORE INTO events (id, type, session_id, payload, created) VALUES (?,?,?,?,?)"

_SESSION_COLUMNS = (
    "id, name, model, created, notebook, forked_from_session, forked_from_message, engine_state, metadata"
)
_TOOL_CALL_COLUMNS = (
    "id, call_id, session_id, message_id, tool, arguments, status, result, error, result_message_id, "
    "requested, decided, started, finished, duration_ms"
)
_APPROVAL_COLUMNS = "id, tool_call, session_id, call_id, decision, who, edited_arguments, reason, created"

_UNSET: Any = object()


def _new_id() -> str:
    return uuid.uuid4().hex


class UnknownEvent(Event):
    """A stored event whose class cannot be imported in this process.

    Kept rather than dropped so that an event log written by another
    application still lists; ``stored_type`` names the original class and
    ``payload`` holds its fields.
    """

    stored_type: str
    payload: dict[str, Any]


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


class Store:
    """Persistence for sessions, messages, tool calls, approvals, LLM calls and events.

    ``path`` is a file path or ``":memory:"``; by default ``LLMGINE_DB`` or
    the per-user location described in ``llmgine_nb.store.paths``.
    ``timeout`` is how long (seconds) a write waits for another writer.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0) -> None:
        self.path = resolve_db_path(path)
        self._lock = threading.RLock()
        self.db = self._open(timeout)

    # -- opening and transactions -----------------------------------------

    def _open(self, timeout: float) -> sqlite_utils.Database:
        target = self.path
        if target != MEMORY:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder for the llmgine database {target}: {exc}. "
                    "Pass Store(path=...) or set LLMGINE_DB to a writable location."
                ) from exc
        try:
            conn = sqlite3.connect(str(target), timeout=timeout, check_same_thread=False)
            db = sqlite_utils.Database(conn, execute_plugins=False)
            if target != MEMORY:
                _enable_wal(conn, timeout)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            migrate(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open the llmgine database {target}: {exc}. Check that the file is a "
                "SQLite database you can write to, or pass Store(path=...) / set LLMGINE_DB "
                "to use another file."
            ) from exc
        return db

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        """Close the connection.  The store cannot be used afterwards."""
        with self._lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all.

        Takes the write lock up front (``BEGIN IMMEDIATE``), waiting up to the
        busy timeout for other writers.  Nested use becomes a savepoint.
        """
        with self._lock:
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

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.conn.execute(sql, params).fetchall()

    # -- sessions ----------------------------------------------------------

    def create_session(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        notebook: str | None = None,
        metadata: dict[str, Any] | None = None,
        engine_state: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> SessionRecord:
        """Start a new session.  A ``name``, when given, must not be in use yet."""
        record = SessionRecord(
            id=id or _new_id(),
            name=name,
            model=model,
            created=datetime.fromisoformat(utc_text()),
            notebook=notebook,
            engine_state=redact_secrets(dict(engine_state or {})),
            metadata=redact_secrets(dict(metadata or {})),
        )
        with self.transaction() as conn:
            self._insert_session(conn, record)
        return record

    def _insert_session(self, conn: sqlite3.Connection, record: SessionRecord) -> None:
        if record.name is not None and self._find_session(conn, record.name) is not None:
            raise StoreError(
                f"a session named {record.name!r} already exists; resume it with "
                f"load_session({record.name!r}) or choose another name"
            )
        try:
            conn.execute(
                f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    record.id,
                    record.name,
                    record.model,
                    utc_text(record.created),
                    record.notebook,
                    record.forked_from_session,
                    record.forked_from_message,
                    to_json(record.engine_state),
                    to_json(record.metadata),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"a session with id {record.id!r} already exists; omit id= to get a new one") from exc

    def get_or_create_session(self, name: str, **fields: Any) -> SessionRecord:
        """The session called ``name``, created (with ``fields``) if there is none."""
        with self.transaction() as conn:
            found = self._find_session(conn, name)
            if found is not None:
                return found
            return self.create_session(name, **fields)

    @staticmethod
    def _session_from_row(row: tuple[Any, ...]) -> SessionRecord:
        return SessionRecord(
            id=row[0],
            name=row[1],
            model=row[2],
            created=datetime.fromisoformat(row[3]),
            notebook=row[4],
            forked_from_session=row[5],
            forked_from_message=row[6],
            engine_state=from_json(row[7], {}),
            metadata=from_json(row[8], {}),
        )

    def _find_session(self, conn: sqlite3.Connection, ref: str) -> SessionRecord | None:
        row = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (ref,)).fetchone()
        if row is None:
            row = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE name = ?", (ref,)).fetchone()
        return None if row is None else self._session_from_row(row)

    def find_session(self, ref: str) -> SessionRecord | None:
        """The session with this id or name, or None."""
        with self._lock:
            return self._find_session(self.db.conn, ref)

    def get_session(self, ref: str) -> SessionRecord:
        """The session with this id or name; raises ``SessionNotFound``."""
        found = self.find_session(ref)
        if found is None:
            raise SessionNotFound(
                f"no session has the id or name {ref!r}; see Store.list_sessions() for the stored ones"
            )
        return found

    def _session_id(self, conn: sqlite3.Connection, ref: str | SessionRecord) -> str:
        if isinstance(ref, SessionRecord):
            return ref.id
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (ref,)).fetchone():
            return ref
        row = conn.execute("SELECT id FROM sessions WHERE name = ?", (ref,)).fetchone()
        if row is None:
            raise SessionNotFound(
                f"no session has the id or name {ref!r}; create it with Store.create_session() first"
            )
        return row[0]

    def rename_session(self, ref: str | SessionRecord, name: str | None) -> SessionRecord:
        with self.transaction() as conn:
            session_id = self._session_id(conn, ref)
            if name is not None:
                other = self._find_session(conn, name)
                if other is not None and other.id != session_id:
                    raise StoreError(f"a session named {name!r} already exists; choose another name")
            conn.execute("UPDATE sessions SET name = ? WHERE id = ?", (name, session_id))
        return self.get_session(session_id)

    def set_engine_state(self, ref: str | SessionRecord, state: dict[str, Any]) -> None:
        """Save the engine's resumable state (JSON-serialisable; credentials are redacted)."""
        with self.transaction() as conn:
            session_id = self._session_id(conn, ref)
            conn.execute(
                "UPDATE sessions SET engine_state = ? WHERE id = ?", (to_json(redact_secrets(state)), session_id)
            )

    def update_session_metadata(self, ref: str | SessionRecord, **values: Any) -> None:
        """Merge ``values`` into the session's metadata."""
        with self.transaction() as conn:
            session_id = self._session_id(conn, ref)
            row = conn.execute("SELECT metadata FROM sessions WHERE id = ?", (session_id,)).fetchone()
            merged = {**from_json(row[0], {}), **values}
            conn.execute(
                "UPDATE sessions SET metadata = ? WHERE id = ?", (to_json(redact_secrets(merged)), session_id)
            )

    def list_sessions(self, *, limit: int | None = None, notebook: str | None = None) -> list[SessionSummary]:
        """Sessions with message counts, last activity and usage totals, most recent first."""
        with self._lock:
            rows = queries.list_sessions(self.db.conn, limit=limit, notebook=notebook)
        return [
            SessionSummary(
                session=self._session_from_row(row[:9]),
                message_count=row[9],
                last_activity=datetime.fromisoformat(row[10]),
                llm_calls=row[11],
                input_tokens=row[12],
                output_tokens=row[13],
                cached_tokens=row[14],
                cost=row[15],
                unpriced_calls=row[16],
            )
            for row in rows
        ]

    def delete_session(self, ref: str | SessionRecord) -> None:
        """Delete a session and every row that belongs to it (messages, calls, events, memory)."""
        with self.transaction() as conn:
            session_id = self._session_id(conn, ref)
            for sql in (
                "DELETE FROM approvals WHERE session_id = ?",
                "DELETE FROM tool_calls WHERE session_id = ?",
                "DELETE FROM messages WHERE session_id = ?",
                "DELETE FROM llm_calls WHERE session_id = ?",
                "DELETE FROM events WHERE session_id = ?",
                "DELETE FROM memory WHERE session_id = ?",
                "DELETE FROM summaries WHERE session_id = ?",
                "DELETE FROM sessions WHERE id = ?",
            ):
                conn.execute(sql, (session_id,))

    def load_session(self, ref: str | SessionRecord) -> LoadedSession:
        """Resume a session by id or name: its record, full history and pending tool calls."""
        with self._lock:
            conn = self.db.conn
            session_id = self._session_id(conn, ref)
            session = self._find_session(conn, session_id)
            assert session is not None
            return LoadedSession(
                session=session,
                messages=self._messages(conn, session_id),
                pending_tool_calls=self._pending_tool_calls(conn, session_id),
            )

    def fork_session(
        self, ref: str | SessionRecord, at_message_id: str, *, name: str | None = None
    ) -> SessionRecord:
        """A new session whose history is a copy of this one's up to and including ``at_message_id``.

        Copied messages get new ids; their tool calls, decisions, memory notes
        and any summary within the copied range come along.
        """
        with self.transaction() as conn:
            source_id = self._session_id(conn, ref)
            source = self._find_session(conn, source_id)
            assert source is not None
            at = conn.execute(
                "SELECT seq FROM messages WHERE id = ? AND session_id = ?", (at_message_id, source_id)
            ).fetchone()
            if at is None:
                raise StoreError(
                    f"message {at_message_id!r} is not in session {source.name or source_id!r}; "
                    "fork at one of that session's message ids"
                )
            fork = SessionRecord(
                id=_new_id(),
                name=name,
                model=source.model,
                created=datetime.fromisoformat(utc_text()),
                notebook=source.notebook,
                forked_from_session=source_id,
                forked_from_message=at_message_id,
                engine_state=source.engine_state,
                metadata=source.metadata,
            )
            self._insert_session(conn, fork)
            queries.copy_history(conn, source_id, fork.id, upto_seq=at[0], new_id=_new_id)
        return fork

    # -- messages ----------------------------------------------------------

    def append_message(self, session: str | SessionRecord, message: ChatMessage) -> int:
        """Add a message at the end of the session; return its position (0-based).

        An assistant message's tool calls are recorded as *requested*; a tool
        message completes the call it answers.
        """
        return self.append_messages(session, [message])[0]

    def append_messages(self, session: str | SessionRecord, messages: Iterable[ChatMessage]) -> list[int]:
        """Add several messages in order, in one transaction; return their positions."""
        with self.transaction() as conn:
            session_id = self._session_id(conn, session)
            return self._append(conn, session_id, list(messages))

    def _append(self, conn: sqlite3.Connection, session_id: str, messages: list[ChatMessage]) -> list[int]:
        (last,) = conn.execute("SELECT max(seq) FROM messages WHERE session_id = ?", (session_id,)).fetchone()
        seq = -1 if last is None else last
        positions = []
        for message in messages:
            if not isinstance(message, ChatMessage):
                raise TypeError(
                    f"the store keeps llmgine_nb.chat.ChatMessage objects, not {type(message).__name__}; "
                    "build one with ChatMessage(role=..., content=...) or ChatMessage.from_openai(...)"
                )
            seq += 1
            row = message_row(message, session_id, seq)
            try:
                conn.execute(_INSERT_MESSAGE, row)
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):  # a SessionRecord whose session was deleted meanwhile
                    raise SessionNotFound(
                        f"session {session_id!r} no longer exists (deleted by another notebook or process?); "
                        "start a new session"
                    ) from exc
                raise StoreError(
                    f"message {message.id!r} is already stored; append a new ChatMessage, "
                    "or change the stored one with Store.update_message()"
                ) from exc
            positions.append(seq)
            created = row[11]
            if message.tool_calls:
                conn.executemany(
                    _INSERT_TOOL_CALL,
                    [
                        (_new_id(), call.id, session_id, message.id, call.name, call.raw_arguments, created)
                        for call in message.tool_calls
                    ],
                )
            if message.role == "tool" and message.tool_call_id:
                conn.execute(
                    _COMPLETE_TOOL_CALL,
                    (message.id, message.content, created, session_id, message.tool_call_id),
                )
        return positions

    def _messages(self, conn: sqlite3.Connection, session_id: str, last: int | None = None) -> list[ChatMessage]:
        if last is None:
            rows = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq DESC LIMIT ?",
                (session_id, last),
            ).fetchall()
            rows.reverse()
        return messages_from_rows(rows)

    def messages(self, session: str | SessionRecord, *, last: int | None = None) -> list[ChatMessage]:
        """The session's messages in order (only the ``last`` N when given)."""
        with self._lock:
            conn = self.db.conn
            return self._messages(conn, self._session_id(conn, session), last)

    def get_message(self, message_id: str) -> ChatMessage:
        rows = self._read(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise StoreError(f"no stored message has the id {message_id!r}")
        return messages_from_rows(rows)[0]

    def update_message(
        self,
        message_id: str,
        *,
        content: str | None = _UNSET,
        status: Literal["complete", "interrupted"] = _UNSET,
        pinned: bool = _UNSET,
    ) -> ChatMessage:
        """Change a stored message's content, status or pin; return it as stored now."""
        changes: dict[str, Any] = {}
        if content is not _UNSET:
            changes["content"] = content
        if status is not _UNSET:
            if status not in ("complete", "interrupted"):
                raise ValueError(f"status must be 'complete' or 'interrupted', not {status!r}")
            changes["status"] = status
        if pinned is not _UNSET:
            changes["pinned"] = 1 if pinned else 0
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            with self.transaction() as conn:
                cursor = conn.execute(
                    f"UPDATE messages SET {assignments} WHERE id = ?", (*changes.values(), message_id)
                )
                if cursor.rowcount == 0:
                    raise StoreError(f"no stored message has the id {message_id!r}")
        return self.get_message(message_id)

    def pin_message(self, message_id: str, pinned: bool = True) -> ChatMessage:
        """Pin (or unpin) a message: pinned messages survive every context cut."""
        return self.update_message(message_id, pinned=pinned)

    # -- tool calls and approvals -------------------------------------------

    def _tool_call_row_id(self, conn: sqlite3.Connection, session_id: str, call_id: str) -> str:
        row = conn.execute(
            "SELECT id FROM tool_calls WHERE session_id = ? AND call_id = ? ORDER BY rowid DESC LIMIT 1",
            (session_id, call_id),
        ).fetchone()
        if row is None:
            raise ToolCallNotFound(
                f"no tool call {call_id!r} was recorded in session {session_id!r}; append the assistant "
                "message that requested it first"
            )
        return row[0]

    def _tool_calls(self, conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[ToolCallRecord]:
        rows = conn.execute(f"SELECT {_TOOL_CALL_COLUMNS} FROM tool_calls WHERE {where} ORDER BY rowid", params)
        records = [self._tool_call_from_row(row) for row in rows.fetchall()]
        if not records:
            return records
        approvals: dict[str, ApprovalRecord] = {}
        marks = ",".join("?" * len(records))
        for row in conn.execute(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE tool_call IN ({marks}) ORDER BY rowid",
            [r.id for r in records],
        ):
            approvals[row[1]] = self._approval_from_row(row)  # the latest decision wins
        return [
            ToolCallRecord(**{**r.__dict__, "approval": approvals.get(r.id)}) if r.id in approvals else r
            for r in records
        ]

    @staticmethod
    def _tool_call_from_row(row: tuple[Any, ...]) -> ToolCallRecord:
        return ToolCallRecord(
            id=row[0],
            call_id=row[1],
            session_id=row[2],
            message_id=row[3],
            tool=row[4],
            arguments=row[5],
            status=row[6],
            result=row[7],
            error=row[8],
            result_message_id=row[9],
            requested=datetime.fromisoformat(row[10]),
            decided=parse_time(row[11]),
            started=parse_time(row[12]),
            finished=parse_time(row[13]),
            duration_ms=row[14],
        )

    @staticmethod
    def _approval_from_row(row: tuple[Any, ...]) -> ApprovalRecord:
        return ApprovalRecord(
            id=row[0],
            tool_call=row[1],
            session_id=row[2],
            call_id=row[3],
            decision=row[4],
            who=row[5],
            edited_arguments=from_json(row[6]),
            reason=row[7],
            created=datetime.fromisoformat(row[8]),
        )

    def tool_calls(self, session: str | SessionRecord) -> list[ToolCallRecord]:
        """Every tool call requested in the session, in order, with its latest decision."""
        with self._lock:
            conn = self.db.conn
            return self._tool_calls(conn, "session_id = ?", (self._session_id(conn, session),))

    def get_tool_call(self, session: str | SessionRecord, call_id: str) -> ToolCallRecord:
        """The latest tool call with this model-given id in the session."""
        with self._lock:
            conn = self.db.conn
            row_id = self._tool_call_row_id(conn, self._session_id(conn, session), call_id)
            return self._tool_calls(conn, "id = ?", (row_id,))[0]

    def _pending_tool_calls(self, conn: sqlite3.Connection, session_id: str) -> list[ToolCallRecord]:
        return self._tool_calls(
            conn,
            "session_id = ? AND result_message_id IS NULL AND status IN ('requested', 'approved', 'running')",
            (session_id,),
        )

    def pending_tool_calls(self, session: str | SessionRecord) -> list[ToolCallRecord]:
        """Tool calls that never reached a result: present each again for a decision.

        ``status`` says how far each got: ``requested`` (never decided),
        ``approved`` (decided, never started) or ``running`` (interrupted
        while running - it may have had side effects).  None of them should
        be run without asking again.
        """
        with self._lock:
            conn = self.db.conn
            return self._pending_tool_calls(conn, self._session_id(conn, session))

    def record_approval(
        self,
        session: str | SessionRecord,
        call_id: str,
        decision: Decision,
        *,
        who: str | None = None,
        edited_arguments: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> ApprovalRecord:
        """Record a decision on a tool call (``approved`` or ``denied``), with who made it and why."""
        if decision not in ("approved", "denied"):
            raise ValueError(f"decision must be 'approved' or 'denied', not {decision!r}")
        if edited_arguments is not None and not isinstance(edited_arguments, dict):
            raise ValueError("edited_arguments must be a dict of argument names to values, or None")
        now = utc_text()
        with self.transaction() as conn:
            session_id = self._session_id(conn, session)
            row_id = self._tool_call_row_id(conn, session_id, call_id)
            record = ApprovalRecord(
                id=_new_id(),
                tool_call=row_id,
                session_id=session_id,
                call_id=call_id,
                decision=decision,
                who=who,
                edited_arguments=edited_arguments,
                reason=reason,
                created=datetime.fromisoformat(now),
            )
            conn.execute(
                f"INSERT INTO approvals ({_APPROVAL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (record.id, row_id, session_id, call_id, decision, who, to_json(edited_arguments), reason, now),
            )
            # A decision moves only a call with no result yet: undecided, or left running by a
            # restart and asked again.  A late duplicate is kept in the approvals table but
            # does not rewind a call that finished.
            conn.execute(
                "UPDATE tool_calls SET status = ?, decided = ? WHERE id = ? "
                "AND status IN ('requested', 'approved', 'running') AND result_message_id IS NULL",
                (decision, now, row_id),
            )
        return record

    def tool_started(self, session: str | SessionRecord, call_id: str) -> None:
        """Mark a tool call as running (record it before running the tool)."""
        now = utc_text()
        with self.transaction() as conn:
            row_id = self._tool_call_row_id(conn, self._session_id(conn, session), call_id)
            conn.execute("UPDATE tool_calls SET status = 'running', started = ? WHERE id = ?", (now, row_id))

    def tool_finished(
        self,
        session: str | SessionRecord,
        call_id: str,
        *,
        result: str | None = None,
        error: str | None = None,
        duration_ms: float | None = None,
    ) -> None:
        """Record a tool's outcome: its result text, or the error it failed with."""
        now = utc_text()
        with self.transaction() as conn:
            row_id = self._tool_call_row_id(conn, self._session_id(conn, session), call_id)
            conn.execute(
                "UPDATE tool_calls SET status = ?, result = ?, error = ?, finished = ?, "
                "duration_ms = coalesce(?, (julianday(?) - julianday(started)) * 86400000.0) WHERE id = ?",
                ("error" if error is not None else "done", result, error, now, duration_ms, now, row_id),
            )

    # -- LLM calls -----------------------------------------------------------

    @staticmethod
    def _llm_call_row(call: LLMCall, session_id: str | None) -> tuple[Any, ...]:
        return (
            call.id or _new_id(),
            session_id,
            call.message_id,
            call.model,
            call.provider,
            call.input_tokens,
            call.output_tokens,
            call.cached_tokens,
            call.cost,
            call.latency_ms,
            call.ttft_ms,
            call.error,
            utc_text(call.created),
        )

    def record_llm_call(self, call: LLMCall, *, session: str | SessionRecord | None = None) -> str:
        """Store one model call's usage, cost and timings; return its id."""
        row = self._llm_call_row(call, None)
        with self.transaction() as conn:
            ref = session if session is not None else call.session_id
            session_id = self._session_id(conn, ref) if ref is not None else None
            row = (row[0], session_id, *row[2:])
            conn.execute(_INSERT_LLM_CALL, row)
        return row[0]

    def llm_calls(self, session: str | SessionRecord | None = None) -> list[LLMCall]:
        """Stored model calls, oldest first (of one session when given)."""
        with self._lock:
            conn = self.db.conn
            columns = (
                "id, session_id, message_id, model, provider, input_tokens, output_tokens, cached_tokens, "
                "cost, latency_ms, ttft_ms, error, created"
            )
            if session is None:
                rows = conn.execute(f"SELECT {columns} FROM llm_calls ORDER BY created").fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {columns} FROM llm_calls WHERE session_id = ? ORDER BY created",
                    (self._session_id(conn, session),),
                ).fetchall()
        return [
            LLMCall(
                id=r[0], session_id=r[1], message_id=r[2], model=r[3], provider=r[4], input_tokens=r[5] or 0,
                output_tokens=r[6] or 0, cached_tokens=r[7] or 0, cost=r[8], latency_ms=r[9], ttft_ms=r[10],
                error=r[11], created=datetime.fromisoformat(r[12]),
            )
            for r in rows
        ]

    # -- the event log -------------------------------------------------------

    @staticmethod
    def _event_row(event: Message, payload: str | None = None) -> tuple[Any, ...]:
        if payload is None:
            payload = event.to_json()
        if might_hold_secret(payload):
            payload = json.dumps(redact_secrets(json.loads(payload)), ensure_ascii=False)
        return (event.id, event.type_name, event.session_id, payload, utc_text(event.timestamp))

    def log_event(self, event: Message) -> None:
        """Append an event (any bus message) to the event log.  Logging the same event twice keeps one row."""
        self.log_events([event])

    def log_events(self, events: Iterable[Message], *, payloads: Sequence[str] | None = None) -> None:
        """Append several events in one transaction.

        ``payloads``, when given, are the events' ``to_json()`` texts already
        made (the event log has them from redacting), in the same order.
        """
        events = list(events)
        if payloads is None:
            rows = [self._event_row(e) for e in events]
        elif len(payloads) != len(events):
            raise ValueError(f"{len(events)} events but {len(payloads)} payloads; give one payload per event")
        else:
            rows = [self._event_row(e, p) for e, p in zip(events, payloads)]
        with self.transaction() as conn:
            conn.executemany(_INSERT_EVENT, rows)

    def events(
        self,
        session: str | None = None,
        *,
        types: Sequence[type[Message] | str] | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """Logged events as their own classes, oldest first.

        ``session`` is a session id (events may belong to bus sessions that
        have no stored session record).  An event whose class cannot be
        imported comes back as an ``UnknownEvent``.
        """
        where, params = [], []
        if session is not None:
            where.append("session_id = ?")
            params.append(session)
        if types:
            names = [t if isinstance(t, str) else t.type_name for t in types]
            where.append(f"type IN ({','.join('?' * len(names))})")
            params.extend(names)
        if since is not None:
            where.append("created >= ?")
            params.append(utc_text(since))
        if until is not None:
            where.append("created < ?")
            params.append(utc_text(until))
        sql = "SELECT type, payload FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._event_from_row(type_name, payload) for type_name, payload in self._read(sql, params)]

    @staticmethod
    def _event_from_row(type_name: str, payload: str) -> Message:
        record = json.loads(payload)
        try:
            return Message.from_record(record)
        except UnknownMessageType:
            log.debug("event type %s is not importable here; returning an UnknownEvent", type_name)
            return UnknownEvent(
                id=record.get("id"),
                timestamp=record.get("timestamp"),
                session_id=record.get("session_id"),
                stored_type=type_name,
                payload=record,
            )

    def prune_events(self, before: datetime | date) -> int:
        """Delete events logged before ``before`` (a naive datetime is taken as UTC); return how many."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM events WHERE created < ?", (utc_text(before),)).rowcount

    # -- a whole turn in one transaction --------------------------------------

    def record_turn(
        self,
        session: str | SessionRecord,
        messages: Sequence[ChatMessage] = (),
        *,
        llm_calls: Sequence[LLMCall] = (),
        events: Sequence[Message] = (),
        replacing: str | None = None,
    ) -> list[int]:
        """Write a turn's messages, model calls and events atomically; return the messages' positions.

        ``replacing`` names a message of the session (the draft of a reply still streaming) to
        delete in the same transaction, so the reply takes its place rather than following it.
        """
        event_rows = [self._event_row(e) for e in events]
        with self.transaction() as conn:
            session_id = self._session_id(conn, session)
            if replacing is not None:
                # Usually the session's last message; if another writer added one since, the
                # reply still replaces the draft (it then leaves a gap in the positions).
                conn.execute("DELETE FROM messages WHERE id = ? AND session_id = ?", (replacing, session_id))
            elif not messages and isinstance(session, SessionRecord):
                # Model calls alone (no message would fail the foreign key): make sure the session is there.
                self._session_id(conn, session.id)
            positions = self._append(conn, session_id, list(messages))
            if llm_calls:
                conn.executemany(_INSERT_LLM_CALL, [self._llm_call_row(c, session_id) for c in llm_calls])
            if event_rows:
                conn.executemany(_INSERT_EVENT, event_rows)
        return positions

    # -- memory and summaries --------------------------------------------------

    def add_memory(self, text: str, *, session: str | SessionRecord | None = None) -> MemoryNote:
        """Remember a fact, for one session or (``session=None``) for every session."""
        if not text or not text.strip():
            raise ValueError("a memory note needs some text")
        now = utc_text()
        with self.transaction() as conn:
            session_id = self._session_id(conn, session) if session is not None else None
            note = MemoryNote(id=_new_id(), session_id=session_id, text=text, created=datetime.fromisoformat(now))
            conn.execute(
                "INSERT INTO memory (id, session_id, text, created) VALUES (?,?,?,?)",
                (note.id, session_id, text, now),
            )
        return note

    def memory(self, session: str | SessionRecord | None = None, *, include_global: bool = True) -> list[MemoryNote]:
        """Memory notes for a session (plus the global ones), or only the global ones, oldest first."""
        with self._lock:
            conn = self.db.conn
            if session is None:
                rows = conn.execute(
                    "SELECT id, session_id, text, created FROM memory WHERE session_id IS NULL ORDER BY rowid"
                ).fetchall()
            else:
                session_id = self._session_id(conn, session)
                clause = "session_id = ? OR session_id IS NULL" if include_global else "session_id = ?"
                rows = conn.execute(
                    f"SELECT id, session_id, text, created FROM memory WHERE {clause} ORDER BY rowid", (session_id,)
                ).fetchall()
        return [MemoryNote(id=r[0], session_id=r[1], text=r[2], created=datetime.fromisoformat(r[3])) for r in rows]

    def delete_memory(self, note_id: str) -> None:
        with self.transaction() as conn:
            if conn.execute("DELETE FROM memory WHERE id = ?", (note_id,)).rowcount == 0:
                raise StoreError(f"no memory note has the id {note_id!r}")

    def save_summary(self, session_id: str, upto_message_id: str, text: str, covered: int) -> StoredSummary:
        """Store a summary standing in for the session's messages up to ``upto_message_id``."""
        now = utc_text()
        summary = StoredSummary(
            id=_new_id(),
            session_id=session_id,
            upto_message_id=upto_message_id,
            text=text,
            covered=covered,
            created=datetime.fromisoformat(now),
        )
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO summaries (id, session_id, upto_message_id, text, covered, created) VALUES (?,?,?,?,?,?)",
                (summary.id, session_id, upto_message_id, text, covered, now),
            )
        return summary

    def latest_summary(self, session_id: str) -> StoredSummary | None:
        """The session's most recent stored summary, if any."""
        rows = self._read(
            "SELECT id, session_id, upto_message_id, text, covered, created FROM summaries "
            "WHERE session_id = ? ORDER BY rowid DESC LIMIT 1",
            (session_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return StoredSummary(
            id=r[0], session_id=r[1], upto_message_id=r[2], text=r[3], covered=r[4],
            created=datetime.fromisoformat(r[5]),
        )

    # -- queries for the front ends --------------------------------------------

    def search(
        self,
        query: str,
        *,
        session: str | SessionRecord | None = None,
        limit: int = 20,
        raw: bool = False,
        highlight: tuple[str, str] = ("**", "**"),
    ) -> list[SearchHit]:
        """Full-text search over message content, best matches first, with snippets.

        The words are searched as typed; ``raw=True`` passes SQLite FTS5 query
        syntax (``AND``, ``OR``, ``NEAR``, ``prefix*``) through instead.
        """
        if not query or not query.strip():
            raise ValueError("search needs at least one word to look for")
        match = query if raw else self.db.quote_fts(query)
        self._index_new_messages()
        with self._lock:
            conn = self.db.conn
            session_id = self._session_id(conn, session) if session is not None else None
            try:
                rows = queries.search(conn, match, session_id=session_id, limit=limit, highlight=highlight)
            except sqlite3.OperationalError as exc:
                if raw:
                    raise StoreError(
                        f"{query!r} is not a valid full-text query ({exc}); check the FTS5 syntax, "
                        "or pass raw=False to search for the words as typed"
                    ) from exc
                raise
        return [
            SearchHit(
                message_id=r[0], session_id=r[1], session_name=r[2], seq=r[3], role=r[4], snippet=r[5],
                content=r[6], created=datetime.fromisoformat(r[7]), rank=r[8],
            )
            for r in rows
        ]

    def _index_new_messages(self, per_transaction: int = 500) -> None:
        """Add the messages written since the last search to the search index (see migration m004).

        In short transactions, so that a first search after months of chat
        does not hold up the writers for long.
        """
        while self._read("SELECT EXISTS (SELECT 1 FROM messages_fts_pending)")[0][0]:
            with self.transaction() as conn:
                (upto,) = conn.execute(
                    "SELECT max(pk) FROM (SELECT pk FROM messages_fts_pending ORDER BY pk LIMIT ?)", (per_transaction,)
                ).fetchone()
                if upto is None:
                    return  # another connection caught up meanwhile
                conn.execute(
                    "INSERT INTO messages_fts (rowid, content) SELECT m.pk, m.content FROM messages m "
                    "JOIN messages_fts_pending p ON p.pk = m.pk WHERE p.pk <= ?",
                    (upto,),
                )
                conn.execute("DELETE FROM messages_fts_pending WHERE pk <= ?", (upto,))

    def usage(
        self,
        by: Literal["session", "model", "day"] = "session",
        *,
        session: str | SessionRecord | None = None,
        since: datetime | date | None = None,
    ) -> list[UsageRow]:
        """Token, cost and call totals grouped by session, model or UTC day."""
        if by not in ("session", "model", "day"):
            raise ValueError(f"usage can be grouped by 'session', 'model' or 'day', not {by!r}")
        with self._lock:
            conn = self.db.conn
            session_id = self._session_id(conn, session) if session is not None else None
            rows = queries.usage(conn, by, session_id=session_id, since=utc_text(since) if since else None)
        return [
            UsageRow(
                key=r[0], calls=r[1], errors=r[2], input_tokens=r[3], output_tokens=r[4], cached_tokens=r[5],
                cost=r[6], mean_latency_ms=r[7], unpriced_calls=r[8],
            )
            for r in rows
        ]

    # -- housekeeping ------------------------------------------------------------

    def vacuum(self) -> None:
        """Reclaim the space of deleted rows (rewrites the file; run it when idle)."""
        with self._lock:
            if self.path != MEMORY:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.vacuum()

    def integrity_check(self) -> list[str]:
        """Problems SQLite finds in the file (an empty list when it is sound)."""
        rows = self._read("PRAGMA integrity_check")
        return [] if [r[0] for r in rows] == ["ok"] else [r[0] for r in rows]

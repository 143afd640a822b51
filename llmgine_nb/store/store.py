"""The store: one database holding every session, a SQLite file (the default) or PostgreSQL.

    store = Store()                       # LLMGINE_DB, or the per-user default
    session = store.create_session("analysis", model="gpt-4o-mini")
    store.append_message(session.id, ChatMessage(role="user", content="hi"))
    resumed = store.load_session("analysis")   # after a kernel restart
    shared = Store("postgresql://llmgine@db/llmgine")   # many processes, many machines

``Store`` is a thin facade.  Each kind of record has its own module of plain
functions over a connection (``sessions``, ``messages``, ``tool_calls``,
``llm_calls``, ``events``, ``memory``, ``search``, ``fork``); all of them
share one database object: ``Database`` (``database.py``, SQLite) or
``PostgresDatabase`` (``postgres.py``), which offer the same connection, lock
and transactions, so the record modules' SQL runs on either.  A method here resolves the session named by the caller (id,
name or record) to its id once, then calls those functions in one
transaction or one read.

Every write is one transaction; WAL with ``synchronous=NORMAL``: a write
that has returned survives the process being killed (see ``database.py``).
Search reads on a connection of its own, so it never holds a writer up.

A ``Store`` may be shared between threads (the notebook's main thread and the
bus's background loop).  Open one ``Store`` per process; several processes
may open the same file or PostgreSQL database.

An engine worker sets ``fencing`` (``fencing.py``): then every write of a
session's history (messages, tool calls and approvals, model calls, events,
engine state) first checks the worker's token for the session, in the
write's transaction, and a worker that lost the session to a newer holder
gets ``Fenced`` instead of a second writer's rows.  Without it (the default)
the writes are as they always were.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from ..chat import ChatMessage, ImageRef
from ..messages import Message
from . import events as event_table
from . import fencing as fence_checks
from . import images as image_table
from . import llm_calls as llm_call_table
from . import memory as memory_table
from . import messages as message_table
from . import request_cache
from . import sessions as session_table
from . import tool_calls as tool_call_table
from .database import Connection, Database, new_id, open_database
from .events import UnknownEvent
from .fencing import Fencing
from .fork import fork
from .map_jobs import MapJobs
from .paths import display_target, resolve_db_path
from .records import (
    ApprovalRecord,
    Decision,
    Fenced,
    LLMCall,
    LoadedSession,
    MemoryNote,
    SearchHit,
    SessionNotFound,
    SessionRecord,
    SessionSummary,
    StoredSummary,
    StoreError,
    ToolCallRecord,
    UsageRow,
)
from .rows import utc_text
from .turns import record_turn

if TYPE_CHECKING:
    import sqlite_utils

    from .postgres import PostgresDatabase

__all__ = ["Store", "UnknownEvent"]

SessionRef = str | SessionRecord  # a session's id, its name, or its record

_UNSET: Any = object()


class Store:
    """Persistence for sessions, messages, tool calls, approvals, LLM calls and events.

    ``path`` is a file path, ``":memory:"`` or a URL (``postgresql://...``
    opens the store on PostgreSQL, see ``postgres.py``); by default
    ``LLMGINE_DB`` or the per-user location described in ``llmgine_nb.store.paths``.
    ``timeout`` is how long (seconds) a write waits for another writer.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> None:
        self.path = resolve_db_path(path)
        self.database: Database | PostgresDatabase = open_database(self.path, timeout=timeout)
        #: Who gives this process's fencing tokens (an engine worker's partitions); None: no fencing.
        self.fencing: Fencing | None = None
        self._index_backlog()

    def _index_backlog(self) -> None:
        # A database left by an older version may hold a long queue of messages waiting for the
        # search index; index it now, so that searches stay quick.
        with self.database.locked() as conn:
            if self.database.search.backlog(conn):
                self.index_for_search()

    def index_for_search(self, per_transaction: int = 500) -> None:
        """Index every message still waiting for the search index, in short transactions.

        Search does not need this (it also looks at the waiting messages); it is
        for tools that read the FTS index directly, such as SQLite's integrity check.
        """
        more = True
        while more:
            with self.transaction() as conn:
                more = self.database.search.index_waiting(conn, per_transaction)

    # -- the database ---------------------------------------------------------

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return "sqlite" if isinstance(self.database, Database) else "postgresql"

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils database (the writer connection); SQLite only."""
        if not isinstance(self.database, Database):
            raise StoreError("this store is on PostgreSQL; sqlite-utils reads SQLite files only (use Store.conn)")
        return self.database.db

    @property
    def conn(self) -> Any:
        """The writer connection (``sqlite3.Connection``, or the PostgreSQL one taking the same SQL)."""
        return self.database.conn

    def close(self) -> None:
        """Close the connections.  The store cannot be used afterwards."""
        self.database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def location(self) -> str:
        """Where the database is, as it may be shown or logged (a URL's password replaced by a marker)."""
        return display_target(self.path)

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic write: everything inside commits together or not at all (nested: a savepoint)."""
        with self.database.transaction() as conn:
            yield conn

    # -- fencing ----------------------------------------------------------------

    def fence(self, conn: Connection, session_id: str) -> None:
        """Inside a write of the session: refuse it (``Fenced``) if this process's token for the session
        is older than one that has written it.  Nothing at all when ``fencing`` is not set."""
        fencing = self.fencing
        if fencing is None:
            return
        token = fencing.token(session_id)
        if token is None:
            return
        try:
            fence_checks.check(conn, session_id, token)
        except Fenced as refused:
            fencing.refused(refused)
            raise

    def claim_fence(self, session_id: str) -> None:
        """Record this process's token as the session's (``Fenced`` if a newer one wrote it): from now on
        a holder with an older token cannot write it.  A new holder calls this before reading the session
        (a session not stored yet is claimed by its first write)."""
        if self.fencing is None:
            return
        with self.transaction() as conn:
            self.fence(conn, session_id)

    def _fenced_id(self, conn: Connection, session: SessionRef) -> str:
        """The session's id (``resolve_id``), its write fenced (``fence``)."""
        session_id = session_table.resolve_id(conn, session)
        self.fence(conn, session_id)
        return session_id

    def _fence_events(self, conn: Connection, rows: Sequence[tuple[Any, ...]], session_at: int) -> None:
        if self.fencing is not None:
            for session_id in sorted({row[session_at] for row in rows if row[session_at] is not None}):
                self.fence(conn, session_id)

    # -- sessions ---------------------------------------------------------------

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
        record = session_table.new_record(
            SessionRecord(
                id=id or new_id(),
                name=name,
                model=model,
                created=datetime.fromisoformat(utc_text()),
                notebook=notebook,
                engine_state=dict(engine_state or {}),
                metadata=dict(metadata or {}),
            )
        )
        with self.transaction() as conn:
            session_table.insert(conn, record)
            self.fence(conn, record.id)
        return record

    def get_or_create_session(self, name: str, **fields: Any) -> SessionRecord:
        """The session called ``name``, created (with ``fields``) if there is none."""
        with self.transaction():
            found = self.find_session(name)
            return found if found is not None else self.create_session(name, **fields)

    def find_session(self, ref: str) -> SessionRecord | None:
        """The session with this id or name, or None."""
        with self.database.locked() as conn:
            return session_table.find(conn, ref)

    def get_session(self, ref: str) -> SessionRecord:
        """The session with this id or name; raises ``SessionNotFound``."""
        found = self.find_session(ref)
        if found is None:
            raise SessionNotFound(
                f"no session has the id or name {ref!r}; see Store.list_sessions() for the stored ones"
            )
        return found

    def rename_session(self, ref: SessionRef, name: str | None) -> SessionRecord:
        with self.transaction() as conn:
            session_id = self._fenced_id(conn, ref)
            session_table.rename(conn, session_id, name)
        return self.get_session(session_id)

    def set_session_model(self, ref: SessionRef, model: str) -> None:
        """Record the model the session now uses (a switch), so a reloaded engine uses it too."""
        with self.transaction() as conn:
            session_table.set_model(conn, self._fenced_id(conn, ref), model)

    def set_engine_state(self, ref: SessionRef, state: dict[str, Any]) -> None:
        """Save the engine's resumable state (JSON-serialisable; credential-named entries are blanked)."""
        with self.transaction() as conn:
            session_table.set_engine_state(conn, self._fenced_id(conn, ref), state)

    def update_session_metadata(self, ref: SessionRef, **values: Any) -> None:
        """Merge ``values`` into the session's metadata."""
        with self.transaction() as conn:
            session_table.update_metadata(conn, self._fenced_id(conn, ref), values)

    def list_sessions(self, *, limit: int | None = None, notebook: str | None = None) -> list[SessionSummary]:
        """Sessions with message counts, last activity and usage totals, most recent first."""
        with self.database.locked() as conn:
            return session_table.summaries(conn, limit=limit, notebook=notebook)

    def delete_session(self, ref: SessionRef) -> None:
        """Delete a session and every row that belongs to it (messages, calls, events, memory)."""
        with self.transaction() as conn:
            session_table.delete(conn, session_table.resolve_id(conn, ref))

    def load_session(self, ref: SessionRef) -> LoadedSession:
        """Resume a session by id or name: its record, full history and pending tool calls."""
        with self.database.locked() as conn:
            record = session_table.find(conn, session_table.resolve_id(conn, ref))
            assert record is not None
            return LoadedSession(
                session=record,
                messages=message_table.load(conn, record.id),
                pending_tool_calls=tool_call_table.pending(conn, record.id),
            )

    def fork_session(self, ref: SessionRef, at_message_id: str, *, name: str | None = None) -> SessionRecord:
        """A new session whose history is a copy of this one's up to and including ``at_message_id``."""
        with self.transaction() as conn:
            return fork(conn, session_table.resolve_id(conn, ref), at_message_id, name=name)

    # -- messages -----------------------------------------------------------------

    def append_message(self, session: SessionRef, message: ChatMessage) -> int:
        """Add a message at the end of the session; return its position (0-based).

        An assistant message's tool calls are recorded as *requested*; a tool
        message completes the call it answers.
        """
        return self.append_messages(session, [message])[0]

    def append_messages(self, session: SessionRef, messages: Iterable[ChatMessage]) -> list[int]:
        """Add several messages in order, in one transaction; return their positions."""
        with self.transaction() as conn:
            return message_table.append(conn, self._fenced_id(conn, session), list(messages))

    def messages(self, session: SessionRef, *, last: int | None = None) -> list[ChatMessage]:
        """The session's messages in order (only the ``last`` N when given)."""
        with self.database.locked() as conn:
            return message_table.load(conn, session_table.resolve_id(conn, session), last)

    def get_message(self, message_id: str) -> ChatMessage:
        with self.database.locked() as conn:
            return message_table.get(conn, message_id)

    def update_message(
        self,
        message_id: str,
        *,
        content: str | None = _UNSET,
        status: Literal["complete", "interrupted"] = _UNSET,
        pinned: bool = _UNSET,
        forgotten: bool = _UNSET,
    ) -> ChatMessage:
        """Change a stored message's content, status, pin or forgotten flag; return it as stored now."""
        given = {"content": content, "status": status, "pinned": pinned, "forgotten": forgotten}
        changes = message_table.changes({k: v for k, v in given.items() if v is not _UNSET})
        if changes:
            with self.transaction() as conn:
                if self.fencing is not None:
                    found = conn.execute("SELECT session_id FROM messages WHERE id = ?", (message_id,)).fetchone()
                    if found is not None:
                        self.fence(conn, found[0])
                message_table.update(conn, message_id, changes)
        return self.get_message(message_id)

    def pin_message(self, message_id: str, pinned: bool = True) -> ChatMessage:
        """Pin (or unpin) a message: pinned messages survive every context cut."""
        return self.update_message(message_id, pinned=pinned)

    # -- images and the request cache ------------------------------------------------

    def put_image(self, image: Any, *, label: str | None = None) -> ImageRef:
        """Keep an image once (by sha256) and return its reference for a message.

        ``image``: a matplotlib figure, a PIL image, a path, bytes, an
        ``IPython.display.Image`` or a ``LoadedImage`` (``llmgine_nb.images``).
        """
        from ..images import LoadedImage, load_image

        loaded = image if isinstance(image, LoadedImage) else load_image(image, label=label)
        ref = loaded.ref()
        with self.transaction() as conn:
            image_table.put(conn, ref, loaded.data)
        return ref

    def image_data(self, sha256: str) -> bytes:
        """The stored bytes of an image (``StoreError`` when it is not here)."""
        with self.database.locked() as conn:
            found = image_table.get_data(conn, [sha256])
        if sha256 not in found:
            raise StoreError(f"no stored image has the sha256 {sha256!r}")
        return found[sha256]

    def with_image_data(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        """``messages`` with their images' bytes at hand, as a model call needs them."""
        if not any(m.images for m in messages):
            return messages
        with self.database.locked() as conn:
            return image_table.with_data(conn, messages)

    def image_count(self) -> int:
        with self.database.locked() as conn:
            return image_table.count(conn)

    def cached_response(self, request_hash: str) -> dict[str, Any] | None:
        """The answer stored for this exact request (see ``ChatEngine(request_cache=True)``), or None."""
        with self.transaction() as conn:
            return request_cache.get(conn, request_hash)

    def cache_response(self, request_hash: str, model: str, response: dict[str, Any]) -> None:
        with self.transaction() as conn:
            request_cache.put(conn, request_hash, model, response)

    def clear_request_cache(self) -> int:
        """Forget every cached answer; return how many there were."""
        with self.transaction() as conn:
            return request_cache.clear(conn)

    # -- tool calls and approvals -------------------------------------------------

    def tool_calls(self, session: SessionRef) -> list[ToolCallRecord]:
        """Every tool call requested in the session, in order, with its latest decision."""
        with self.database.locked() as conn:
            return tool_call_table.in_session(conn, session_table.resolve_id(conn, session))

    def get_tool_call(self, session: SessionRef, call_id: str) -> ToolCallRecord:
        """The latest tool call with this model-given id in the session."""
        with self.database.locked() as conn:
            row_id = tool_call_table.row_id(conn, session_table.resolve_id(conn, session), call_id)
            return tool_call_table.select(conn, "id = ?", (row_id,))[0]

    def pending_tool_calls(self, session: SessionRef) -> list[ToolCallRecord]:
        """Tool calls that never reached a result: present each again for a decision.

        ``status`` says how far each got: ``requested`` (never decided),
        ``approved`` (decided, never started) or ``running`` (interrupted
        while running - it may have had side effects).  None of them should
        be run without asking again.
        """
        with self.database.locked() as conn:
            return tool_call_table.pending(conn, session_table.resolve_id(conn, session))

    def record_approval(
        self,
        session: SessionRef,
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
        with self.transaction() as conn:
            return tool_call_table.record_approval(
                conn, self._fenced_id(conn, session), call_id, decision,
                who=who, edited_arguments=edited_arguments, reason=reason,
            )

    def tool_started(self, session: SessionRef, call_id: str) -> None:
        """Mark a tool call as running (record it before running the tool)."""
        with self.transaction() as conn:
            tool_call_table.started(conn, self._fenced_id(conn, session), call_id)

    def tool_finished(
        self,
        session: SessionRef,
        call_id: str,
        *,
        result: str | None = None,
        error: str | None = None,
        duration_ms: float | None = None,
    ) -> None:
        """Record a tool's outcome: its result text, or the error it failed with."""
        with self.transaction() as conn:
            tool_call_table.finished(
                conn, self._fenced_id(conn, session), call_id, result=result, error=error, duration_ms=duration_ms
            )

    # -- model calls ----------------------------------------------------------------

    def record_llm_call(self, call: LLMCall, *, session: SessionRef | None = None) -> str:
        """Store one model call's usage, cost and timings; return its id."""
        with self.transaction() as conn:
            ref = session if session is not None else call.session_id
            row = llm_call_table.row(call, self._fenced_id(conn, ref) if ref is not None else None)
            llm_call_table.insert(conn, [row])
        call_id: str = row[0]
        return call_id

    def llm_calls(self, session: SessionRef | None = None) -> list[LLMCall]:
        """Stored model calls, oldest first (of one session when given)."""
        with self.database.locked() as conn:
            return llm_call_table.select(conn, session_table.resolve_id(conn, session) if session is not None else None)

    # -- the event log ----------------------------------------------------------------

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
            rows = [event_table.row(e) for e in events]
        elif len(payloads) != len(events):
            raise ValueError(f"{len(events)} events but {len(payloads)} payloads; give one payload per event")
        else:
            rows = [event_table.row(e, p) for e, p in zip(events, payloads)]
        with self.transaction() as conn:
            self._fence_events(conn, rows, 2)
            event_table.insert(conn, rows)

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
        with self.database.locked() as conn:
            return event_table.select(conn, session_id=session, types=types, since=since, until=until, limit=limit)

    def prune_events(self, before: datetime | date) -> int:
        """Delete events logged before ``before`` (a naive datetime is taken as UTC); return how many."""
        with self.transaction() as conn:
            return event_table.prune(conn, before)

    # -- a whole turn in one transaction ------------------------------------------------

    def record_turn(
        self,
        session: SessionRef,
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
        event_rows = [event_table.row(e) for e in events]
        with self.transaction() as conn:
            if not messages and isinstance(session, SessionRecord):
                # Model calls alone (no message would fail the foreign key): make sure the session is there.
                session = session.id
            session_id = self._fenced_id(conn, session)
            self._fence_events(conn, event_rows, 2)
            return record_turn(conn, session_id, list(messages), llm_calls, event_rows, replacing)

    # -- memory and summaries -------------------------------------------------------------

    def add_memory(self, text: str, *, session: SessionRef | None = None) -> MemoryNote:
        """Remember a fact, for one session or (``session=None``) for every session."""
        if not text or not text.strip():
            raise ValueError("a memory note needs some text")
        with self.transaction() as conn:
            session_id = self._fenced_id(conn, session) if session is not None else None
            return memory_table.add(conn, text, session_id)

    def memory(self, session: SessionRef | None = None, *, include_global: bool = True) -> list[MemoryNote]:
        """Memory notes for a session (plus the global ones), or only the global ones, oldest first."""
        with self.database.locked() as conn:
            session_id = session_table.resolve_id(conn, session) if session is not None else None
            return memory_table.notes(conn, session_id, include_global=include_global)

    def delete_memory(self, note_id: str) -> None:
        with self.transaction() as conn:
            memory_table.delete(conn, note_id)

    def save_summary(self, session_id: str, upto_message_id: str, text: str, covered: int) -> StoredSummary:
        """Store a summary standing in for the session's messages up to ``upto_message_id``."""
        with self.transaction() as conn:
            self.fence(conn, session_id)
            return memory_table.save_summary(conn, session_id, upto_message_id, text, covered)

    def latest_summary(self, session_id: str) -> StoredSummary | None:
        """The session's most recent stored summary, if any."""
        with self.database.locked() as conn:
            return memory_table.latest_summary(conn, session_id)

    @property
    def map_jobs(self) -> MapJobs:
        """Prompts over data (``runtime.map``): their jobs and answered rows (``store/map_jobs.py``)."""
        return MapJobs(self.database)

    # -- queries for the front ends ----------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        session: SessionRef | None = None,
        limit: int = 20,
        raw: bool = False,
        highlight: tuple[str, str] = ("**", "**"),
    ) -> list[SearchHit]:
        """Full-text search over message content, best matches first, with snippets.

        The words are searched as typed; ``raw=True`` passes the backend's query
        syntax through instead: on SQLite FTS5's (``AND``, ``OR``, ``NEAR``,
        ``prefix*``), on PostgreSQL web-search syntax (``postgres_search.py``).  Only
        reads, on a connection of its own: a long search never holds a write up.
        """
        backend = self.database.search
        backend.match_text(query, raw=raw)  # a query with nothing to look for says so before any I/O
        with self.database.reading() as conn:
            session_id = session_table.resolve_id(conn, session) if session is not None else None
            return backend.search(conn, query, session_id=session_id, limit=limit, raw=raw, highlight=highlight)

    def usage(
        self,
        by: Literal["session", "model", "day"] = "session",
        *,
        session: SessionRef | None = None,
        since: datetime | date | None = None,
    ) -> list[UsageRow]:
        """Token, cost and call totals grouped by session, model or UTC day."""
        if by not in ("session", "model", "day"):
            raise ValueError(f"usage can be grouped by 'session', 'model' or 'day', not {by!r}")
        with self.database.locked() as conn:
            session_id = session_table.resolve_id(conn, session) if session is not None else None
            return llm_call_table.usage(conn, by, session_id=session_id, since=utc_text(since) if since else None)

    # -- housekeeping ----------------------------------------------------------------------------

    def vacuum(self) -> None:
        """Reclaim the space of deleted rows (rewrites the file; run it when idle)."""
        self.database.vacuum()

    def integrity_check(self) -> list[str]:
        """Problems the database finds in itself (an empty list when it is sound)."""
        return self.database.integrity_check()

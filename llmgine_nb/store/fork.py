"""Forking: copy a session's history up to a message, with the rows hanging off it.

Copied messages get new ids; their tool calls, decisions, memory notes and
any summary within the copied range come along.  A tool call whose outcome
lies after the fork point becomes a fresh request in the fork, to be decided
again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import search, sessions
from .database import Connection, rows
from .database import new_id as make_id
from .records import SessionRecord, StoreError
from .rows import utc_text

__all__ = ["fork", "copy_history"]

_MESSAGE_COLUMNS = "seq, role, content, tool_calls, tool_call_id, name, model, status, pinned, forgotten, created, images"
_CALL_COLUMNS = (
    "call_id, message_id, tool, arguments, status, result, error, result_message_id, "
    "requested, decided, started, finished, duration_ms"
)
_APPROVAL_COLUMNS = "call_id, decision, who, edited_arguments, reason, created"


def copy_history(
    conn: Connection, source_id: str, target_id: str, *, upto_seq: int, new_id: Callable[[], str]
) -> dict[str, str]:
    """Copy a session's messages (seq <= upto_seq) and what belongs to them; return old->new message ids."""
    messages = rows(
        conn,
        f"SELECT id, {_MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND seq <= ? ORDER BY seq",
        (source_id, upto_seq),
    )
    ids = {m["id"]: new_id() for m in messages}
    names = _MESSAGE_COLUMNS.split(", ")
    conn.executemany(
        f"INSERT INTO messages (id, session_id, {_MESSAGE_COLUMNS}) VALUES (?,?,{','.join('?' * len(names))})",
        [(ids[m["id"]], target_id, *(m[n] for n in names)) for m in messages],
    )

    call_ids: dict[str, str] = {}  # source tool_calls.id -> the copy's, for calls settled before the fork
    copied: list[tuple[Any, ...]] = []
    for call in rows(conn, f"SELECT id, {_CALL_COLUMNS} FROM tool_calls WHERE session_id = ? ORDER BY rowid", (source_id,)):
        if call["message_id"] not in ids:
            continue
        if call["result_message_id"] in ids:
            # Settled within the copied history: copy it, decisions included.
            call_ids[call["id"]] = new_id()
            copied.append(
                (call_ids[call["id"]], target_id, call["call_id"], ids[call["message_id"]], call["tool"],
                 call["arguments"], call["status"], call["result"], call["error"], ids[call["result_message_id"]],
                 call["requested"], call["decided"], call["started"], call["finished"], call["duration_ms"])
            )
        else:
            copied.append(
                (new_id(), target_id, call["call_id"], ids[call["message_id"]], call["tool"], call["arguments"],
                 "requested", None, None, None, call["requested"], None, None, None, None)
            )
    conn.executemany(
        f"INSERT INTO tool_calls (id, session_id, {_CALL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        copied,
    )

    approvals = rows(
        conn, f"SELECT tool_call, {_APPROVAL_COLUMNS} FROM approvals WHERE session_id = ? ORDER BY rowid", (source_id,)
    )
    approval_names = _APPROVAL_COLUMNS.split(", ")
    conn.executemany(
        f"INSERT INTO approvals (id, tool_call, session_id, {_APPROVAL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
        [
            (new_id(), call_ids[a["tool_call"]], target_id, *(a[n] for n in approval_names))
            for a in approvals
            if a["tool_call"] in call_ids
        ],
    )

    conn.executemany(
        "INSERT INTO memory (id, session_id, text, created) VALUES (?,?,?,?)",
        [
            (new_id(), target_id, note["text"], note["created"])
            for note in rows(conn, "SELECT text, created FROM memory WHERE session_id = ? ORDER BY rowid", (source_id,))
        ],
    )
    conn.executemany(
        "INSERT INTO summaries (id, session_id, upto_message_id, text, covered, created) VALUES (?,?,?,?,?,?)",
        [
            (new_id(), target_id, ids[s["upto_message_id"]], s["text"], s["covered"], s["created"])
            for s in rows(
                conn,
                "SELECT upto_message_id, text, covered, created FROM summaries WHERE session_id = ? ORDER BY rowid",
                (source_id,),
            )
            if s["upto_message_id"] in ids
        ],
    )
    return ids


def fork(conn: Connection, source_id: str, at_message_id: str, *, name: str | None) -> SessionRecord:
    """A new session (inside the caller's transaction) copying the source's history up to ``at_message_id``."""
    source = sessions.find(conn, source_id)
    assert source is not None
    at = conn.execute("SELECT seq FROM messages WHERE id = ? AND session_id = ?", (at_message_id, source_id)).fetchone()
    if at is None:
        raise StoreError(
            f"message {at_message_id!r} is not in session {source.name or source_id!r}; "
            "fork at one of that session's message ids"
        )
    record = SessionRecord(
        id=make_id(),
        name=name,
        model=source.model,
        created=datetime.fromisoformat(utc_text()),
        notebook=source.notebook,
        forked_from_session=source_id,
        forked_from_message=at_message_id,
        engine_state=source.engine_state,
        metadata=source.metadata,
    )
    sessions.insert(conn, record)
    copy_history(conn, source_id, record.id, upto_seq=at[0], new_id=make_id)
    search.index_pending_if_due(conn)
    return record

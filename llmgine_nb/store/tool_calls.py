"""Tool calls and the decisions on them (approvals).

One row per call a model requested (``call_id`` is the model's id, which need
not be unique, so each row has its own ``id``); approvals record who decided
what.  Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL), on session ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..chat import ToolCall
from .database import Connection, new_id, rows
from .records import ApprovalRecord, Decision, ToolCallNotFound, ToolCallRecord
from .rows import from_json, insert_record, parse_time, record_from_row, utc_text

__all__ = [
    "record_requested",
    "complete",
    "row_id",
    "select",
    "pending",
    "record_approval",
    "started",
    "finished",
]

_COLUMNS = (
    "id, call_id, session_id, message_id, tool, arguments, status, result, error, result_message_id, "
    "requested, decided, started, finished, duration_ms"
)
_APPROVAL_COLUMNS = "id, tool_call, session_id, call_id, decision, who, edited_arguments, reason, created"

_INSERT = (
    "INSERT INTO tool_calls (id, call_id, session_id, message_id, tool, arguments, status, requested) "
    "VALUES (?,?,?,?,?,?,'requested',?)"
)
# A tool-result message completes the latest call with that id, unless the
# call was already settled (denied, or failed with its own error).
_COMPLETE = (
    "UPDATE tool_calls SET result_message_id = ?, result = coalesce(result, ?), "
    "status = CASE WHEN status IN ('requested', 'approved', 'running') THEN 'done' ELSE status END, "
    "finished = coalesce(finished, ?) "
    "WHERE id = (SELECT id FROM tool_calls WHERE session_id = ? AND call_id = ? ORDER BY rowid DESC LIMIT 1)"
)
_UNSETTLED = "status IN ('requested', 'approved', 'running') AND result_message_id IS NULL"


def record_requested(
    conn: Connection,
    session_id: str,
    message_id: str,
    calls: Sequence[ToolCall],
    created: str,
    make_id: Callable[[], str] = new_id,
) -> None:
    conn.executemany(
        _INSERT, [(make_id(), call.id, session_id, message_id, call.name, call.raw_arguments, created) for call in calls]
    )


def complete(
    conn: Connection, session_id: str, call_id: str, result_message_id: str, result: str | None, when: str
) -> None:
    conn.execute(_COMPLETE, (result_message_id, result, when, session_id, call_id))


def row_id(conn: Connection, session_id: str, call_id: str) -> str:
    """The store's id of the latest call with this model-given id in the session."""
    row = conn.execute(
        "SELECT id FROM tool_calls WHERE session_id = ? AND call_id = ? ORDER BY rowid DESC LIMIT 1",
        (session_id, call_id),
    ).fetchone()
    if row is None:
        raise ToolCallNotFound(
            f"no tool call {call_id!r} was recorded in session {session_id!r}; append the assistant "
            "message that requested it first"
        )
    found: str = row[0]
    return found


def _from_row(row: Any, approval: ApprovalRecord | None) -> ToolCallRecord:
    return record_from_row(
        ToolCallRecord, row, requested=datetime.fromisoformat(row["requested"]), decided=parse_time(row["decided"]),
        started=parse_time(row["started"]), finished=parse_time(row["finished"]), approval=approval,
    )


def _approval_from_row(row: Any) -> ApprovalRecord:
    return record_from_row(
        ApprovalRecord, row, edited_arguments=from_json(row["edited_arguments"]),
        created=datetime.fromisoformat(row["created"]),
    )


def select(conn: Connection, where: str, params: Sequence[Any]) -> list[ToolCallRecord]:
    """Tool calls matching ``where``, in order, each with its latest decision."""
    calls = rows(conn, f"SELECT {_COLUMNS} FROM tool_calls WHERE {where} ORDER BY rowid", params)
    if not calls:
        return []
    latest: dict[str, ApprovalRecord] = {}
    marks = ",".join("?" * len(calls))
    for row in rows(
        conn,
        f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE tool_call IN ({marks}) ORDER BY rowid",
        [call["id"] for call in calls],
    ):
        latest[row["tool_call"]] = _approval_from_row(row)  # the latest decision wins
    return [_from_row(call, latest.get(call["id"])) for call in calls]


def in_session(conn: Connection, session_id: str) -> list[ToolCallRecord]:
    return select(conn, "session_id = ?", (session_id,))


def pending(conn: Connection, session_id: str) -> list[ToolCallRecord]:
    """Calls that never reached a result (requested, approved but not started, or left running)."""
    return select(conn, f"session_id = ? AND {_UNSETTLED}", (session_id,))


def record_approval(
    conn: Connection,
    session_id: str,
    call_id: str,
    decision: Decision,
    *,
    who: str | None,
    edited_arguments: dict[str, Any] | None,
    reason: str | None,
) -> ApprovalRecord:
    tool_call = row_id(conn, session_id, call_id)
    record = ApprovalRecord(
        id=new_id(), tool_call=tool_call, session_id=session_id, call_id=call_id, decision=decision, who=who,
        edited_arguments=edited_arguments, reason=reason, created=datetime.now(timezone.utc),
    )
    insert_record(conn, "approvals", record)
    # A decision moves only a call with no result yet: undecided, or left running by a
    # restart and asked again.  A late duplicate is kept in the approvals table but
    # does not rewind a call that finished.
    conn.execute(
        f"UPDATE tool_calls SET status = ?, decided = ? WHERE id = ? AND {_UNSETTLED}",
        (decision, utc_text(record.created), tool_call),
    )
    return record


def started(conn: Connection, session_id: str, call_id: str) -> None:
    now = utc_text()
    conn.execute(
        "UPDATE tool_calls SET status = 'running', started = ? WHERE id = ?", (now, row_id(conn, session_id, call_id))
    )


def finished(
    conn: Connection,
    session_id: str,
    call_id: str,
    *,
    result: str | None,
    error: str | None,
    duration_ms: float | None,
) -> None:
    now = utc_text()
    call = row_id(conn, session_id, call_id)
    if duration_ms is None:  # measured from the recorded start, when there is one
        (started_at,) = conn.execute("SELECT started FROM tool_calls WHERE id = ?", (call,)).fetchone()
        if started_at is not None:
            duration_ms = (datetime.fromisoformat(now) - datetime.fromisoformat(started_at)).total_seconds() * 1000.0
    conn.execute(
        "UPDATE tool_calls SET status = ?, result = ?, error = ?, finished = ?, duration_ms = ? WHERE id = ?",
        ("error" if error is not None else "done", result, error, now, duration_ms, call),
    )

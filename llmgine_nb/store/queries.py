"""The reporting SQL behind ``Store``: session lists, search, usage totals, history copies.

Plain functions over a ``sqlite3.Connection`` returning row tuples; the
``Store`` turns them into records and holds the lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

__all__ = ["list_sessions", "search", "usage", "copy_history"]

# A call whose price is unknown (cost NULL) is counted, not summed as $0: ``cost``
# stays the sum of the known costs and front ends say "cost unknown" or ">= $x".
# A failed call that used no tokens was not billed, so it is not "unpriced".
_UNPRICED = "(cost IS NULL AND (error IS NULL OR coalesce(input_tokens, 0) + coalesce(output_tokens, 0) > 0))"

_LIST_SESSIONS = """
SELECT s.id, s.name, s.model, s.created, s.notebook, s.forked_from_session, s.forked_from_message,
       s.engine_state, s.metadata,
       (SELECT count(*) FROM messages m WHERE m.session_id = s.id) AS message_count,
       max(s.created,
           coalesce((SELECT created FROM messages m WHERE m.session_id = s.id ORDER BY seq DESC LIMIT 1), ''),
           coalesce(c.last_call, '')) AS last_activity,
       coalesce(c.calls, 0), coalesce(c.input_tokens, 0), coalesce(c.output_tokens, 0),
       coalesce(c.cached_tokens, 0), coalesce(c.cost, 0.0), coalesce(c.unpriced_calls, 0)
FROM sessions s
LEFT JOIN (
    SELECT session_id, count(*) AS calls, sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens, sum(cached_tokens) AS cached_tokens,
           total(cost) AS cost, sum({unpriced}) AS unpriced_calls, max(created) AS last_call
    FROM llm_calls GROUP BY session_id
) c ON c.session_id = s.id
{where}
ORDER BY last_activity DESC
{limit}
"""


def list_sessions(conn: sqlite3.Connection, *, limit: int | None, notebook: str | None) -> list[tuple[Any, ...]]:
    params: list[Any] = []
    where = ""
    if notebook is not None:
        where = "WHERE s.notebook = ?"
        params.append(notebook)
    sql = _LIST_SESSIONS.format(unpriced=_UNPRICED, where=where, limit=f"LIMIT {int(limit)}" if limit is not None else "")
    return conn.execute(sql, params).fetchall()


def search(
    conn: sqlite3.Connection,
    match: str,
    *,
    session_id: str | None,
    limit: int,
    highlight: tuple[str, str],
) -> list[tuple[Any, ...]]:
    params: list[Any] = [highlight[0], highlight[1], match]
    where = ""
    if session_id is not None:
        where = "AND m.session_id = ?"
        params.append(session_id)
    params.append(int(limit))
    sql = f"""
        SELECT m.id, m.session_id, s.name, m.seq, m.role,
               snippet(messages_fts, 0, ?, ?, '…', 16), m.content, m.created, messages_fts.rank
        FROM messages_fts
        JOIN messages m ON m.pk = messages_fts.rowid
        LEFT JOIN sessions s ON s.id = m.session_id
        WHERE messages_fts MATCH ? {where}
        ORDER BY messages_fts.rank
        LIMIT ?
    """
    return conn.execute(sql, params).fetchall()


_USAGE_KEYS = {"session": "session_id", "model": "model", "day": "substr(created, 1, 10)"}


def usage(conn: sqlite3.Connection, by: str, *, session_id: str | None, since: str | None) -> list[tuple[Any, ...]]:
    key = _USAGE_KEYS[by]
    where, params = [], []
    if session_id is not None:
        where.append("session_id = ?")
        params.append(session_id)
    if since is not None:
        where.append("created >= ?")
        params.append(since)
    sql = f"""
        SELECT {key} AS key, count(*), sum(error IS NOT NULL), coalesce(sum(input_tokens), 0),
               coalesce(sum(output_tokens), 0), coalesce(sum(cached_tokens), 0), total(cost), avg(latency_ms),
               sum({_UNPRICED})
        FROM llm_calls
        {"WHERE " + " AND ".join(where) if where else ""}
        GROUP BY key
        ORDER BY key
    """
    return conn.execute(sql, params).fetchall()


def copy_history(
    conn: sqlite3.Connection, source_id: str, target_id: str, *, upto_seq: int, new_id: Callable[[], str]
) -> dict[str, str]:
    """Copy a session's messages (seq <= upto_seq) with the rows hanging off them; return old->new message ids."""
    rows = conn.execute(
        "SELECT id, seq, role, content, tool_calls, tool_call_id, name, model, status, pinned, created "
        "FROM messages WHERE session_id = ? AND seq <= ? ORDER BY seq",
        (source_id, upto_seq),
    ).fetchall()
    ids = {row[0]: new_id() for row in rows}
    conn.executemany(
        "INSERT INTO messages (id, session_id, seq, role, content, tool_calls, tool_call_id, name, model, "
        "status, pinned, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [(ids[r[0]], target_id, *r[1:]) for r in rows],
    )

    calls = conn.execute(
        "SELECT id, call_id, message_id, tool, arguments, status, result, error, result_message_id, requested, "
        "decided, started, finished, duration_ms FROM tool_calls WHERE session_id = ? ORDER BY rowid",
        (source_id,),
    ).fetchall()
    call_ids: dict[str, str] = {}
    copied_calls = []
    for (row_id, call_id, message_id, tool, arguments, status, result, error, result_message_id,
         requested, decided, started, finished, duration_ms) in calls:
        if message_id not in ids:
            continue
        if result_message_id in ids:
            # Settled within the copied history: copy it, decisions included.
            call_ids[row_id] = new_id()
            copied_calls.append(
                (call_ids[row_id], call_id, target_id, ids[message_id], tool, arguments, status, result, error,
                 ids[result_message_id], requested, decided, started, finished, duration_ms)
            )
        else:
            # Its outcome lies after the fork point: in the fork it is a fresh
            # request, to be decided again.
            copied_calls.append(
                (new_id(), call_id, target_id, ids[message_id], tool, arguments, "requested", None, None,
                 None, requested, None, None, None, None)
            )
    conn.executemany(
        "INSERT INTO tool_calls (id, call_id, session_id, message_id, tool, arguments, status, result, error, "
        "result_message_id, requested, decided, started, finished, duration_ms) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        copied_calls,
    )

    approvals = conn.execute(
        "SELECT tool_call, call_id, decision, who, edited_arguments, reason, created FROM approvals "
        "WHERE session_id = ? ORDER BY rowid",
        (source_id,),
    ).fetchall()
    conn.executemany(
        "INSERT INTO approvals (id, tool_call, session_id, call_id, decision, who, edited_arguments, reason, "
        "created) VALUES (?,?,?,?,?,?,?,?,?)",
        [(new_id(), call_ids[a[0]], target_id, *a[1:]) for a in approvals if a[0] in call_ids],
    )

    conn.executemany(
        "INSERT INTO memory (id, session_id, text, created) VALUES (?,?,?,?)",
        [
            (new_id(), target_id, text, created)
            for text, created in conn.execute(
                "SELECT text, created FROM memory WHERE session_id = ? ORDER BY rowid", (source_id,)
            ).fetchall()
        ],
    )
    conn.executemany(
        "INSERT INTO summaries (id, session_id, upto_message_id, text, covered, created) VALUES (?,?,?,?,?,?)",
        [
            (new_id(), target_id, ids[upto], text, covered, created)
            for upto, text, covered, created in conn.execute(
                "SELECT upto_message_id, text, covered, created FROM summaries WHERE session_id = ? ORDER BY rowid",
                (source_id,),
            ).fetchall()
            if upto in ids
        ],
    )
    return ids


"""Model calls (usage, cost, timings) and the usage totals built from them.

Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL), on session ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .database import Connection, new_id, rows
from .records import LLMCall, UsageRow
from .rows import record_from_row, utc_text
from .sessions import UNPRICED

__all__ = ["row", "insert", "select", "usage"]

_COLUMNS = (
    "id, session_id, message_id, model, provider, input_tokens, output_tokens, cached_tokens, "
    "cost, latency_ms, ttft_ms, error, created"
)
_INSERT = f"INSERT INTO llm_calls ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"


def row(call: LLMCall, session_id: str | None) -> tuple[Any, ...]:
    """Values for an insert, in ``_COLUMNS`` order (a new id when the call has none)."""
    return (
        call.id or new_id(),
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


def insert(conn: Connection, values: Sequence[tuple[Any, ...]]) -> None:
    conn.executemany(_INSERT, values)


def select(conn: Connection, session_id: str | None) -> list[LLMCall]:
    """Stored model calls, oldest first (of one session when given)."""
    if session_id is None:
        found = rows(conn, f"SELECT {_COLUMNS} FROM llm_calls ORDER BY created")
    else:
        found = rows(conn, f"SELECT {_COLUMNS} FROM llm_calls WHERE session_id = ? ORDER BY created", (session_id,))
    return [
        record_from_row(
            LLMCall, r, input_tokens=r["input_tokens"] or 0, output_tokens=r["output_tokens"] or 0,
            cached_tokens=r["cached_tokens"] or 0, created=datetime.fromisoformat(r["created"]),
        )
        for r in found
    ]


_USAGE_KEYS = {"session": "session_id", "model": "model", "day": "substr(created, 1, 10)"}


def usage(conn: Connection, by: str, *, session_id: str | None, since: str | None) -> list[UsageRow]:
    """Token, cost and call totals grouped by session, model or UTC day."""
    key = _USAGE_KEYS[by]
    where, params = [], []
    if session_id is not None:
        where.append("session_id = ?")
        params.append(session_id)
    if since is not None:
        where.append("created >= ?")
        params.append(since)
    sql = f"""
        SELECT {key} AS key, count(*) AS calls, sum(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END) AS errors,
               coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
               coalesce(sum(cached_tokens), 0) AS cached_tokens, coalesce(sum(cost), 0.0) AS cost,
               avg(latency_ms) AS mean_latency_ms, coalesce(sum({UNPRICED}), 0) AS unpriced_calls
        FROM llm_calls
        {"WHERE " + " AND ".join(where) if where else ""}
        GROUP BY key
        ORDER BY key
    """
    return [record_from_row(UsageRow, r) for r in rows(conn, sql, params)]

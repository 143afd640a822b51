"""A session's event stream: events numbered 1, 2, 3 ... per session, without gaps.

    next_seq = last_seq(store, session_id) + 1
    append_numbered(store, [(session_id, seq, event, payload), ...])
    numbered_events(store, session_id, after=12)   # [(13, '{...}'), (14, '{...}'), ...]

The numbers live in the event log's own table (``events.seq``, migration
m005), so a numbered event is also an ordinary logged event that
``Store.events()`` reads.  A front end that saw event 12 asks for what comes
after 12 and misses nothing, sees nothing twice.  The numbers are given by
the one writer of a session's stream (``llmgine_nb.server.stream``); the
unique index on ``(session_id, seq)`` refuses a second writer's duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..messages import Message
from .rows import utc_text

if TYPE_CHECKING:
    from .store import Store

__all__ = ["append_numbered", "last_seq", "numbered_events"]

_INSERT = "INSERT INTO events (id, type, session_id, payload, created, seq) VALUES (?,?,?,?,?,?)"


def last_seq(store: Store, session_id: str) -> int:
    """The highest number given in this session's stream so far (0 when none)."""
    rows = store.database.read("SELECT max(seq) FROM events WHERE session_id = ?", (session_id,))
    return int(rows[0][0] or 0)


def append_numbered(store: Store, rows: Sequence[tuple[str, int, Message, str]]) -> None:
    """Write ``(session_id, seq, event, payload_json)`` rows in one transaction.

    ``payload_json`` is the event's JSON, already redacted by the caller.
    """
    values = [
        (event.id, event.type_name, session_id, payload, utc_text(event.timestamp), seq)
        for session_id, seq, event, payload in rows
    ]
    with store.transaction() as conn:
        conn.executemany(_INSERT, values)


def numbered_events(
    store: Store, session_id: str, *, after: int = 0, limit: int | None = None
) -> list[tuple[int, str]]:
    """The session's numbered events after ``after``, oldest first, as ``(seq, payload_json)``."""
    sql = "SELECT seq, payload FROM events WHERE session_id = ? AND seq > ? ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [(seq, payload) for seq, payload in store.database.read(sql, (session_id, after))]

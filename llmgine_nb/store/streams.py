"""A session's event stream: events numbered 1, 2, 3 ... per session, without gaps.

    next_seq = last_seq(store, session_id) + 1
    append_numbered(store, [(session_id, seq, event, payload), ...])
    numbered_events(store, session_id, after=12)   # [(13, '{...}'), (14, '{...}'), ...]
    number_and_append(store, [(session_id, event, payload), ...])   # -> [13, 14, ...]

The numbers live in the event log's own table (``events.seq``, migration
m005), so a numbered event is also an ordinary logged event that
``Store.events()`` reads.  A front end that saw event 12 asks for what comes
after 12 and misses nothing, sees nothing twice.

Two ways to number: ``append_numbered`` writes numbers its caller gave (the
server's one writer per session, ``llmgine_nb.server.stream``, which keeps the
last number in memory); ``number_and_append`` lets the store give them inside
the write, which stays gap-free and unique when several processes write one
session's stream (engine workers sharing a PostgreSQL store).  Either way the
unique index on ``(session_id, seq)`` refuses a duplicate.  Both are fenced
(``Store.fence``): a worker that lost the session writes none of its events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..messages import Message
from .database import serialise_session
from .rows import utc_text

if TYPE_CHECKING:
    from .store import Store

__all__ = ["append_numbered", "last_seq", "number_and_append", "numbered_events"]

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
        if store.fencing is not None:
            for session_id in sorted({row[0] for row in rows}):
                store.fence(conn, session_id)
        conn.executemany(_INSERT, values)


def numbered_events(
    store: Store, session_id: str, *, after: int = 0, limit: int | None = None
) -> list[tuple[int, str]]:
    """The session's numbered events after ``after``, oldest first, as ``(seq, payload_json)``."""
    sql = "SELECT seq, payload FROM events WHERE session_id = ? AND seq > ? ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [(seq, payload) for seq, payload in store.database.read(sql, (session_id, after))]


def number_and_append(store: Store, rows: Sequence[tuple[str, Message, str]]) -> list[int]:
    """Give each ``(session_id, event, payload_json)`` its session's next number and write them all
    in one transaction; return the numbers, in the order of ``rows``.

    The numbers are allocated inside the write: each session's last number is
    read after taking the session's write turn (``serialise_session``), so
    several processes (engine workers) writing the same session's stream at
    once still number it 1, 2, 3 ... with no gap and no number twice, and a
    failed write takes its numbers with it.  Sessions are taken in sorted order,
    so two writers of the same sessions never wait for each other in a circle.
    """
    with store.transaction() as conn:
        following: dict[str, int] = {}
        for session_id in sorted({session_id for session_id, _, _ in rows}):
            serialise_session(conn, session_id)
            store.fence(conn, session_id)
            (last,) = conn.execute("SELECT max(seq) FROM events WHERE session_id = ?", (session_id,)).fetchone()
            following[session_id] = int(last or 0)
        numbers, values = [], []
        for session_id, event, payload in rows:
            following[session_id] += 1
            numbers.append(following[session_id])
            values.append((event.id, event.type_name, session_id, payload, utc_text(event.timestamp), numbers[-1]))
        conn.executemany(_INSERT, values)
    return numbers

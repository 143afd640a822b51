"""Memory notes (per session, or global) and stored summaries.

Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL), on session ids.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .database import Connection, new_id, rows
from .records import MemoryNote, StoredSummary, StoreError
from .rows import insert_record, record_from_row

__all__ = ["add", "notes", "delete", "save_summary", "latest_summary"]


def add(conn: Connection, text: str, session_id: str | None) -> MemoryNote:
    note = MemoryNote(id=new_id(), session_id=session_id, text=text, created=datetime.now(timezone.utc))
    insert_record(conn, "memory", note)
    return note


def notes(conn: Connection, session_id: str | None, *, include_global: bool) -> list[MemoryNote]:
    """A session's notes (plus the global ones), or only the global ones, oldest first."""
    columns = "id, session_id, text, created"
    if session_id is None:
        found = rows(conn, f"SELECT {columns} FROM memory WHERE session_id IS NULL ORDER BY rowid")
    else:
        clause = "session_id = ? OR session_id IS NULL" if include_global else "session_id = ?"
        found = rows(conn, f"SELECT {columns} FROM memory WHERE {clause} ORDER BY rowid", (session_id,))
    return [record_from_row(MemoryNote, r, created=datetime.fromisoformat(r["created"])) for r in found]


def delete(conn: Connection, note_id: str) -> None:
    if conn.execute("DELETE FROM memory WHERE id = ?", (note_id,)).rowcount == 0:
        raise StoreError(f"no memory note has the id {note_id!r}")


def save_summary(conn: Connection, session_id: str, upto_message_id: str, text: str, covered: int) -> StoredSummary:
    summary = StoredSummary(
        id=new_id(), session_id=session_id, upto_message_id=upto_message_id, text=text, covered=covered,
        created=datetime.now(timezone.utc),
    )
    insert_record(conn, "summaries", summary)
    return summary


def latest_summary(conn: Connection, session_id: str) -> StoredSummary | None:
    found = rows(
        conn,
        "SELECT id, session_id, upto_message_id, text, covered, created FROM summaries "
        "WHERE session_id = ? ORDER BY rowid DESC LIMIT 1",
        (session_id,),
    )
    if not found:
        return None
    return record_from_row(StoredSummary, found[0], created=datetime.fromisoformat(found[0]["created"]))

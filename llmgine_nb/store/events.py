"""The event log: every bus message worth keeping, as JSON, with credential-named fields blanked.

Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL).  Events are keyed by bus
session id (a bus session need not have a stored session record).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from ..messages import Message, UnknownEvent, UnknownMessageType
from ..secrets import json_names_secret, redact_named
from .database import Connection, rows
from .rows import utc_text

__all__ = ["UnknownEvent", "row", "insert", "select", "prune"]

log = logging.getLogger("llmgine_nb.store")

_INSERT = "INSERT INTO events (id, type, session_id, payload, created) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING"


def row(event: Message, payload: str | None = None) -> tuple[Any, ...]:
    """Values for an insert; ``payload`` is the event's ``to_json()`` when already made."""
    if payload is None:
        payload = event.to_json()
    if json_names_secret(payload):
        payload = json.dumps(redact_named(json.loads(payload)), ensure_ascii=False)
    return (event.id, event.type_name, event.session_id, payload, utc_text(event.timestamp))


def insert(conn: Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """Append events (logging the same event twice keeps one row)."""
    conn.executemany(_INSERT, values)


def _from_row(type_name: str, payload: str) -> Message:
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


def select(
    conn: Connection,
    *,
    session_id: str | None,
    types: Sequence[type[Message] | str] | None,
    since: datetime | date | None,
    until: datetime | date | None,
    limit: int | None,
) -> list[Message]:
    """Logged events as their own classes, oldest first."""
    where: list[str] = []
    params: list[Any] = []
    if session_id is not None:
        where.append("session_id = ?")
        params.append(session_id)
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
    return [_from_row(r["type"], r["payload"]) for r in rows(conn, sql, params)]


def prune(conn: Connection, before: datetime | date) -> int:
    """Delete events logged before ``before``; return how many."""
    deleted: int = conn.execute("DELETE FROM events WHERE created < ?", (utc_text(before),)).rowcount
    return deleted

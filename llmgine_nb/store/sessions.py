"""Session records: create, find, resolve a name to an id, rename, set the model, list with totals, delete.

Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL) (the ``Store`` facade holds the
lock and the transaction).  ``resolve_id`` turns a session id, name or
``SessionRecord`` into the id, once, at the edge: everything below works on ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..secrets import redact_named
from .database import Connection, integrity_errors, one, rows
from .records import SessionNotFound, SessionRecord, SessionSummary, StoreError
from .rows import from_json, record_from_row, to_json, utc_text

__all__ = [
    "COLUMNS",
    "from_row",
    "new_record",
    "insert",
    "find",
    "resolve_id",
    "rename",
    "set_model",
    "set_engine_state",
    "update_metadata",
    "summaries",
    "delete",
]

COLUMNS = "id, name, model, created, notebook, forked_from_session, forked_from_message, engine_state, metadata"

# Tables whose rows belong to a session, children before parents.
_OWNED_TABLES = ("approvals", "tool_calls", "messages", "llm_calls", "events", "memory", "summaries")


def from_row(row: Any) -> SessionRecord:
    return record_from_row(
        SessionRecord, row, created=datetime.fromisoformat(row["created"]),
        engine_state=from_json(row["engine_state"], {}), metadata=from_json(row["metadata"], {}),
    )


def new_record(record: SessionRecord) -> SessionRecord:
    """``record`` with credential-named entries of its free-form dicts blanked."""
    return SessionRecord(
        **{
            **record.__dict__,
            "engine_state": redact_named(dict(record.engine_state)),
            "metadata": redact_named(dict(record.metadata)),
        }
    )


def insert(conn: Connection, record: SessionRecord) -> None:
    if record.name is not None and find(conn, record.name) is not None:
        raise StoreError(
            f"a session named {record.name!r} already exists; resume it with "
            f"load_session({record.name!r}) or choose another name"
        )
    try:
        conn.execute(
            f"INSERT INTO sessions ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
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
    except integrity_errors() as exc:
        raise StoreError(f"a session with id {record.id!r} already exists; omit id= to get a new one") from exc


def find(conn: Connection, ref: str) -> SessionRecord | None:
    """The session whose id, else whose name, is ``ref``."""
    row = one(conn, f"SELECT {COLUMNS} FROM sessions WHERE id = ?", (ref,))
    if row is None:
        row = one(conn, f"SELECT {COLUMNS} FROM sessions WHERE name = ?", (ref,))
    return None if row is None else from_row(row)


def resolve_id(conn: Connection, ref: str | SessionRecord) -> str:
    """The id of the session ``ref`` names; raises ``SessionNotFound``."""
    if isinstance(ref, SessionRecord):
        return ref.id
    if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (ref,)).fetchone():
        return ref
    row = conn.execute("SELECT id FROM sessions WHERE name = ?", (ref,)).fetchone()
    if row is None:
        raise SessionNotFound(f"no session has the id or name {ref!r}; create it with Store.create_session() first")
    session_id: str = row[0]
    return session_id


def rename(conn: Connection, session_id: str, name: str | None) -> None:
    if name is not None:
        other = find(conn, name)
        if other is not None and other.id != session_id:
            raise StoreError(f"a session named {name!r} already exists; choose another name")
    conn.execute("UPDATE sessions SET name = ? WHERE id = ?", (name, session_id))


def set_model(conn: Connection, session_id: str, model: str) -> None:
    conn.execute("UPDATE sessions SET model = ? WHERE id = ?", (model, session_id))


def set_engine_state(conn: Connection, session_id: str, state: dict[str, Any]) -> None:
    conn.execute("UPDATE sessions SET engine_state = ? WHERE id = ?", (to_json(redact_named(state)), session_id))


def update_metadata(conn: Connection, session_id: str, values: dict[str, Any]) -> None:
    row = one(conn, "SELECT metadata FROM sessions WHERE id = ?", (session_id,))
    merged = {**from_json(row["metadata"] if row else None, {}), **values}
    conn.execute("UPDATE sessions SET metadata = ? WHERE id = ?", (to_json(redact_named(merged)), session_id))


# A call whose price is unknown (cost NULL) is counted, not summed as $0: ``cost``
# stays the sum of the known costs and front ends say "cost unknown" or ">= $x".
# A failed call that used no tokens was not billed, so it is not "unpriced".
# 1 for such a call, 0 for the others (an integer: summed alike by SQLite and PostgreSQL).
UNPRICED = (
    "CASE WHEN cost IS NULL AND (error IS NULL OR coalesce(input_tokens, 0) + coalesce(output_tokens, 0) > 0) "
    "THEN 1 ELSE 0 END"
)

_SUMMARIES = """
SELECT s.id, s.name, s.model, s.created, s.notebook, s.forked_from_session, s.forked_from_message,
       s.engine_state, s.metadata,
       (SELECT count(*) FROM messages m WHERE m.session_id = s.id) AS message_count,
       (SELECT max(moment) FROM (SELECT s.created AS moment
           UNION ALL SELECT (SELECT created FROM messages m WHERE m.session_id = s.id ORDER BY seq DESC LIMIT 1)
           UNION ALL SELECT c.last_call) AS activity) AS last_activity,
       coalesce(c.calls, 0) AS llm_calls, coalesce(c.input_tokens, 0) AS input_tokens,
       coalesce(c.output_tokens, 0) AS output_tokens, coalesce(c.cached_tokens, 0) AS cached_tokens,
       coalesce(c.cost, 0.0) AS cost, coalesce(c.unpriced_calls, 0) AS unpriced_calls
FROM sessions s
LEFT JOIN (
    SELECT session_id, count(*) AS calls, sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens, sum(cached_tokens) AS cached_tokens,
           coalesce(sum(cost), 0.0) AS cost, sum({unpriced}) AS unpriced_calls, max(created) AS last_call
    FROM llm_calls GROUP BY session_id
) c ON c.session_id = s.id
{where}
ORDER BY last_activity DESC
{limit}
"""


def summaries(conn: Connection, *, limit: int | None, notebook: str | None) -> list[SessionSummary]:
    """Sessions with message counts, last activity and usage totals, most recent first."""
    params: list[Any] = []
    where = ""
    if notebook is not None:
        where = "WHERE s.notebook = ?"
        params.append(notebook)
    sql = _SUMMARIES.format(unpriced=UNPRICED, where=where, limit=f"LIMIT {int(limit)}" if limit is not None else "")
    return [
        record_from_row(
            SessionSummary, row, session=from_row(row), last_activity=datetime.fromisoformat(row["last_activity"])
        )
        for row in rows(conn, sql, params)
    ]


def delete(conn: Connection, session_id: str) -> None:
    """Delete a session and every row that belongs to it."""
    for table in _OWNED_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
    conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

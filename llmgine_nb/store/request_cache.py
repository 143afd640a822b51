"""The opt-in request cache: the answer an exact request got, by the request's hash.

Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL).  The hash covers the model and
everything sent (messages, tools, options; see ``engine/requests.py``), so a
stored answer is only replayed for the very same request.
"""

from __future__ import annotations

import json
from typing import Any

from .database import Connection
from .rows import utc_text

__all__ = ["get", "put", "clear"]


def get(conn: Connection, request_hash: str) -> dict[str, Any] | None:
    """The stored answer to this request (its ``response`` fields), counting the hit, or None."""
    found = conn.execute("SELECT response FROM request_cache WHERE request_hash = ?", (request_hash,)).fetchone()
    if found is None:
        return None
    conn.execute("UPDATE request_cache SET hits = hits + 1 WHERE request_hash = ?", (request_hash,))
    response: dict[str, Any] = json.loads(found[0])
    return response


def put(conn: Connection, request_hash: str, model: str, response: dict[str, Any]) -> None:
    """Keep the answer to this request (a later answer to the same request replaces it)."""
    conn.execute(
        "INSERT INTO request_cache (request_hash, model, response, created) VALUES (?,?,?,?) "
        "ON CONFLICT (request_hash) DO UPDATE SET response = excluded.response, created = excluded.created",
        (request_hash, model, json.dumps(response, ensure_ascii=False), utc_text()),
    )


def clear(conn: Connection) -> int:
    """Forget every stored answer; return how many there were."""
    return conn.execute("DELETE FROM request_cache").rowcount

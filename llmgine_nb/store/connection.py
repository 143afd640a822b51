"""What the record modules need of a database connection, on either backend.

A ``sqlite3.Connection`` is one; so is ``postgres.PgConnection``, which takes
the same SQL (``?`` placeholders) and returns rows readable by column name.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Connection"]


class Connection(Protocol):
    """What the record modules use of a connection: SQL with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

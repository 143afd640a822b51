"""Full-text search over message content: the index, the query, the snippets.

Keeping the index current.  Writing each message into the FTS5 index as it
is stored would cost about as much as storing it (a new index segment per
transaction), on every turn; searching is rare.  So new messages wait in
``messages_fts_pending`` (migration m004) and the *writer* indexes them in
batches: when ``BATCH`` messages are waiting, the transaction that appends
more indexes them all (``index_pending_if_due``), once per ``BATCH``
messages rather than once per turn.  Opening a store indexes any larger
backlog (left by an older version) in short transactions.

Searching only reads.  It runs on the database's read connection inside one
snapshot (WAL: it never holds a writer up, however long it takes), matches
the index for indexed messages and a small in-memory index of the waiting
ones (at most ``BATCH``, rebuilt per search in the connection's private
``temp`` schema), and merges the two by rank.

Every query string gets results or a sentence: typed text is split into
words and each quoted (NUL characters and lone surrogates, which SQLite
cannot take, are dropped); a query with no word to look for is a
``ValueError`` that says so; ``raw=True`` passes FTS5 syntax through and a
malformed one is a ``StoreError`` that says what to do.

Snippets.  SQLite's ``snippet()`` (and ``highlight()``) cost time quadratic
in the number of matches in a message (one 10 MB message took minutes).
Over short messages it is used as is; a long one is cut into pieces and
``snippet()`` runs on the best-matching piece (``long_snippet``).
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Any

from .records import SearchHit, StoreError

__all__ = ["BATCH", "index_pending_if_due", "backlog", "index_waiting", "match_text", "search"]

#: Messages waiting to be indexed that make the next append index them all.
BATCH = 256
#: Longer messages get their snippet from ``long_snippet`` rather than straight from SQLite's.
SNIPPET_DIRECT_LIMIT = 20_000
_PIECE = 4_000  # characters per piece in ``long_snippet``
_ELLIPSIS = "…"

_INDEX_PENDING = (
    "INSERT INTO messages_fts (rowid, content) SELECT m.pk, m.content FROM messages m "
    "JOIN messages_fts_pending p ON p.pk = m.pk WHERE p.pk <= ?"
)


def index_pending_if_due(conn: Any) -> None:
    """Inside a write transaction: index the waiting messages when ``BATCH`` of them have piled up.

    Only SQLite queues messages for its index; PostgreSQL indexes each with its row.
    """
    if not isinstance(conn, sqlite3.Connection):
        return
    (waiting,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM messages_fts_pending LIMIT ?)", (BATCH,)
    ).fetchone()
    if waiting >= BATCH:
        _index_upto(conn, None)


def _index_upto(conn: sqlite3.Connection, upto: int | None) -> None:
    if upto is None:
        (upto,) = conn.execute("SELECT max(pk) FROM messages_fts_pending").fetchone()
        if upto is None:
            return
    conn.execute(_INDEX_PENDING, (upto,))
    conn.execute("DELETE FROM messages_fts_pending WHERE pk <= ?", (upto,))


def backlog(conn: sqlite3.Connection) -> bool:
    """Whether more than ``BATCH`` messages wait (a database written by an older version)."""
    (waiting,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM messages_fts_pending LIMIT ?)", (BATCH + 1,)
    ).fetchone()
    return bool(waiting > BATCH)


def index_waiting(conn: sqlite3.Connection, per_transaction: int = 500) -> bool:
    """Index up to ``per_transaction`` waiting messages (call inside a write transaction);
    return whether more are waiting."""
    (upto,) = conn.execute(
        "SELECT max(pk) FROM (SELECT pk FROM messages_fts_pending ORDER BY pk LIMIT ?)", (per_transaction,)
    ).fetchone()
    if upto is None:
        return False
    _index_upto(conn, upto)
    return conn.execute("SELECT EXISTS (SELECT 1 FROM messages_fts_pending)").fetchone()[0] == 1


# -- the query ------------------------------------------------------------------

_SURROGATES = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` without what SQLite cannot take: NUL characters and lone surrogates."""
    text = text.replace("\x00", " ")
    if _SURROGATES.search(text):
        # A valid pair (as JSON or surrogateescape may leave it) becomes its character; lone halves go.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\ufffd", "")
        text = _SURROGATES.sub("", text)
    return text


def match_text(query: str, *, raw: bool) -> str:
    """The FTS5 MATCH expression for ``query``: each typed word quoted, or the raw syntax as given."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("search needs at least one word to look for")
    cleaned = clean(query)
    if raw:
        if not cleaned.strip():
            raise ValueError("search needs at least one word to look for")
        return cleaned
    # Only letters and digits make tokens for the index; a "word" of punctuation alone
    # would quote to an empty phrase.
    words = [w for w in cleaned.split() if any(ch.isalnum() for ch in w)]
    if not words:
        raise ValueError(
            f"{query!r} has no word to look for (only spaces or punctuation); search for a word or a number"
        )
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


# -- running it -------------------------------------------------------------------

_COLUMNS = "m.id AS message_id, m.session_id, s.name AS session_name, m.seq, m.role, m.content, m.created"


def _select(index: str, where: str) -> str:
    # A short message gets SQLite's snippet here; a long one gets ``long_snippet``.
    return f"""
        SELECT {_COLUMNS}, {index}.rank AS rank,
               CASE WHEN length(m.content) <= {SNIPPET_DIRECT_LIMIT}
                    THEN snippet({index}, 0, :open, :close, '{_ELLIPSIS}', 16) END AS snippet
        FROM {index}
        JOIN messages m ON m.pk = {index}.rowid
        LEFT JOIN sessions s ON s.id = m.session_id
        WHERE {index} MATCH :match {where}
        ORDER BY {index}.rank
        LIMIT :limit
    """


def _fill_pending_index(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.pending_search USING fts5(content, tokenize='porter')"
    )
    conn.execute("DELETE FROM temp.pending_search")
    conn.execute(
        "INSERT INTO temp.pending_search (rowid, content) SELECT m.pk, m.content FROM main.messages m "
        "JOIN main.messages_fts_pending p ON p.pk = m.pk"
    )


def search(
    conn: sqlite3.Connection,
    query: str,
    *,
    session_id: str | None,
    limit: int,
    raw: bool,
    highlight: tuple[str, str],
) -> list[SearchHit]:
    """Best matches first, with snippets (run on a read connection, inside one snapshot)."""
    params: dict[str, Any] = {
        "match": match_text(query, raw=raw),
        "open": clean(highlight[0]),
        "close": clean(highlight[1]),
        "limit": int(limit),
        "session": session_id,
    }
    where = "AND m.session_id = :session" if session_id is not None else ""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    try:
        found = cursor.execute(_select("messages_fts", where), params).fetchall()
        _fill_pending_index(conn)
        found += cursor.execute(_select("pending_search", where), params).fetchall()
        found.sort(key=lambda row: row["rank"])
        return [_hit(conn, row, params) for row in found[: int(limit)]]
    except sqlite3.OperationalError as exc:
        if raw:
            raise StoreError(
                f"{query!r} is not a valid full-text query ({exc}); check the FTS5 syntax, "
                "or pass raw=False to search for the words as typed"
            ) from exc
        raise StoreError(f"searching for {query!r} failed ({exc}); try other words") from exc


def _hit(conn: sqlite3.Connection, row: sqlite3.Row, params: dict[str, Any]) -> SearchHit:
    snippet = row["snippet"]
    if snippet is None:
        snippet = long_snippet(conn, row["content"], params["match"], params["open"], params["close"])
    return SearchHit(
        message_id=row["message_id"],
        session_id=row["session_id"],
        session_name=row["session_name"],
        seq=row["seq"],
        role=row["role"],
        snippet=snippet,
        content=row["content"],
        created=datetime.fromisoformat(row["created"]),
        rank=row["rank"],
    )


def pieces_of(text: str, size: int = _PIECE) -> list[str]:
    """``text`` cut into pieces of about ``size`` characters, at spaces where there are any."""
    pieces, start, end_of_text = [], 0, len(text)
    while start < end_of_text:
        end = min(end_of_text, start + size)
        if end < end_of_text:
            space = max(text.rfind(" ", start + size // 2, end), text.rfind("\n", start + size // 2, end))
            if space > start:
                end = space + 1
        pieces.append(text[start:end])
        start = end
    return pieces


def long_snippet(conn: sqlite3.Connection, content: str, match: str, open_mark: str, close_mark: str) -> str:
    """The snippet of a long message, in time linear in its length.

    The text is cut into pieces of a few thousand characters, the pieces are
    indexed in a private in-memory table, and SQLite's ``snippet()`` runs on
    the best-matching piece only: the same tokenizer and query as the search,
    at a cost bounded by the piece's size.
    """
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.snippet_pieces USING fts5(content, tokenize='porter')")
    conn.execute("DELETE FROM temp.snippet_pieces")
    pieces = pieces_of(content)
    conn.executemany("INSERT INTO temp.snippet_pieces (rowid, content) VALUES (?, ?)", enumerate(pieces))
    best = conn.execute(
        f"SELECT rowid, snippet(snippet_pieces, 0, ?, ?, '{_ELLIPSIS}', 16) FROM snippet_pieces "
        "WHERE snippet_pieces MATCH ? ORDER BY rank LIMIT 1",
        (open_mark, close_mark, match),
    ).fetchone()
    conn.execute("DELETE FROM temp.snippet_pieces")
    if best is None:  # the match spans pieces (a phrase cut in two): show the beginning
        return " ".join(content[:200].split()[:16]) + _ELLIPSIS
    number, text = best
    if number > 0 and not text.startswith(_ELLIPSIS):
        text = _ELLIPSIS + text
    if number < len(pieces) - 1 and not text.endswith(_ELLIPSIS):
        text += _ELLIPSIS
    return str(text)

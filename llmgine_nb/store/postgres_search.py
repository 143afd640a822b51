"""History search on PostgreSQL: a stored ``tsvector`` per message, ``websearch_to_tsquery``, ``ts_headline``.

The index needs no upkeep: ``messages.search`` is a generated column (migration
m002 in ``postgres_schema.py``) over the first ``INDEXED_CHARACTERS`` of each
message, with a GIN index, so a message is searchable once its transaction
commits and an edit or a delete changes the index with the row.

The same guarantees as SQLite's search (``search.py``) for any query string:
results or a sentence.  Typed text is cleaned the same way (NUL characters and
lone surrogates dropped) and a query with no word to look for is a
``ValueError`` that says so; its words are all required
(``plainto_tsquery``).  ``raw=True`` takes web-search syntax
(``websearch_to_tsquery``: ``"a phrase"``, ``or``, ``-word``; an ``AND`` as
FTS5 writes it is accepted and means what juxtaposition means), which never
fails to parse.

Snippets come from ``ts_headline`` (at most 16 words around the best match,
the match between the ``highlight`` marks, ``…`` where text was cut), run on
the page of results only, never on every match.  Ranks are ``-ts_rank``, so
that lower is better as with SQLite's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import psycopg

from .postgres_schema import INDEXED_CHARACTERS
from .records import SearchHit, StoreError
from .search import clean
from .search import match_text as _typed_words

__all__ = ["match_text", "search", "backlog", "index_waiting"]

_ELLIPSIS = "…"
# ts_headline marks the match with these (private-use characters, which its option
# parser takes as they are); they become the caller's highlight marks afterwards.
_OPEN, _CLOSE = "\ue000", "\ue001"
_HEADLINE_OPTIONS = f"StartSel={_OPEN}, StopSel={_CLOSE}, MaxWords=16, MinWords=12, ShortWord=0, MaxFragments=0"
_FTS5_AND = re.compile(r"(?<!\S)AND(?!\S)")


def match_text(query: str, *, raw: bool) -> str:
    """The text handed to PostgreSQL's query parser; raises ``ValueError`` when there is nothing to look for."""
    if raw:
        _typed_words(query, raw=True)  # the same sentence for an empty query
        return _FTS5_AND.sub(" ", clean(query))
    _typed_words(query, raw=False)  # ... and for one made of punctuation only
    return clean(query)


def backlog(conn: Any) -> bool:
    """Nothing ever waits to be indexed here (the column is computed with the row)."""
    return False


def index_waiting(conn: Any, per_transaction: int = 500) -> bool:
    return False


_SEARCH = f"""
SELECT top.*, s.name AS session_name,
       ts_headline('llmgine_search', left(top.content, {INDEXED_CHARACTERS}), top.q, ?) AS snippet
FROM (
    SELECT m.id AS message_id, m.session_id, m.seq, m.role, m.content, m.created, q,
           -ts_rank(m.search, q) AS rank
    FROM messages m, {{parser}}('llmgine_search', ?) AS q
    WHERE m.search @@ q {{where}}
    ORDER BY rank, m.pk
    LIMIT ?
) AS top
LEFT JOIN sessions s ON s.id = top.session_id
ORDER BY top.rank
"""


def search(
    conn: Any,
    query: str,
    *,
    session_id: str | None,
    limit: int,
    raw: bool,
    highlight: tuple[str, str],
) -> list[SearchHit]:
    """Best matches first, with snippets (run on a read connection, inside one snapshot)."""
    text = match_text(query, raw=raw)
    sql = _SEARCH.format(
        parser="websearch_to_tsquery" if raw else "plainto_tsquery",
        where="AND m.session_id = ?" if session_id is not None else "",
    )
    params: list[Any] = [_HEADLINE_OPTIONS, text]
    if session_id is not None:
        params.append(session_id)
    params.append(int(limit))
    try:
        found = conn.execute(sql, params).fetchall()
    except psycopg.Error as exc:
        raise StoreError(f"searching for {query!r} failed ({str(exc).strip()}); try other words") from exc
    marks = (clean(highlight[0]), clean(highlight[1]))
    return [_hit(row, marks) for row in found]


def _snippet(headline: str, content: str, marks: tuple[str, str]) -> str:
    plain = headline.replace(_OPEN, "").replace(_CLOSE, "")
    text = headline.replace(_OPEN, marks[0]).replace(_CLOSE, marks[1])
    body = content.strip()
    if plain and not body.startswith(plain[: min(len(plain), 40)]):
        text = _ELLIPSIS + text
    if plain and not body.endswith(plain[-min(len(plain), 40):]):
        text += _ELLIPSIS
    return text


def _hit(row: Any, marks: tuple[str, str]) -> SearchHit:
    return SearchHit(
        message_id=row["message_id"],
        session_id=row["session_id"],
        session_name=row["session_name"],
        seq=row["seq"],
        role=row["role"],
        snippet=_snippet(row["snippet"] or "", row["content"] or "", marks),
        content=row["content"],
        created=datetime.fromisoformat(row["created"]),
        rank=float(row["rank"]),
    )

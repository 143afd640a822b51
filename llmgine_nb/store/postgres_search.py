"""History search on PostgreSQL: a stored ``tsvector`` per message, ``websearch_to_tsquery``, ``ts_headline``.

The index needs no upkeep: ``messages.search`` is a generated column (migration
m002 in ``postgres_schema.py``) over each message (its first
``INDEXED_CHARACTERS`` when the whole does not fit in a ``tsvector``), with a GIN index, so a message is searchable once its transaction
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
the page of results only, never on every match.  A long message (over
``SNIPPET_DIRECT_LIMIT`` characters) is cut into pieces as on SQLite
(``search.pieces_of``) and the headline comes from its best-matching piece, so
a match far into a 10 MB message is shown, at a cost linear in its length.  Ranks are ``-ts_rank``, so
that lower is better as with SQLite's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import psycopg

from .records import SearchHit, StoreError
from .search import SNIPPET_DIRECT_LIMIT, clean, pieces_of
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
       CASE WHEN length(top.content) <= {SNIPPET_DIRECT_LIMIT}
            THEN ts_headline('llmgine_search', top.content, top.q, ?) END AS snippet
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
    parser = "websearch_to_tsquery" if raw else "plainto_tsquery"
    sql = _SEARCH.format(
        parser=parser,
        where="AND m.session_id = ?" if session_id is not None else "",
    )
    params: list[Any] = [_HEADLINE_OPTIONS, text]
    if session_id is not None:
        params.append(session_id)
    params.append(int(limit))
    try:
        found = conn.execute(sql, params).fetchall()
        marks = (clean(highlight[0]), clean(highlight[1]))
        return [_hit(row, marks, _long_headline(conn, row["content"], parser, text)) for row in found]
    except psycopg.Error as exc:
        raise StoreError(f"searching for {query!r} failed ({str(exc).strip()}); try other words") from exc


_BEST_PIECE = """
SELECT p.n, ts_headline('llmgine_search', p.piece, q, ?) AS snippet
FROM unnest(?::text[]) WITH ORDINALITY AS p(piece, n), {parser}('llmgine_search', ?) AS q
WHERE to_tsvector('llmgine_search', p.piece) @@ q
ORDER BY ts_rank(to_tsvector('llmgine_search', p.piece), q) DESC, p.n
LIMIT 1
"""


def _long_headline(conn: Any, content: str | None, parser: str, text: str) -> tuple[str, bool, bool] | None:
    """For a long message: the headline of its best-matching piece, and whether text was cut before
    and after it; None for a short one (its headline came with the search)."""
    if content is None or len(content) <= SNIPPET_DIRECT_LIMIT:
        return None
    pieces = pieces_of(content)
    found = conn.execute(_BEST_PIECE.format(parser=parser), (_HEADLINE_OPTIONS, pieces, text)).fetchone()
    if found is None:  # the match spans two pieces (a phrase cut in two): show the beginning
        return " ".join(content[:200].split()[:16]), False, True
    number = int(found[0])
    return found[1], number > 1, number < len(pieces)


def _marked(headline: str, marks: tuple[str, str], before: bool, after: bool) -> str:
    """The headline with the caller's marks, and ``…`` where the message goes on before or after it."""
    text = headline.replace(_OPEN, marks[0]).replace(_CLOSE, marks[1])
    return (_ELLIPSIS if before else "") + text + (_ELLIPSIS if after else "")


def _snippet(row: Any, marks: tuple[str, str], long_headline: tuple[str, bool, bool] | None) -> str:
    if long_headline is not None:
        headline, before, after = long_headline
        return _marked(headline, marks, before, after)
    headline = row["snippet"] or ""
    plain = headline.replace(_OPEN, "").replace(_CLOSE, "")
    body = (row["content"] or "").strip()
    edge = min(len(plain), 40)
    return _marked(headline, marks, bool(plain) and not body.startswith(plain[:edge]),
                   bool(plain) and not body.endswith(plain[len(plain) - edge:]))


def _hit(row: Any, marks: tuple[str, str], long_headline: tuple[str, bool, bool] | None) -> SearchHit:
    return SearchHit(
        message_id=row["message_id"],
        session_id=row["session_id"],
        session_name=row["session_name"],
        seq=row["seq"],
        role=row["role"],
        snippet=_snippet(row, marks, long_headline),
        content=row["content"],
        created=datetime.fromisoformat(row["created"]),
        rank=float(row["rank"]),
    )

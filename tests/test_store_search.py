"""History search under hostile input, over long messages, and beside writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from services import BACKENDS, postgres_schema

from llmgine_nb.chat import ChatMessage
from llmgine_nb.store import Store, StoreError


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


@pytest.fixture(scope="module", params=BACKENDS)
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with ExitStack() as stack:
        if request.param == "postgresql":
            target: str | Path = stack.enter_context(postgres_schema(request.getfixturevalue("postgres_url")))
        else:
            target = tmp_path_factory.mktemp("search") / "s.db"
        store = stack.enter_context(Store(target))
        session = store.create_session("notes")
        store.append_messages(session, [user('He said "hello" to the herons at 10:30'), user("Crème brûlée, naïve café")])
        yield store


@pytest.mark.parametrize("query", ['"', 'say "hi', "\x00", "her\x00ons", "\ud800", "herons \udfff", "-", "*", "AND", "(", "NEAR("])
def test_hostile_queries_get_results_or_a_sentence(filled: Store, query: str) -> None:
    try:
        hits = filled.search(query)
    except ValueError as exc:  # nothing to look for: said in a sentence
        assert "search for a word" in str(exc) or "at least one word" in str(exc)
        return
    assert isinstance(hits, list)
    if "herons" in query:
        assert hits, "the words around a bad character are still searched"


def test_a_query_with_a_nul_inside_a_word_searches_the_pieces(filled: Store) -> None:
    assert [h.snippet for h in filled.search("herons\x00")] == ['He said "hello" to the **herons** at 10:30']


def test_raw_fts5_syntax_errors_are_a_sentence(tmp_path) -> None:
    # SQLite only: PostgreSQL's web-search syntax parses any string (the hostile-query tests cover it).
    store = Store(tmp_path / "s.db")
    store.append_message(store.create_session(), user("herons"))
    for query in ('"unbalanced', "AND AND", "NEAR(", "\x00", "col:x"):
        with pytest.raises((StoreError, ValueError)) as caught:
            store.search(query, raw=True)
        assert "FTS5" in str(caught.value) or "at least one word" in str(caught.value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(alphabet=st.characters(codec=None), max_size=30), raw=st.booleans())
def test_every_query_string_gets_results_or_a_sentence(filled: Store, query: str, raw: bool) -> None:
    try:
        hits = filled.search(query, raw=raw)
    except (ValueError, StoreError) as exc:
        message = str(exc)
        assert message.endswith((".", "as typed", "or a number", "to look for")), message
        assert ("search" in message) or ("FTS5" in message), message
        return
    assert all(hit.session_name == "notes" for hit in hits)


def test_snippet_of_a_long_message_marks_the_match(db_target) -> None:
    store = Store(db_target)
    session = store.create_session()
    long_text = "filler words " * 200_000 + "the heron flew off " + "more filler " * 100_000  # about 3.8 MB
    store.append_messages(session, [user(long_text), user("a heron, short")])
    hits = {h.content[:10]: h for h in store.search("herons")}  # porter stemming, as for short ones
    long_hit = hits[long_text[:10]]
    assert "**heron**" in long_hit.snippet and long_hit.snippet.startswith("…") and long_hit.snippet.endswith("…")
    assert len(long_hit.snippet) < 300
    assert hits["a heron, s"].snippet == "a **heron**, short"
    store.index_for_search()  # the same once the messages are in the main index
    assert {h.snippet for h in store.search("herons")} == {h.snippet for h in hits.values()}


def test_a_search_in_progress_does_not_hold_up_writers(db_target, monkeypatch) -> None:
    store = Store(db_target)
    session = store.create_session()
    store.append_message(session, user("herons at dawn"))
    inside, release = threading.Event(), threading.Event()
    backend = store.database.search  # search.py (SQLite) or postgres_search.py
    real_search = backend.search

    def slow_search(*args, **kwargs):
        inside.set()
        release.wait(30)  # a search that takes its time (a huge message, a slow disk)
        return real_search(*args, **kwargs)

    monkeypatch.setattr(backend, "search", slow_search)
    results: list = []
    searcher = threading.Thread(target=lambda: results.append(store.search("herons")))
    searcher.start()
    try:
        assert inside.wait(30)
        writer = threading.Thread(target=store.append_message, args=(session, user("herons at dusk")))
        writer.start()
        writer.join(20)
        wrote = not writer.is_alive()
    finally:
        release.set()
        searcher.join(30)
    assert wrote, "a write waited for a search to finish"
    assert [h.content for h in results[0]] == ["herons at dawn"]  # the search's snapshot predates the write
    assert len(store.search("herons")) == 2

"""What is particular to the store on PostgreSQL: URLs, the schema's twin migrations, text it cannot hold.

Everything else the store does is tested on both backends by the other
``test_store_*`` modules (the ``backend`` parametrisation in ``tests/services.py``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from llmgine_nb.chat import ChatMessage, ImageRef
from llmgine_nb.store import MIGRATIONS, Store, StoreError, applied_migrations, postgres_schema
from llmgine_nb.store.paths import display_target, is_postgres_url, resolve_db_path


def test_a_path_a_sqlite_url_or_a_postgres_url(tmp_path, monkeypatch):
    assert resolve_db_path(str(tmp_path / "a.db")) == tmp_path / "a.db"
    assert resolve_db_path("sqlite:///" + str(tmp_path / "b.db")) == tmp_path / "b.db"  # sqlite:////abs/path
    assert resolve_db_path("sqlite:///rel.db") == Path("rel.db")
    assert resolve_db_path("sqlite:///:memory:") == ":memory:"
    assert resolve_db_path("postgresql://u:pw@h:5432/db") == "postgresql://u:pw@h:5432/db"
    assert is_postgres_url("postgres://h/db") and not is_postgres_url(tmp_path)
    monkeypatch.setenv("LLMGINE_DB", "  postgresql://h/db  ")
    assert resolve_db_path(None) == "postgresql://h/db"
    for bad in ("mysql://h/db", "sqlite://no-slash.db"):
        with pytest.raises(ValueError, match="postgresql://|sqlite:///"):
            resolve_db_path(bad)


def test_a_url_password_is_never_shown(caplog):
    url = "postgresql://llmgine:s3cret-pass@127.0.0.1:1/nowhere"  # port 1: nothing answers
    assert "s3cret-pass" not in display_target(url)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError) as caught:
        Store(url, timeout=1)
    assert "s3cret-pass" not in str(caught.value) and "[REDACTED]" in str(caught.value)
    assert "PostgreSQL is running" in str(caught.value)
    assert "s3cret-pass" not in caplog.text


def test_the_cli_takes_a_url_for_db(fresh_postgres_url):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    add = subprocess.run([sys.executable, "-m", "llmgine_nb", "users", "--db", fresh_postgres_url, "add", "ada"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert add.returncode == 0, add.stderr
    with Store(fresh_postgres_url) as store:
        from llmgine_nb.store.users import get_user

        assert get_user(store, "ada") is not None


def test_both_backends_know_the_same_migrations(fresh_postgres_url):
    assert [name for name, _ in postgres_schema.MIGRATIONS] == [fn.__name__ for fn in MIGRATIONS]
    # Trust authentication here ignores the password; it must still never be shown.
    with Store(fresh_postgres_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pass@")) as store:
        assert store.backend == "postgresql"
        assert "s3cret-pass" not in repr(store) and "[REDACTED]" in repr(store)
        assert "s3cret-pass" not in store.location  # what `serve` prints and `%llmgine config` shows
        with store.database.locked() as conn:
            assert postgres_schema.applied_migrations(conn) == [fn.__name__ for fn in MIGRATIONS]
    with Store(fresh_postgres_url) as again, again.database.locked() as conn:  # opening again applies nothing
        assert postgres_schema.migrate(conn) == []


def test_sqlite_applied_migrations_match(tmp_path):
    with Store(tmp_path / "x.db") as store:
        assert applied_migrations(store.db) == [n for n, _ in postgres_schema.MIGRATIONS]


def test_nul_characters_are_stored_as_replacement_characters(fresh_postgres_url):
    with Store(fresh_postgres_url) as store:
        s = store.create_session("nul")
        store.append_message(s, ChatMessage(role="user", content="before\x00after"))
        assert [m.content for m in store.messages(s)] == ["before\ufffdafter"]
        assert store.search("after")


def test_images_are_kept_once_as_bytes(fresh_postgres_url):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    with Store(fresh_postgres_url) as store:
        from llmgine_nb.store import images

        ref = ImageRef(sha256="ab" * 32, mime="image/png", size=len(png), width=1, height=1)
        with store.transaction() as conn:
            assert images.put(conn, ref, png) is True
            assert images.put(conn, ref, png) is False  # the same bytes, kept once
        with store.database.locked() as conn:
            assert images.get_data(conn, [ref.sha256]) == {ref.sha256: png}


def test_a_message_too_varied_for_one_search_vector_is_stored_and_found_by_its_beginning(fresh_postgres_url):
    import random

    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8)) for _ in range(150_000)]
    text = "heron " + " ".join(words)  # about 1.3 MB of distinct words: more than a tsvector holds
    with Store(fresh_postgres_url) as store:
        s = store.create_session()
        store.append_message(s, ChatMessage(role="user", content=text))
        assert store.messages(s)[0].content == text
        (hit,) = store.search("heron")
        assert hit.snippet.startswith("**heron**")
        assert store.search(words[-1]) == []  # past the first INDEXED_CHARACTERS: not in its vector
        assert store.search(words[100]) != []


def test_a_connection_the_server_dropped_is_opened_again(fresh_postgres_url, postgres_url):
    import psycopg

    with Store(fresh_postgres_url) as store:
        s = store.create_session("kept")
        (pid,) = store.database.read("SELECT pg_backend_pid()")[0]
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # what a server restart does to it
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        store.append_message(s, ChatMessage(role="user", content="after the drop"))
        assert [m.content for m in store.messages(s)] == ["after the drop"]
        (pid_now,) = store.database.read("SELECT pg_backend_pid()")[0]
        assert pid_now != pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid_now,))
        assert store.database.read("SELECT count(*) FROM messages")[0][0] == 1  # a lone read, too
        assert store.search("drop")  # the search's own connection ...
        with store.database.reading() as reader:
            (reader_pid,) = reader.execute("SELECT pg_backend_pid()").fetchone()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (reader_pid,))
        assert [h.content for h in store.search("drop")] == ["after the drop"]  # ... is opened again as well

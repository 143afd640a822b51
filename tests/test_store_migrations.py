"""Migrations: an old database opens in a new version without losing anything."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from llmgine_nb.chat import ChatMessage
from llmgine_nb.store import MIGRATIONS, Store, applied_migrations, migrate


def frozen_m001_initial(db: sqlite_utils.Database) -> None:
    """A frozen copy of the FIRST schema (m001_initial as released).  Never edit it:
    it stands for databases already on users' disks."""
    db["sessions"].create(
        {"id": str, "name": str, "model": str, "created": str, "notebook": str, "forked_from_session": str,
         "forked_from_message": str, "engine_state": str, "metadata": str},
        pk="id", not_null={"created"},
    )
    db.execute("CREATE UNIQUE INDEX idx_sessions_name ON sessions(name) WHERE name IS NOT NULL")
    db["messages"].create(
        {"pk": int, "id": str, "session_id": str, "seq": int, "role": str, "content": str, "tool_calls": str,
         "tool_call_id": str, "name": str, "model": str, "status": str, "pinned": int, "created": str},
        pk="pk", not_null={"id", "session_id", "seq", "role", "status", "pinned", "created"},
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db.execute("CREATE UNIQUE INDEX idx_messages_id ON messages(id)")
    db.execute("CREATE UNIQUE INDEX idx_messages_session_seq ON messages(session_id, seq)")
    db["tool_calls"].create(
        {"id": str, "call_id": str, "session_id": str, "message_id": str, "tool": str, "arguments": str,
         "status": str, "result": str, "error": str, "result_message_id": str, "requested": str, "decided": str,
         "started": str, "finished": str, "duration_ms": float},
        pk="id", not_null={"call_id", "session_id", "tool", "status", "requested"},
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db.execute("CREATE INDEX idx_tool_calls_session ON tool_calls(session_id, call_id)")
    db.execute("CREATE INDEX idx_tool_calls_message ON tool_calls(message_id)")
    db["approvals"].create(
        {"id": str, "tool_call": str, "session_id": str, "call_id": str, "decision": str, "who": str,
         "edited_arguments": str, "reason": str, "created": str},
        pk="id", not_null={"tool_call", "session_id", "call_id", "decision", "created"},
        foreign_keys=[("tool_call", "tool_calls", "id")],
    )
    db.execute("CREATE INDEX idx_approvals_tool_call ON approvals(tool_call)")
    db.execute("CREATE INDEX idx_approvals_session ON approvals(session_id)")
    db["llm_calls"].create(
        {"id": str, "session_id": str, "message_id": str, "model": str, "provider": str, "input_tokens": int,
         "output_tokens": int, "cached_tokens": int, "cost": float, "latency_ms": float, "ttft_ms": float,
         "error": str, "created": str},
        pk="id", not_null={"created"},
    )
    db.execute("CREATE INDEX idx_llm_calls_session ON llm_calls(session_id)")
    db.execute("CREATE INDEX idx_llm_calls_created ON llm_calls(created)")
    db["events"].create(
        {"id": str, "type": str, "session_id": str, "payload": str, "created": str},
        pk="id", not_null={"type", "payload", "created"},
    )
    db.execute("CREATE INDEX idx_events_session ON events(session_id, created)")
    db.execute("CREATE INDEX idx_events_created ON events(created)")


frozen_m001_initial.__name__ = "m001_initial"  # recorded under the released name


def make_first_version_db(path: Path) -> None:
    """A database as the first release left it: schema 1 and some rows written by plain SQL."""
    db = sqlite_utils.Database(path)
    migrate(db, [frozen_m001_initial])
    ts = "2025-01-05T10:00:00.000000+00:00"
    db.execute(
        "INSERT INTO sessions (id, name, model, created, engine_state, metadata) VALUES (?,?,?,?,?,?)",
        ["s-old", "legacy", "gpt-4o", ts, '{"turn": 1}', "{}"],
    )
    rows = [
        ("m1", 0, "user", "What is the capital of Norway?", None, None, None, None),
        ("m2", 1, "assistant", None, '[{"id":"c1","name":"lookup","arguments":"{\\"q\\":\\"Norway\\"}"}]', None, None, "gpt-4o"),
        ("m3", 2, "tool", "Oslo", None, "c1", "lookup", None),
        ("m4", 3, "assistant", "The capital of Norway is Oslo.", None, None, None, "gpt-4o"),
        ("m5", 4, "assistant", None, '[{"id":"c2","name":"book","arguments":"{}"}]', None, None, "gpt-4o"),
    ]
    for mid, seq, role, content, calls, call_id, name, model in rows:
        db.execute(
            "INSERT INTO messages (id, session_id, seq, role, content, tool_calls, tool_call_id, name, model, "
            "status, pinned, created) VALUES (?,?,?,?,?,?,?,?,?,'complete',0,?)",
            [mid, "s-old", seq, role, content, calls, call_id, name, model, ts],
        )
    db.execute(
        "INSERT INTO tool_calls (id, call_id, session_id, message_id, tool, arguments, status, result, "
        "result_message_id, requested) VALUES ('t1','c1','s-old','m2','lookup','{\"q\":\"Norway\"}','done','Oslo','m3',?)",
        [ts],
    )
    db.execute(
        "INSERT INTO tool_calls (id, call_id, session_id, message_id, tool, arguments, status, requested) "
        "VALUES ('t2','c2','s-old','m5','book','{}','requested',?)",
        [ts],
    )
    db.execute(
        "INSERT INTO llm_calls (id, session_id, model, input_tokens, output_tokens, cost, created) "
        "VALUES ('l1','s-old','gpt-4o',120,12,0.002,?)",
        [ts],
    )
    db.close()


def test_first_schema_upgrades_without_loss(tmp_path):
    path = tmp_path / "old.db"
    make_first_version_db(path)
    assert applied_migrations(sqlite_utils.Database(path)) == ["m001_initial"]

    with Store(path) as store:
        assert applied_migrations(store.db) == [m.__name__ for m in MIGRATIONS]
        loaded = store.load_session("legacy")
        assert loaded.session.engine_state == {"turn": 1}
        assert [m.id for m in loaded.messages] == ["m1", "m2", "m3", "m4", "m5"]
        assert loaded.messages[1].tool_calls[0].arguments == {"q": "Norway"}
        assert loaded.messages[3].content == "The capital of Norway is Oslo."
        assert [p.call_id for p in loaded.pending_tool_calls] == ["c2"]
        # Migration 2's full-text index covers the rows that existed before it.
        assert {h.message_id for h in store.search("capital")} == {"m1", "m4"}
        # Migration 3's tables are usable, and new writes work alongside old rows.
        store.add_memory("prefers trains", session="legacy")
        store.append_message("legacy", ChatMessage(role="user", content="And of Sweden?"))
        assert store.messages("legacy")[-1].content == "And of Sweden?"
        assert store.usage("session")[0].input_tokens == 120
        assert store.integrity_check() == []
        # Migration 4 queues new messages for the index; rows indexed under the old triggers
        # can still be edited and deleted, and the index ends up matching the table exactly.
        store.update_message("m4", content="Oslo is the capital of Norway, on a fjord.")
        assert {h.message_id for h in store.search("fjord")} == {"m4"}
        assert {h.message_id for h in store.search("sweden")} == {store.messages("legacy")[-1].id}
        store.delete_session("legacy")
        assert store.search("capital") == [] and store.search("sweden") == []
        store.db.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


def test_reopening_runs_nothing_again(tmp_path):
    path = tmp_path / "x.db"
    with Store(path):
        pass
    db = sqlite_utils.Database(path)
    assert migrate(db) == []
    assert len(applied_migrations(db)) == len(MIGRATIONS)


def test_a_failing_migration_leaves_the_database_at_the_previous_step(tmp_path):
    def m_good(db):
        db["good"].create({"id": int}, pk="id")

    def m_bad(db):
        db["half"].create({"id": int}, pk="id")
        raise RuntimeError("migration bug")

    db = sqlite_utils.Database(tmp_path / "y.db")
    with pytest.raises(RuntimeError, match="migration bug"):
        migrate(db, [m_good, m_bad])
    assert applied_migrations(db) == ["m_good"]
    assert db["good"].exists() and not db["half"].exists()
    assert not db.conn.in_transaction


def test_a_newer_database_still_opens(tmp_path, caplog):
    path = tmp_path / "future.db"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _llmgine_migrations (name, applied) VALUES ('m999_from_the_future', 'x')")
    conn.commit()
    conn.close()
    with caplog.at_level("WARNING", logger="llmgine_nb.store"):
        with Store(path) as store:
            store.create_session("still works")
    assert "newer llmgine-nb" in caplog.text


def frozen_m002_message_search(db: sqlite_utils.Database) -> None:
    """m002 as released, written with sqlite-utils (frozen like m001)."""
    db["messages"].enable_fts(["content"], fts_version="FTS5", create_triggers=True, tokenize="porter")


def frozen_m003_memory_and_summaries(db: sqlite_utils.Database) -> None:
    """m003 as released, written with sqlite-utils (frozen like m001)."""
    db["memory"].create({"id": str, "session_id": str, "text": str, "created": str}, pk="id",
                        not_null={"text", "created"})
    db.execute("CREATE INDEX idx_memory_session ON memory(session_id)")
    db["summaries"].create(
        {"id": str, "session_id": str, "upto_message_id": str, "text": str, "covered": int, "created": str},
        pk="id", not_null={"session_id", "upto_message_id", "text", "created"},
    )
    db.execute("CREATE INDEX idx_summaries_session ON summaries(session_id, created)")


frozen_m002_message_search.__name__ = "m002_message_search"
frozen_m003_memory_and_summaries.__name__ = "m003_memory_and_summaries"


def _schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("stop_after", [1, 2, 3])
def test_the_plain_sql_migrations_make_the_schema_sqlite_utils_made(tmp_path, stop_after):
    """m001-m003 now run the statements sqlite-utils wrote: the same tables, indexes, triggers, SQL text."""
    frozen = [frozen_m001_initial, frozen_m002_message_search, frozen_m003_memory_and_summaries][:stop_after]
    migrate(sqlite_utils.Database(tmp_path / "released.db"), frozen)
    plain = sqlite3.connect(tmp_path / "plain.db")
    migrate(plain, MIGRATIONS[:stop_after])
    plain.close()
    released, now = _schema(tmp_path / "released.db"), _schema(tmp_path / "plain.db")
    assert len(released) > 3 * stop_after
    assert now == released


def test_a_database_made_by_the_released_migrations_upgrades_like_a_new_one(tmp_path):
    migrate(sqlite_utils.Database(tmp_path / "released.db"),
            [frozen_m001_initial, frozen_m002_message_search, frozen_m003_memory_and_summaries])
    with Store(tmp_path / "released.db"), Store(tmp_path / "new.db"):
        pass
    assert _schema(tmp_path / "released.db") == _schema(tmp_path / "new.db")


def test_opening_a_store_imports_neither_sqlite_utils_nor_psycopg(tmp_path):
    """sqlite-utils imports pandas and numpy where installed (about 0.2 s of a notebook's first turn)."""
    import subprocess
    import sys

    code = (
        "import sys; from llmgine_nb.store import Store; s = Store(sys.argv[1]); "
        "s.create_session('x'); s.close(); "
        "print(sorted(m for m in ('sqlite_utils', 'pandas', 'numpy', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.db")], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"

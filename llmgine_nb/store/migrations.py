"""The schema, as an ordered list of plain migration functions.

Each function takes the writer connection (a ``sqlite3.Connection``, or
anything with its ``execute``) and moves the schema one step forward, in
plain SQL: opening a database needs nothing but ``sqlite3`` (sqlite-utils,
whose import also imports pandas and numpy where they are installed, costs
a notebook's first turn about 0.2 s).  Applied migrations are recorded by
name in ``_llmgine_migrations``; opening a database runs the ones it has
not seen yet, in order, each inside the same write transaction as its
record, so a crash mid-migration leaves the database at the previous step.

Rules for adding one: append a new function to ``MIGRATIONS`` and never
change what a released one does - an old database on a user's disk has
already run it.  (m001-m003 were first written with sqlite-utils' table
API; they now run the very statements it wrote, and
``tests/test_store_migrations.py`` checks that both give the same schema.)
A migration must keep every existing row readable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

__all__ = ["MIGRATIONS", "MIGRATIONS_TABLE", "migrate", "applied_migrations"]

log = logging.getLogger("llmgine_nb.store")

MIGRATIONS_TABLE = "_llmgine_migrations"

#: A step of the schema: it gets the connection (``execute(sql, params)``) inside the migration's transaction.
Migration = Callable[[Any], None]


def m001_initial(db: Any) -> None:
    """Sessions, messages, tool calls, approvals, LLM calls and the event log."""
    db.execute(
        """CREATE TABLE "sessions" (
   "id" TEXT PRIMARY KEY,
   "name" TEXT,
   "model" TEXT,
   "created" TEXT NOT NULL,
   "notebook" TEXT,
   "forked_from_session" TEXT,
   "forked_from_message" TEXT,
   "engine_state" TEXT,
   "metadata" TEXT
)"""  # engine_state and metadata: JSON objects
    )
    # Names are optional but, when given, name exactly one session.
    db.execute("CREATE UNIQUE INDEX idx_sessions_name ON sessions(name) WHERE name IS NOT NULL")

    # An explicit INTEGER PRIMARY KEY keeps rowids stable across VACUUM, which
    # the full-text index (keyed by rowid) relies on.  tool_calls: a JSON list of {id, name, arguments}.
    db.execute(
        """CREATE TABLE "messages" (
   "pk" INTEGER PRIMARY KEY,
   "id" TEXT NOT NULL,
   "session_id" TEXT NOT NULL REFERENCES "sessions"("id"),
   "seq" INTEGER NOT NULL,
   "role" TEXT NOT NULL,
   "content" TEXT,
   "tool_calls" TEXT,
   "tool_call_id" TEXT,
   "name" TEXT,
   "model" TEXT,
   "status" TEXT NOT NULL,
   "pinned" INTEGER NOT NULL,
   "created" TEXT NOT NULL
)"""
    )
    db.execute("CREATE UNIQUE INDEX idx_messages_id ON messages(id)")
    db.execute("CREATE UNIQUE INDEX idx_messages_session_seq ON messages(session_id, seq)")

    # One row per tool call a model requested.  ``call_id`` is the model's id
    # for it, which need not be unique (offline models reuse them), so each
    # row has its own ``id``.  ``arguments`` is the raw JSON the model sent;
    # ``status``: requested|approved|denied|running|done|error.
    db.execute(
        """CREATE TABLE "tool_calls" (
   "id" TEXT PRIMARY KEY,
   "call_id" TEXT NOT NULL,
   "session_id" TEXT NOT NULL REFERENCES "sessions"("id"),
   "message_id" TEXT,
   "tool" TEXT NOT NULL,
   "arguments" TEXT,
   "status" TEXT NOT NULL,
   "result" TEXT,
   "error" TEXT,
   "result_message_id" TEXT,
   "requested" TEXT NOT NULL,
   "decided" TEXT,
   "started" TEXT,
   "finished" TEXT,
   "duration_ms" REAL
)"""
    )
    db.execute("CREATE INDEX idx_tool_calls_session ON tool_calls(session_id, call_id)")
    db.execute("CREATE INDEX idx_tool_calls_message ON tool_calls(message_id)")

    # ``tool_call`` is tool_calls.id; ``decision`` approved|denied; ``edited_arguments``
    # a JSON object, when the arguments were edited.
    db.execute(
        """CREATE TABLE "approvals" (
   "id" TEXT PRIMARY KEY,
   "tool_call" TEXT NOT NULL REFERENCES "tool_calls"("id"),
   "session_id" TEXT NOT NULL,
   "call_id" TEXT NOT NULL,
   "decision" TEXT NOT NULL,
   "who" TEXT,
   "edited_arguments" TEXT,
   "reason" TEXT,
   "created" TEXT NOT NULL
)"""
    )
    db.execute("CREATE INDEX idx_approvals_tool_call ON approvals(tool_call)")
    db.execute("CREATE INDEX idx_approvals_session ON approvals(session_id)")

    db.execute(
        """CREATE TABLE "llm_calls" (
   "id" TEXT PRIMARY KEY,
   "session_id" TEXT,
   "message_id" TEXT,
   "model" TEXT,
   "provider" TEXT,
   "input_tokens" INTEGER,
   "output_tokens" INTEGER,
   "cached_tokens" INTEGER,
   "cost" REAL,
   "latency_ms" REAL,
   "ttft_ms" REAL,
   "error" TEXT,
   "created" TEXT NOT NULL
)"""
    )
    db.execute("CREATE INDEX idx_llm_calls_session ON llm_calls(session_id)")
    db.execute("CREATE INDEX idx_llm_calls_created ON llm_calls(created)")

    db.execute(
        """CREATE TABLE "events" (
   "id" TEXT PRIMARY KEY,
   "type" TEXT NOT NULL,
   "session_id" TEXT,
   "payload" TEXT NOT NULL,
   "created" TEXT NOT NULL
)"""
    )
    db.execute("CREATE INDEX idx_events_session ON events(session_id, created)")
    db.execute("CREATE INDEX idx_events_created ON events(created)")


def m002_message_search(db: Any) -> None:
    """Full-text search over message content (FTS5, porter stemming), kept current by triggers."""
    db.execute(
        """CREATE VIRTUAL TABLE "messages_fts" USING FTS5 (
    "content",
    tokenize='porter',
    content="messages"
)"""
    )
    db.execute('INSERT INTO "messages_fts" (rowid, "content") SELECT rowid, "content" FROM "messages"')
    db.execute(
        """CREATE TRIGGER "messages_ai" AFTER INSERT ON "messages" BEGIN
  INSERT INTO "messages_fts" (rowid, "content") VALUES (new.rowid, new."content");
END"""
    )
    db.execute(
        """CREATE TRIGGER "messages_ad" AFTER DELETE ON "messages" BEGIN
  INSERT INTO "messages_fts" ("messages_fts", rowid, "content") VALUES('delete', old.rowid, old."content");
END"""
    )
    db.execute(
        """CREATE TRIGGER "messages_au" AFTER UPDATE ON "messages" BEGIN
  INSERT INTO "messages_fts" ("messages_fts", rowid, "content") VALUES('delete', old.rowid, old."content");
  INSERT INTO "messages_fts" (rowid, "content") VALUES (new.rowid, new."content");
END"""
    )


def m003_memory_and_summaries(db: Any) -> None:
    """Memory notes (per session, or global when session_id is NULL) and stored summaries."""
    db.execute(
        """CREATE TABLE "memory" (
   "id" TEXT PRIMARY KEY,
   "session_id" TEXT,
   "text" TEXT NOT NULL,
   "created" TEXT NOT NULL
)"""
    )
    db.execute("CREATE INDEX idx_memory_session ON memory(session_id)")
    # A summary stands in for a session's messages up to and including
    # ``upto_message_id`` when the context compiler cuts history.
    db.execute(
        """CREATE TABLE "summaries" (
   "id" TEXT PRIMARY KEY,
   "session_id" TEXT NOT NULL,
   "upto_message_id" TEXT NOT NULL,
   "text" TEXT NOT NULL,
   "covered" INTEGER,
   "created" TEXT NOT NULL
)"""
    )
    db.execute("CREATE INDEX idx_summaries_session ON summaries(session_id, created)")


def m004_deferred_search_index(db: Any) -> None:
    """Index new messages for search when someone searches, not on every write.

    Writing a message into the FTS5 index costs about as much as writing the
    message itself (a new index segment per transaction), on every turn;
    searching is rare.  New messages are queued in ``messages_fts_pending``
    and ``Store.search`` indexes the queue first.  A deleted or edited
    message still in the queue never reached the index, so only the ones
    already indexed are taken out of it.
    """
    db.execute("CREATE TABLE messages_fts_pending (pk INTEGER PRIMARY KEY)")
    for trigger in ("messages_ai", "messages_ad", "messages_au"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    indexed = "NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE pk = old.pk)"
    db.execute(
        """CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
          INSERT INTO messages_fts_pending (pk) VALUES (new.pk);
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
          INSERT INTO messages_fts (messages_fts, rowid, content) SELECT 'delete', old.pk, old.content WHERE {indexed};
          DELETE FROM messages_fts_pending WHERE pk = old.pk;
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER messages_au AFTER UPDATE ON messages BEGIN
          INSERT INTO messages_fts (messages_fts, rowid, content) SELECT 'delete', old.pk, old.content WHERE {indexed};
          INSERT INTO messages_fts (rowid, content) SELECT new.pk, new.content WHERE {indexed};
        END"""
    )


def m005_server_streams_and_users(db: Any) -> None:
    """What the server needs: per-session event numbers, users, their tokens, session owners.

    ``events.seq`` numbers the events of a session that a front end streams,
    without gaps (NULL for events logged without one, e.g. by the notebook's
    event log).  Tokens are stored as SHA-256 hashes only; the token itself
    is shown once when it is made.  See ``store/streams.py`` and ``store/users.py``.
    """
    db.execute("ALTER TABLE events ADD COLUMN seq INTEGER")
    db.execute("CREATE UNIQUE INDEX idx_events_session_seq ON events(session_id, seq) WHERE seq IS NOT NULL")
    db.execute(
        "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE api_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), "
        "token_hash TEXT NOT NULL UNIQUE, created TEXT NOT NULL, revoked TEXT)"
    )
    db.execute("CREATE TABLE session_owners (session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL)")
    db.execute("CREATE INDEX idx_session_owners_user ON session_owners(user_id)")


def m006_images_and_request_cache(db: Any) -> None:
    """Images stored once by content (sha256), the images of each message, and the opt-in request cache.

    ``messages.images`` is the message's ``ImageRef`` list as JSON (NULL for
    none); the bytes are in ``images``.  ``request_cache`` maps the hash of an
    exact request (model, messages, tools, options) to the answer it got.
    See ``store/images.py`` and ``store/request_cache.py``.
    """
    db.execute(
        "CREATE TABLE images (sha256 TEXT PRIMARY KEY, mime TEXT NOT NULL, size INTEGER NOT NULL, "
        "width INTEGER NOT NULL, height INTEGER NOT NULL, data BLOB NOT NULL, created TEXT NOT NULL)"
    )
    db.execute("ALTER TABLE messages ADD COLUMN images TEXT")
    db.execute(
        "CREATE TABLE request_cache (request_hash TEXT PRIMARY KEY, model TEXT NOT NULL, "
        "response TEXT NOT NULL, created TEXT NOT NULL, hits INTEGER NOT NULL DEFAULT 0)"
    )


def m007_map_jobs(db: Any) -> None:
    """Prompts over data (``runtime.map``): each job, and each row it has answered.

    A row is keyed by its job and its index; ``prompt_hash`` is the hash of
    the prompt it was asked, so that a resumed job whose rows changed asks
    the changed rows again instead of reusing answers to other prompts.
    """
    db.execute(
        "CREATE TABLE map_jobs (id TEXT PRIMARY KEY, name TEXT, template TEXT NOT NULL, model TEXT, "
        "schema_name TEXT, total INTEGER NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE map_rows (job_id TEXT NOT NULL REFERENCES map_jobs(id) ON DELETE CASCADE, "
        "row_index INTEGER NOT NULL, prompt_hash TEXT NOT NULL, text TEXT, value TEXT, "
        "input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL, "
        "attempts INTEGER NOT NULL DEFAULT 1, model TEXT, finished TEXT NOT NULL, PRIMARY KEY (job_id, row_index))"
    )


def m008_forgotten_messages(db: Any) -> None:
    """A message can be forgotten: kept and shown in the history, left out of what the model is sent."""
    db.execute("ALTER TABLE messages ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0")


def m009_session_fences(db: Any) -> None:
    """The highest fencing token that has written each session (``fencing.py``; 0: none yet)."""
    db.execute("ALTER TABLE sessions ADD COLUMN fence INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_message_search,
    m003_memory_and_summaries,
    m004_deferred_search_index,
    m005_server_streams_and_users,
    m006_images_and_request_cache,
    m007_map_jobs,
    m008_forgotten_messages,
    m009_session_fences,
]


def applied_migrations(db: Any) -> list[str]:
    """Names of the migrations recorded in this database, in the order applied."""
    table = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [MIGRATIONS_TABLE])
    if table.fetchone() is None:
        return []
    return [row[0] for row in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid")]


def migrate(db: Any, migrations: list[Migration] | None = None) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now.

    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together
    with its record, re-checking the record inside the lock so that two
    processes opening a new database at once migrate it exactly once.
    """
    steps = MIGRATIONS if migrations is None else migrations
    known = {fn.__name__ for fn in steps}
    already = set(applied_migrations(db))
    done_now: list[str] = []
    # Only take the write lock when something is left to do: opening an
    # up-to-date database must not queue behind other writers.
    for fn in (step for step in steps if step.__name__ not in already):
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied TEXT NOT NULL)"
            )
            seen = db.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", [fn.__name__]).fetchone()
            if seen is None:
                fn(db)
                db.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (name, applied) VALUES (?, ?)",
                    [fn.__name__, datetime.now(timezone.utc).isoformat(timespec="microseconds")],
                )
                done_now.append(fn.__name__)
            db.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise
    unknown = [name for name in already if name not in known]
    if unknown:
        log.warning(
            "this database was migrated by a newer llmgine-nb (%s); upgrade llmgine-nb "
            "if anything is missing",
            ", ".join(unknown),
        )
    if done_now:
        log.info("applied migrations: %s", ", ".join(done_now))
    return done_now

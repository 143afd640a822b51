"""The schema, as an ordered list of plain migration functions.

Each function takes a ``sqlite_utils.Database`` and moves the schema one step
forward.  Applied migrations are recorded by name in ``_llmgine_migrations``;
opening a database runs the ones it has not seen yet, in order, each inside
the same write transaction as its record, so a crash mid-migration leaves
the database at the previous step.

Rules for adding one: append a new function to ``MIGRATIONS`` and never edit
or reorder a released one - an old database on a user's disk has already run
it.  A migration must keep every existing row readable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

import sqlite_utils

__all__ = ["MIGRATIONS", "MIGRATIONS_TABLE", "migrate", "applied_migrations"]

log = logging.getLogger("llmgine_nb.store")

MIGRATIONS_TABLE = "_llmgine_migrations"

Migration = Callable[[sqlite_utils.Database], None]


def m001_initial(db: sqlite_utils.Database) -> None:
    """Sessions, messages, tool calls, approvals, LLM calls and the event log."""
    db.table("sessions").create(
        {
            "id": str,
            "name": str,
            "model": str,
            "created": str,
            "notebook": str,
            "forked_from_session": str,
            "forked_from_message": str,
            "engine_state": str,  # JSON object
            "metadata": str,  # JSON object
        },
        pk="id",
        not_null={"created"},
    )
    # Names are optional but, when given, name exactly one session.
    db.execute("CREATE UNIQUE INDEX idx_sessions_name ON sessions(name) WHERE name IS NOT NULL")

    # An explicit INTEGER PRIMARY KEY keeps rowids stable across VACUUM, which
    # the full-text index (keyed by rowid) relies on.
    db.table("messages").create(
        {
            "pk": int,
            "id": str,
            "session_id": str,
            "seq": int,
            "role": str,
            "content": str,
            "tool_calls": str,  # JSON list of {id, name, arguments}
            "tool_call_id": str,
            "name": str,
            "model": str,
            "status": str,
            "pinned": int,
            "created": str,
        },
        pk="pk",
        not_null={"id", "session_id", "seq", "role", "status", "pinned", "created"},
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db.execute("CREATE UNIQUE INDEX idx_messages_id ON messages(id)")
    db.execute("CREATE UNIQUE INDEX idx_messages_session_seq ON messages(session_id, seq)")

    # One row per tool call a model requested.  ``call_id`` is the model's id
    # for it, which need not be unique (offline models reuse them), so each
    # row has its own ``id``.
    db.table("tool_calls").create(
        {
            "id": str,
            "call_id": str,
            "session_id": str,
            "message_id": str,
            "tool": str,
            "arguments": str,  # the raw JSON the model sent
            "status": str,  # requested|approved|denied|running|done|error
            "result": str,
            "error": str,
            "result_message_id": str,
            "requested": str,
            "decided": str,
            "started": str,
            "finished": str,
            "duration_ms": float,
        },
        pk="id",
        not_null={"call_id", "session_id", "tool", "status", "requested"},
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db.execute("CREATE INDEX idx_tool_calls_session ON tool_calls(session_id, call_id)")
    db.execute("CREATE INDEX idx_tool_calls_message ON tool_calls(message_id)")

    db.table("approvals").create(
        {
            "id": str,
            "tool_call": str,  # tool_calls.id
            "session_id": str,
            "call_id": str,
            "decision": str,  # approved|denied
            "who": str,
            "edited_arguments": str,  # JSON object, when the arguments were edited
            "reason": str,
            "created": str,
        },
        pk="id",
        not_null={"tool_call", "session_id", "call_id", "decision", "created"},
        foreign_keys=[("tool_call", "tool_calls", "id")],
    )
    db.execute("CREATE INDEX idx_approvals_tool_call ON approvals(tool_call)")
    db.execute("CREATE INDEX idx_approvals_session ON approvals(session_id)")

    db.table("llm_calls").create(
        {
            "id": str,
            "session_id": str,
            "message_id": str,
            "model": str,
            "provider": str,
            "input_tokens": int,
            "output_tokens": int,
            "cached_tokens": int,
            "cost": float,
            "latency_ms": float,
            "ttft_ms": float,
            "error": str,
            "created": str,
        },
        pk="id",
        not_null={"created"},
    )
    db.execute("CREATE INDEX idx_llm_calls_session ON llm_calls(session_id)")
    db.execute("CREATE INDEX idx_llm_calls_created ON llm_calls(created)")

    db.table("events").create(
        {"id": str, "type": str, "session_id": str, "payload": str, "created": str},
        pk="id",
        not_null={"type", "payload", "created"},
    )
    db.execute("CREATE INDEX idx_events_session ON events(session_id, created)")
    db.execute("CREATE INDEX idx_events_created ON events(created)")


def m002_message_search(db: sqlite_utils.Database) -> None:
    """Full-text search over message content, kept current by triggers."""
    db.table("messages").enable_fts(["content"], fts_version="FTS5", create_triggers=True, tokenize="porter")


def m003_memory_and_summaries(db: sqlite_utils.Database) -> None:
    """Memory notes (per session, or global when session_id is NULL) and stored summaries."""
    db.table("memory").create(
        {"id": str, "session_id": str, "text": str, "created": str},
        pk="id",
        not_null={"text", "created"},
    )
    db.execute("CREATE INDEX idx_memory_session ON memory(session_id)")
    # A summary stands in for a session's messages up to and including
    # ``upto_message_id`` when the context compiler cuts history.
    db.table("summaries").create(
        {
            "id": str,
            "session_id": str,
            "upto_message_id": str,
            "text": str,
            "covered": int,
            "created": str,
        },
        pk="id",
        not_null={"session_id", "upto_message_id", "text", "created"},
    )
    db.execute("CREATE INDEX idx_summaries_session ON summaries(session_id, created)")


def m004_deferred_search_index(db: sqlite_utils.Database) -> None:
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


def m005_server_streams_and_users(db: sqlite_utils.Database) -> None:
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


def m006_images_and_request_cache(db: sqlite_utils.Database) -> None:
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


def m007_map_jobs(db: sqlite_utils.Database) -> None:
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


def m008_forgotten_messages(db: sqlite_utils.Database) -> None:
    """A message can be forgotten: kept and shown in the history, left out of what the model is sent."""
    db.execute("ALTER TABLE messages ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_message_search,
    m003_memory_and_summaries,
    m004_deferred_search_index,
    m005_server_streams_and_users,
    m006_images_and_request_cache,
    m007_map_jobs,
    m008_forgotten_messages,
]


def applied_migrations(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations recorded in this database, in the order applied."""
    if not db[MIGRATIONS_TABLE].exists():
        return []
    return [row[0] for row in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid")]


def migrate(db: sqlite_utils.Database, migrations: list[Migration] | None = None) -> list[str]:
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

"""SQLite persistence: sessions, history, tool calls, approvals, usage and the event log.

    from llmgine_nb.store import Store
    store = Store()            # LLMGINE_DB, else ~/.local/share/llmgine-nb/llmgine.db
    store = Store(":memory:")  # nothing on disk

See ``store.py`` for the API, ``migrations.py`` for the schema, ``paths.py``
for where the file lives and ``export.py`` for notebook/Markdown export.
"""

from __future__ import annotations

from .migrations import MIGRATIONS, applied_migrations, migrate
from .paths import ENV_VAR, default_db_path
from .records import (
    ApprovalRecord,
    LLMCall,
    LoadedSession,
    MemoryNote,
    SearchHit,
    SessionNotFound,
    SessionRecord,
    SessionSummary,
    StoredSummary,
    StoreError,
    ToolCallNotFound,
    ToolCallRecord,
    UsageRow,
)
from .store import Store, UnknownEvent

__all__ = [
    "ENV_VAR",
    "MIGRATIONS",
    "ApprovalRecord",
    "LLMCall",
    "LoadedSession",
    "MemoryNote",
    "SearchHit",
    "SessionNotFound",
    "SessionRecord",
    "SessionSummary",
    "StoreError",
    "Store",
    "StoredSummary",
    "ToolCallNotFound",
    "ToolCallRecord",
    "UnknownEvent",
    "UsageRow",
    "applied_migrations",
    "default_db_path",
    "migrate",
]

"""Persistence in SQLite or PostgreSQL: sessions, history, tool calls, approvals, usage and the event log.

    from llmgine_nb.store import Store
    store = Store()            # LLMGINE_DB, else ~/.local/share/llmgine-nb/llmgine.db
    store = Store(":memory:")  # nothing on disk
    store = Store("postgresql://user@host/db")  # shared by many processes

See ``store.py`` for the API, ``migrations.py`` for the schema, ``paths.py``
for where the file lives and ``export.py`` for notebook/Markdown export.
"""

from __future__ import annotations

from . import records
from .migrations import MIGRATIONS, applied_migrations, migrate
from .paths import ENV_VAR, default_db_path
from .records import *  # noqa: F403 - the record types, listed once: records.__all__
from .store import Store, UnknownEvent

__all__ = ["ENV_VAR", "MIGRATIONS", "Store", "UnknownEvent", "applied_migrations", "default_db_path", "migrate"]
__all__ += records.__all__

"""Where the database lives.

The default follows the convention a notebook user already has on disk:
Jupyter keeps its own data under the per-user data directory
(``~/.local/share/jupyter`` on Linux), so llmgine-nb keeps one database file
beside it:

1. an explicit ``path=`` argument wins;
2. else the ``LLMGINE_DB`` environment variable (a file path, or ``:memory:``);
3. else ``$XDG_DATA_HOME/llmgine-nb/llmgine.db`` on Linux and other POSIX
   systems, with ``XDG_DATA_HOME`` defaulting to ``~/.local/share``;
   ``~/Library/Application Support/llmgine-nb/llmgine.db`` on macOS;
   ``%APPDATA%\\llmgine-nb\\llmgine.db`` on Windows.

One file holds every session, so history search and usage totals span all
notebooks.  Set ``LLMGINE_DB`` per project to keep projects apart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["ENV_VAR", "MEMORY", "default_db_path", "resolve_db_path"]

ENV_VAR = "LLMGINE_DB"
MEMORY = ":memory:"
_APP_DIR = "llmgine-nb"
_FILE_NAME = "llmgine.db"


def _user_data_dir() -> Path:
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    xdg = os.environ.get("XDG_DATA_HOME")
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path.home() / ".local" / "share"


def default_db_path() -> str | Path:
    """The database used when no path is given: ``LLMGINE_DB`` or the per-user default."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return MEMORY if env == MEMORY else Path(env).expanduser()
    return _user_data_dir() / _APP_DIR / _FILE_NAME


def resolve_db_path(path: str | os.PathLike[str] | None) -> str | Path:
    """``path`` as given (``~`` expanded), or the default when it is None."""
    if path is None:
        return default_db_path()
    if str(path) == MEMORY:
        return MEMORY
    return Path(path).expanduser()

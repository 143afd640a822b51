"""Where the database lives.

The default follows the convention a notebook user already has on disk:
Jupyter keeps its own data under the per-user data directory
(``~/.local/share/jupyter`` on Linux), so llmgine-nb keeps one database file
beside it:

1. an explicit ``path=`` argument wins;
2. else the ``LLMGINE_DB`` environment variable (a file path, ``:memory:``, or a URL);
3. else ``$XDG_DATA_HOME/llmgine-nb/llmgine.db`` on Linux and other POSIX
   systems, with ``XDG_DATA_HOME`` defaulting to ``~/.local/share``;
   ``~/Library/Application Support/llmgine-nb/llmgine.db`` on macOS;
   ``%APPDATA%\\llmgine-nb\\llmgine.db`` on Windows.

One file holds every session, so history search and usage totals span all
notebooks.  Set ``LLMGINE_DB`` per project to keep projects apart.

Either place also takes a URL: ``postgresql://user:password@host/db`` (or
``postgres://``) opens the store on PostgreSQL (``store/postgres.py``);
``sqlite:///path/to/file.db`` is the same as the plain path.  A URL keeps its
password; ``display_target`` is what may be shown or logged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..secrets import redact_url_passwords

__all__ = ["ENV_VAR", "MEMORY", "POSTGRES_SCHEMES", "default_db_path", "display_target", "is_postgres_url", "resolve_db_path"]

ENV_VAR = "LLMGINE_DB"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite://"
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


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL database (a ``postgresql://`` URL) rather than a file."""
    return isinstance(target, str) and target.strip().lower().startswith(POSTGRES_SCHEMES)


def display_target(target: str | os.PathLike[str]) -> str:
    """``target`` as it may be shown or logged: a URL's password replaced by a marker."""
    return redact_url_passwords(str(target))


def _parse(text: str) -> str | Path:
    """A path or URL as typed: a Postgres URL as is, ``sqlite:///x`` as the path ``/x``, else a path."""
    text = text.strip()
    if is_postgres_url(text):
        return text
    if text.lower().startswith(_SQLITE_SCHEME):
        rest = text[len(_SQLITE_SCHEME):]
        if not rest.startswith("/"):
            raise ValueError(
                f"{display_target(text)!r} has no path after sqlite://; write sqlite:///relative.db, "
                "sqlite:////absolute/path.db or just the file's path"
            )
        # sqlite:///x.db is the relative path x.db, sqlite:////abs/x.db the absolute one (as in SQLAlchemy).
        text = rest[1:] or MEMORY
    if text == MEMORY:
        return MEMORY
    if "://" in text:
        raise ValueError(
            f"{display_target(text)!r} is neither a file path nor a database URL llmgine-nb knows; "
            "use a file path, sqlite:///path.db or postgresql://user@host/dbname"
        )
    return Path(text).expanduser()


def default_db_path() -> str | Path:
    """The database used when none is given: ``LLMGINE_DB`` (a path or URL) or the per-user default."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _parse(env)
    return _user_data_dir() / _APP_DIR / _FILE_NAME


def resolve_db_path(path: str | os.PathLike[str] | None) -> str | Path:
    """``path`` as given (``~`` expanded; a URL parsed), or the default when it is None."""
    if path is None:
        return default_db_path()
    if isinstance(path, Path):
        return path.expanduser()
    return _parse(os.fspath(path))

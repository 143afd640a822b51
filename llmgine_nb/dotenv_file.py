"""Where the ``.env`` file is, and what it says (never copied into ``os.environ``).

Found once, as an absolute path, the first time configuration or the
redactor asks, so a later change of directory (``%cd``) neither loses its
keys for the redactor nor points the model client at another file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["dotenv_path", "use_dotenv", "read_dotenv"]

_dotenv_location: Path | None = None
_dotenv_lock = threading.Lock()


def dotenv_path() -> Path:
    """The ``.env`` file configuration reads: the working directory's, as an absolute path
    fixed the first time anything asks (so a later change of directory does not move it)."""
    global _dotenv_location
    with _dotenv_lock:
        if _dotenv_location is None:
            _dotenv_location = (Path.cwd() / ".env").absolute()
        return _dotenv_location


def use_dotenv(path: str | os.PathLike[str] | None) -> Path | None:
    """Read configuration and secrets from ``path`` from now on (None: find ``./.env`` again
    at the next use).  Returns the path as it will be used."""
    global _dotenv_location
    with _dotenv_lock:
        _dotenv_location = Path(path).expanduser().absolute() if path is not None else None
        return _dotenv_location


_dotenv_cache: dict[Path, tuple[float, dict[str, str]]] = {}


def read_dotenv(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``.env`` file's values (never copied into ``os.environ``); re-read when the file changes."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    cached = _dotenv_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    _dotenv_cache[path] = (mtime, values)
    return values

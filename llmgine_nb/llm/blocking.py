"""A switch that forbids real model calls, for test suites (as pydantic-ai's ``ALLOW_MODEL_REQUESTS``).

    with block_real_models():
        ...                       # any real model call raises RealModelsBlockedError

or for a whole test run: ``LLMGINE_BLOCK_REAL_MODELS=1`` in the environment
(``allow_real_models()`` lifts it for one block).  The offline ``scripted``
model is never blocked, nor are litellm ``mock_response`` calls, nor calls
to a server on this machine's loopback address (127.0.0.1, localhost, ::1):
none of those leaves the machine or costs anything.

The switch is process-wide on purpose: model calls run on the bus's
background thread, where a context variable set in a test would not reach.
The most recently entered block that is still open decides; blocks opened
on different threads may end in any order without undoing each other.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from ..replies import is_on
from .errors import RealModelsBlockedError

__all__ = [
    "block_real_models",
    "allow_real_models",
    "real_models_allowed",
    "check_real_call",
    "is_loopback_url",
    "BLOCK_ENV",
]

BLOCK_ENV = "LLMGINE_BLOCK_REAL_MODELS"

class _Override:
    """One open block; removed by identity when its block ends."""

    __slots__ = ("allowed",)

    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed


_lock = threading.Lock()
# The open blocks, oldest first; the newest decides (none open: the
# environment variable does).  Blocks on different threads may end in any
# order, so each block removes its own entry, never simply the last one.
_overrides: list[_Override] = []


def _env_blocks() -> bool:
    return is_on(os.environ.get(BLOCK_ENV, ""))


def real_models_allowed() -> bool:
    """Whether real (networked, billed) model calls may be made right now."""
    with _lock:
        if _overrides:
            return _overrides[-1].allowed
    return not _env_blocks()


@contextlib.contextmanager
def _override(allowed: bool) -> Iterator[None]:
    entry = _Override(allowed)
    with _lock:
        _overrides.append(entry)
    try:
        yield
    finally:
        with _lock:
            _overrides.remove(entry)  # by identity: _Override has no __eq__


def block_real_models() -> contextlib.AbstractContextManager[None]:
    """Inside this block every real model call raises ``RealModelsBlockedError``."""
    return _override(False)


def allow_real_models() -> contextlib.AbstractContextManager[None]:
    """Inside this block real model calls are allowed, even under ``LLMGINE_BLOCK_REAL_MODELS``."""
    return _override(True)


def is_loopback_url(url: str | None) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    if not url:
        return False
    try:
        host = urlsplit(url if "://" in url else f"http://{url}").hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_real_call(model: str, api_base: str | None = None) -> None:
    """Raise ``RealModelsBlockedError`` if a call to ``model`` at ``api_base`` is forbidden now."""
    if real_models_allowed() or is_loopback_url(api_base):
        return
    raise RealModelsBlockedError(
        f"Real model calls are blocked (block_real_models() or {BLOCK_ENV}), "
        f"so {model} was not called",
        model=None,
    )

"""Loading litellm lazily, offline and quietly.

litellm takes seconds to import, so nothing in ``llmgine_nb`` imports it at
module level: the first real model call does, through ``load_litellm()``.
Before the import we ask litellm to use its bundled cost map (no network at
import) unless the user chose otherwise, and after it we keep litellm's own
log lines and "give feedback" banners out of cell output: its records go to
the ``llmgine_nb.llm.litellm`` logger at DEBUG instead.  Setting
``LITELLM_LOG`` yourself leaves litellm's logging exactly as litellm set it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import warnings
from types import ModuleType

__all__ = ["load_litellm", "aload_litellm", "preload", "litellm_loaded"]

log = logging.getLogger("llmgine_nb.llm")
_forward_log = logging.getLogger("llmgine_nb.llm.litellm")

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")

_module: ModuleType | None = None
_lock = threading.Lock()


def litellm_loaded() -> bool:
    """Whether litellm has been imported and set up by us."""
    return _module is not None


class _ForwardToOurLogger(logging.Handler):
    """Re-emits litellm's records, at DEBUG, under our own logger."""

    def emit(self, record: logging.LogRecord) -> None:
        if _forward_log.isEnabledFor(logging.DEBUG):
            _forward_log.debug("[%s] %s", record.name, record.getMessage())


def _quiet_loggers(litellm: ModuleType) -> None:
    if "LITELLM_LOG" in os.environ:
        return  # the user asked for litellm's own logging
    secret_filter = getattr(getattr(litellm, "_logging", None), "_secret_filter", None)
    forward = _ForwardToOurLogger()
    if secret_filter is not None:
        forward.addFilter(secret_filter)  # litellm's key redaction, kept on the way through
    for name in _LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(forward)
        logger.propagate = False


def _use_bundled_cost_map() -> None:
    """Make litellm use the cost map it ships with instead of downloading one at import.

    The one place library code touches the user's environment: litellm reads
    this switch from ``LITELLM_LOCAL_MODEL_COST_MAP`` at import and has no
    other way to stay off the network.  Set only when the user has not set
    it (their own value, "False" included, wins), before the first import.
    """
    if "LITELLM_LOCAL_MODEL_COST_MAP" not in os.environ:
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"


def load_litellm() -> ModuleType:
    """Import litellm (once), offline and quiet, and return the module."""
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            _use_bundled_cost_map()
            import litellm

            litellm.suppress_debug_info = True
            # pydantic warns about litellm's own TypedDicts when it first builds their schemas;
            # nothing a user of ours can act on, and it would land in cell output.
            warnings.filterwarnings("ignore", message=r".*using the `ReadOnly` qualifier", category=UserWarning)
            _quiet_loggers(litellm)
            log.debug("litellm %s loaded", getattr(litellm, "__version__", "?"))
            _module = litellm
    return _module


async def aload_litellm() -> ModuleType:
    """``load_litellm`` without blocking the event loop during the slow first import."""
    if _module is not None:
        return _module
    return await asyncio.to_thread(load_litellm)


def preload() -> threading.Thread:
    """Start importing litellm in a background thread, so the first call is fast."""
    thread = threading.Thread(target=load_litellm, name="llmgine-litellm-import", daemon=True)
    thread.start()
    return thread

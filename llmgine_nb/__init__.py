"""llmgine-nb: LLM applications as small patterns, native to Jupyter.

``import llmgine_nb`` stays fast: heavy parts (litellm, widgets) load only
when first used.
"""

from typing import Any

from .bus import DuplicateHandlerError, MessageBus, Registration, Session
from .loop import BackgroundLoop
from .messages import (
    Command,
    CommandFailed,
    CommandResult,
    Event,
    HandlerFailed,
    Message,
    SessionEnded,
    SessionStarted,
    current_session_id,
)
from .tools import ApprovalDecision, Tool, ToolContext, ToolManager, ToolResult, tool
from .version import __version__ as __version__

__all__ = [
    "ApprovalDecision",
    "Tool",
    "ToolContext",
    "ToolManager",
    "ToolResult",
    "tool",
    "BackgroundLoop",
    "Command",
    "CommandFailed",
    "CommandResult",
    "DuplicateHandlerError",
    "Event",
    "HandlerFailed",
    "Message",
    "MessageBus",
    "Registration",
    "Session",
    "SessionEnded",
    "SessionStarted",
    "current_session_id",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext llmgine_nb``: the ``%llmgine`` and ``%%llmgine`` magics (see ``llmgine_nb.notebook``)."""
    from .notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext llmgine_nb`` (and ``%reload_ext``): the magics go, the runtime closes."""
    from .notebook.extension import unload

    unload(ipython)


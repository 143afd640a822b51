"""llmgine-nb: LLM applications as small patterns, native to Jupyter.

``import llmgine_nb`` stays fast: heavy parts (litellm, widgets) load only
when first used.
"""

from typing import TYPE_CHECKING, Any

from .bus import DuplicateHandlerError, MessageBus, Registration, Session
from .lazy import lazy_names
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
from .version import __version__ as __version__

if TYPE_CHECKING:
    from .tools import ApprovalDecision, Tool, ToolContext, ToolManager, ToolResult, tool

# The tool machinery (a third of this package's import time) loads on first use of one of
# these names: `import llmgine_nb` for the bus alone, or for %load_ext, does not wait for it.
_FROM_TOOLS = frozenset({"ApprovalDecision", "Tool", "ToolContext", "ToolManager", "ToolResult", "tool"})

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


__getattr__ = lazy_names(__name__, dict.fromkeys(_FROM_TOOLS, "tools"), globals())


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext llmgine_nb``: the ``%llmgine`` and ``%%llmgine`` magics (see ``llmgine_nb.notebook``)."""
    from .notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext llmgine_nb`` (and ``%reload_ext``): the magics go, the runtime closes."""
    from .notebook.extension import unload

    unload(ipython)


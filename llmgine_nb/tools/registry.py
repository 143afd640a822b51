"""``ToolRegistry``: what a helper of the ``ToolManager`` may use of it.

The MCP servers (``mcp/hub.py``) and the lenient importer (``legacy.py``)
add tools to the manager that made them.  They are typed against this
protocol, not against ``ToolManager`` itself, so that the manager can
import them without the two modules importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..bus import MessageBus
    from .tool import Tool

__all__ = ["ToolRegistry"]


class ToolRegistry(Protocol):
    """The part of ``ToolManager`` its helpers use: register, look up, unregister, and its bus."""

    bus: MessageBus | None

    @property
    def names(self) -> list[str]: ...

    def register(self, fn: Any, *, replace: bool = False, **options: Any) -> Tool: ...

    def unregister(self, name: str) -> Tool: ...

    def get(self, name: str) -> Tool | None: ...

    def __contains__(self, name: object) -> bool: ...

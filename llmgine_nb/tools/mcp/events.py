"""Events of MCP servers, published on the tool manager's bus."""

from __future__ import annotations

from pydantic import Field

from ...messages import Event

__all__ = ["MCPEvent", "MCPServerStarted", "MCPServerFailed", "MCPToolsChanged"]


class MCPEvent(Event):
    """Base of the MCP events: which server."""

    server: str


class MCPServerStarted(MCPEvent):
    """A server answered and its tools are registered."""

    tools: list[str] = Field(default_factory=list)
    protocol_version: str = ""


class MCPServerFailed(MCPEvent):
    """A server could not be started or reached; ``error`` is the sentence to show."""

    error: str


class MCPToolsChanged(MCPEvent):
    """A server said its tools changed; the session's tools now match its new list."""

    tools: list[str] = Field(default_factory=list)
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)

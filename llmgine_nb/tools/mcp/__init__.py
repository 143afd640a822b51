"""MCP: other applications' tools in a session, and a session's tools for other applications.

Client (on the official ``mcp`` SDK)::

    tools.add_mcp("time", "python", ["-m", "mcp_server_time"])       # stdio
    tools.add_mcp("search", url="http://127.0.0.1:8000/mcp")         # streamable HTTP
    tools.mcp.load("mcp.json")                                        # an mcpServers file
    tools.mcp.status(); tools.mcp.restart("time"); tools.mcp.remove("time")

Each server tool becomes a tool of the manager, verified and approved like a
local one; its risk comes from the MCP hints (see ``convert.py``).

Server: ``serve_stdio(tools)`` / ``serve_http(tools, port=...)`` /
``mcp_server(tools)`` (see ``server.py``), or ``llmgine-nb mcp-serve MODULE:TOOLS``.
"""

from .config import MCPConfigError, MCPServerConfig, load_config
from .connection import MCPConnection, MCPServerError
from .convert import result_to_output, risk_from_hints
from .events import MCPEvent, MCPServerFailed, MCPServerStarted, MCPToolsChanged
from .hub import MCPServers

__all__ = [
    "MCPConfigError",
    "MCPConnection",
    "MCPEvent",
    "MCPServerConfig",
    "MCPServerError",
    "MCPServerFailed",
    "MCPServerStarted",
    "MCPServers",
    "MCPToolsChanged",
    "load_config",
    "result_to_output",
    "risk_from_hints",
]

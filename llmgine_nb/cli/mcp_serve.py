"""``llmgine-nb mcp-serve MODULE[:TOOLS]``: offer Python tools to other applications over MCP.

``TOOLS`` names a ``ToolManager``, or a list of ``@tool`` functions, in
``MODULE``; without it, every ``@tool`` function of the module is served.
Over stdio by default (what MCP hosts start), or streamable HTTP with
``--http PORT``.  Approval happens here: see ``llmgine_nb.tools.mcp.server``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from typing import Any

HELP = "serve a module's tools over MCP (stdio, or streamable HTTP with --http PORT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="MODULE[:TOOLS]", help="e.g. my_tools:tools (a ToolManager or a list of @tool functions)")
    parser.add_argument("--http", type=int, metavar="PORT", default=None, help="serve streamable HTTP on this port")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on with --http (default 127.0.0.1)")
    parser.add_argument("--path", default="/mcp", help="endpoint path with --http (default /mcp)")
    parser.add_argument("--allow", action="append", default=[], metavar="TOOL",
                        help="approve this tool's calls without asking (repeatable; '*' for all)")
    parser.add_argument("--no-ask-client", action="store_true", help="never ask the MCP client to approve (elicitation)")
    parser.add_argument("--name", default="llmgine-nb", help="the server name MCP clients see")


def load_tools(target: str) -> Any:
    """The ``ToolManager`` ``MODULE[:TOOLS]`` names (a list of functions is wrapped in one)."""
    from ..bus import MessageBus
    from ..tools import ToolManager
    from ..tools.tool import Tool, tool_options

    module_name, _, attribute = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to where it runs
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"mcp-serve: cannot import {module_name!r} ({exc}); run it where the module is, or fix PYTHONPATH") from None
    if attribute:
        if not hasattr(module, attribute):
            raise SystemExit(f"mcp-serve: module {module_name!r} has no {attribute!r}")
        found = getattr(module, attribute)
    else:
        found = [v for v in vars(module).values() if isinstance(v, Tool) or (callable(v) and tool_options(v) is not None)]
        if not found:
            raise SystemExit(f"mcp-serve: module {module_name!r} has no @tool functions; name a ToolManager as MODULE:TOOLS")
    manager = found if isinstance(found, ToolManager) else ToolManager(list(found))
    if manager.bus is None:
        manager.bus = MessageBus("mcp-serve")  # approvals are bus commands, so there must be a bus
    return manager


def run(args: argparse.Namespace) -> int:
    from ..tools.mcp.server import ToolServer

    tools = load_tools(args.target)
    server = ToolServer(tools, name=args.name, allow=args.allow, ask_client=not args.no_ask_client)
    if args.http:
        print(f"MCP server {args.name}: {len(tools)} tools at http://{args.host}:{args.http}{args.path}", file=sys.stderr)
        asyncio.run(server.run_http(host=args.host, port=args.http, path=args.path))
    else:
        asyncio.run(server.run_stdio())  # stdout is the protocol: nothing else may be printed there
    return 0

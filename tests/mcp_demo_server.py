"""An MCP server for the MCP tests, built on the official SDK's ``MCPServer``.

Used three ways: imported (``make_server()``, reached through the SDK's
in-memory transport), run over stdio (``python tests/mcp_demo_server.py``)
and over streamable HTTP (``python tests/mcp_demo_server.py --http PORT``).
Its tools cover the risk hints, structured and image results, an error
result, a crash mid-call and a tool list that changes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import threading
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel

# A 1x1 PNG: small, but a real image.
PIXEL = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5f0"
    "e1a80000000049454e44ae426082"
)).decode()


class Weather(BaseModel):
    city: str
    celsius: float


def make_server() -> MCPServer:
    server = MCPServer("demo-notes", log_level="WARNING")
    notes: dict[int, str] = {1: "buy milk"}

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def weather(city: str) -> Weather:
        """The weather in a city (structured)."""
        return Weather(city=city, celsius=21.5)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False))
    def save_note(text: str) -> str:
        """Save a note."""
        notes[max(notes) + 1] = text
        return f"saved note {max(notes)}"

    @server.tool()
    def delete_note(note_id: int) -> str:
        """Delete a note (no annotations: the protocol's defaults make it destructive)."""
        if note_id not in notes:
            raise ToolError(f"no note {note_id}")
        del notes[note_id]
        return f"deleted note {note_id}"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def chart() -> list[TextContent | ImageContent]:
        """A chart: a caption and an image."""
        return [TextContent(type="text", text="one pixel"), ImageContent(type="image", data=PIXEL, mimeType="image/png")]

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def crash() -> str:
        """End the server's process in the middle of the call."""
        os._exit(3)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def exit_soon() -> str:
        """Answer, then end the server's process a moment later (a crash while idle)."""
        threading.Thread(target=lambda: (time.sleep(0.3), os._exit(4)), daemon=True).start()
        return "bye"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    async def slow(seconds: float) -> str:
        """Wait, then answer."""
        await asyncio.sleep(seconds)
        return "finally"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False))
    async def grow(name: str, ctx: Context) -> str:
        """Add a tool called NAME and tell the client the list changed."""
        server.add_tool(lambda: f"I am {name}", name=name, description=f"added at run time: {name}",
                        annotations=ToolAnnotations(readOnlyHint=True))
        await ctx.notify_tools_changed()  # 2026-07-28 clients (subscriptions/listen)
        if ctx.protocol_version and ctx.protocol_version < "2026":
            await ctx.request_context.session.send_tool_list_changed()  # handshake-era clients
        return f"added {name}"

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None, help="serve streamable HTTP on 127.0.0.1:PORT")
    args = parser.parse_args()
    logging.getLogger("mcp").setLevel(logging.WARNING)
    server = make_server()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()

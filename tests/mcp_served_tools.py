"""Tools that the MCP server tests serve (``llmgine-nb mcp-serve mcp_served_tools:tools``)."""

from __future__ import annotations

from llmgine_nb import ToolManager, tool

notes: list[str] = []


@tool
def count_notes() -> int:
    """How many notes there are."""
    return len(notes)


@tool(risk="write")
def add_note(text: str) -> dict:
    """Add a note.

    Args:
        text: What to remember.
    """
    notes.append(text)
    return {"saved": text, "count": len(notes)}


@tool(risk="destructive")
def clear_notes() -> str:
    """Forget every note."""
    notes.clear()
    return "cleared"


@tool(permissions={"admin"})
def secret_report() -> str:
    """Only for admins."""
    return "top secret"


tools = ToolManager([count_notes, add_note, clear_notes, secret_report])

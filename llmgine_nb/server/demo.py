"""An offline demo for the server and the terminal client: two tools and a model that uses them.

``llmgine-nb serve --demo`` and ``llmgine-nb chat --demo`` run it, and the
tests and benchmarks drive it: no key, no network, the same engine.

* "note: buy milk" -> the model calls ``save_note`` (a write: it asks approval first);
* "pick a colour"  -> the model calls ``pick_colour``, which asks the user to choose;
* anything else    -> the offline model's echo, with a little Markdown.
"""

from __future__ import annotations

from typing import Any

from ..chat import ChatMessage
from ..llm import ScriptedLLM
from ..llm.scripted import ScriptedReply, call, default_reply
from ..tools import ToolContext, tool

__all__ = ["demo_llm", "demo_tools", "save_note", "pick_colour"]

NOTES: list[str] = []


@tool(risk="write")
def save_note(text: str) -> str:
    """Save a note for later.

    Args:
        text: what to remember
    """
    NOTES.append(text)
    return f"saved note #{len(NOTES)}: {text}"


@tool
async def pick_colour(ctx: ToolContext) -> str:
    """Ask the user to pick a colour."""
    choice = await ctx.choose("Which colour?", ["red", "green", "blue"])
    return f"the user picked {choice}" if choice else "the user did not pick a colour"


def demo_tools() -> list[Any]:
    return [save_note, pick_colour]


def _reply(messages: list[ChatMessage], tools: list[dict[str, Any]] | None) -> Any:
    last = messages[-1] if messages else None
    if last is not None and last.role == "tool":
        return f"Done. The tool said: *{last.content}*"
    text = (last.content or "").strip() if last is not None and last.role == "user" else ""
    lowered = text.lower()
    if lowered.startswith(("note:", "note ", "remember ")):
        note = text.split(" ", 1)[1] if " " in text else ""
        if lowered.startswith("note:"):
            note = text[5:].strip()
        return ScriptedReply("I'll save that note.", [call("save_note", text=note)])
    if "colour" in lowered or "color" in lowered:
        return ScriptedReply(tool_calls=[call("pick_colour")])
    return "**Offline demo.** " + default_reply(messages)


def demo_llm(model: str | None = None, *, delay_s: float = 0.0) -> ScriptedLLM:
    """The demo's model: deterministic, offline, streaming word by word (``delay_s`` between words)."""
    return ScriptedLLM(_reply, delay_s=delay_s)

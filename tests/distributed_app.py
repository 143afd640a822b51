"""The model and tools the distributed tests' workers run (``llmgine-nb worker --app distributed_app:options``).

* "tool: LABEL" -> the model calls ``record_effect(label=LABEL)``, which appends a line to the file
  named by ``LLMGINE_TEST_EFFECTS`` (after ``LLMGINE_TEST_TOOL_SLEEP`` seconds): the tests count the
  lines to show that no effect happened twice;
* anything else -> "reply to: <text>", streamed word by word with ``LLMGINE_TEST_DELAY`` seconds
  between words, then "(end)" so a test can tell a whole reply from a cut one.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from llmgine_nb.chat import ChatMessage
from llmgine_nb.llm import ScriptedLLM
from llmgine_nb.llm.scripted import ScriptedReply, call
from llmgine_nb.tools import tool


@tool(risk="read")
async def record_effect(label: str) -> str:
    """Record that an effect happened.

    Args:
        label: what happened
    """
    await asyncio.sleep(float(os.environ.get("LLMGINE_TEST_TOOL_SLEEP", "0")))
    with open(os.environ["LLMGINE_TEST_EFFECTS"], "a", encoding="utf-8") as out:
        out.write(f"{label}\n")
    return f"recorded {label}"


def reply(messages: list[ChatMessage], tools: list[dict[str, Any]] | None) -> Any:
    last = messages[-1]
    if last.role == "tool":
        return f"done: {last.content} (end)"
    text = (last.content or "").strip()
    if text.startswith("tool: "):
        return ScriptedReply(tool_calls=[call("record_effect", label=text[6:])])
    words = int(os.environ.get("LLMGINE_TEST_WORDS", "3"))
    return " ".join(["reply", "to:", text, *(["word"] * words), "(end)"])


def options() -> dict[str, Any]:
    delay = float(os.environ.get("LLMGINE_TEST_DELAY", "0"))
    return {"llm_factory": lambda model: ScriptedLLM(reply, delay_s=delay), "tools": [record_effect]}


def demo_options() -> dict[str, Any]:
    """The server demo's model and tools (``llmgine-nb serve --demo``'s), for a worker."""
    from llmgine_nb.server.demo import demo_llm, demo_tools

    return {"llm_factory": lambda model: demo_llm(delay_s=0.01), "tools": demo_tools()}

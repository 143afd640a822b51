"""The model and tools the distributed tests' workers run (``llmgine-nb worker --app distributed_app:options``).

* "tool: LABEL" -> the model calls ``record_effect(label=LABEL)``, which appends a line to the file
  named by ``LLMGINE_TEST_EFFECTS`` (after ``LLMGINE_TEST_TOOL_SLEEP`` seconds): the tests count the
  lines to show that no effect happened twice;
* "block: SECONDS" -> the model blocks the worker's event loop (``time.sleep``) that long, then replies;
* anything else -> "reply to: <text>", streamed word by word with ``LLMGINE_TEST_DELAY`` seconds
  between words, then "(end)" so a test can tell a whole reply from a cut one.

Each model call on a person's message appends that message to the file named by ``LLMGINE_TEST_CALLS``
(when set): the tests count them to show that no turn ran twice.  ``dying_options`` is ``options`` in a
worker that kills itself (SIGKILL) once, when it is about to send the first turn's result: the turn's end
is in the store, its result not yet in Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
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
    if os.environ.get("LLMGINE_TEST_CALLS"):
        with open(os.environ["LLMGINE_TEST_CALLS"], "a", encoding="utf-8") as out:
            out.write(f"{text}\n")
    if text.startswith("block: "):
        time.sleep(float(text[7:]))  # on purpose: a synchronous call that holds the event loop
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


def dying_options() -> dict[str, Any]:
    """``options``, in a worker that dies (SIGKILL) just before it sends its first turn's result.

    Once per file named by ``LLMGINE_TEST_DIE_ONCE``: the worker that creates it dies, the others live.
    """
    from llmgine_nb.distributed.worker import Worker

    finish = Worker._finish

    async def finish_or_die(self: Worker, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("turn_of"):
            try:
                open(os.environ["LLMGINE_TEST_DIE_ONCE"], "x").close()
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        await finish(self, *args, **kwargs)

    Worker._finish = finish_or_die  # type: ignore[method-assign]
    return options()

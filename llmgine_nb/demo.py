"""The main job: ``python -m llmgine_nb.demo`` (what ``make demo`` runs).

An offline, end-to-end run of the engine: a chat session persisted to a
SQLite file, a turn that calls a tool, a risky tool that needs approval
(given here by a visible policy), and the event stream printed as it
happens, then the usage.  Set ``LLMGINE_MODEL`` (and a key) to watch a real
model do the same; without one the scripted offline model answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from llmgine_nb import Event, MessageBus, ToolManager, tool
from llmgine_nb.engine import ChatEngine, TurnFailed, TurnFinished
from llmgine_nb.llm import LLMTextDelta, get_llm
from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
from llmgine_nb.store import Store
from llmgine_nb.tools import AutoApproval
from llmgine_nb.tools.events import ApprovalDecided, ToolFinished

NOTES: list[str] = []


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


@tool(risk="write")
def save_note(text: str) -> str:
    """Save a note for later.

    Args:
        text: what to remember.
    """
    NOTES.append(text)
    return f"saved note #{len(NOTES)}"


def offline_script() -> ScriptedLLM:
    """What the offline model says in the demo, so that it shows tools and approval."""
    return ScriptedLLM(
        [
            ScriptedReply(tool_calls=[call("word_count", text="the quick brown fox jumps")]),
            "That sentence has **5 words**.",
            ScriptedReply(tool_calls=[call("save_note", text="the fox sentence has 5 words")]),
            "Saved it as a note.",
        ]
    )


def print_events(event: Event) -> None:
    if isinstance(event, LLMTextDelta):
        print(event.text, end="", flush=True)
    elif isinstance(event, ToolFinished):
        print(f"\n  [tool] {event.tool_name} -> {event.result.status}: {event.result.content}")
    elif isinstance(event, ApprovalDecided):
        verdict = "approved" if event.approved else "denied"
        print(f"\n  [approval] {event.tool_name}: {verdict} ({event.source})")
    elif isinstance(event, TurnFinished):
        cost = "unknown" if event.cost_usd is None else f"${event.cost_usd:.6f}"
        print(
            f"\n  [{event.model}] {event.usage.input_tokens} tokens in, {event.usage.output_tokens} out, "
            f"cost {cost}, {event.latency_s * 1000:.0f} ms, {event.steps} steps\n"
        )
    elif isinstance(event, TurnFailed):
        print(f"\n  [failed] {event.reason}\n")


async def main(db: Path) -> None:
    bus = MessageBus()
    bus.subscribe(Event, print_events)
    real = bool(os.environ.get("LLMGINE_MODEL"))
    llm = get_llm(bus=bus) if real else offline_script()
    llm.bus = bus
    tools = ToolManager([word_count, save_note], bus=bus)
    # A visible approval policy: a notebook would show an Approve/Deny card instead.
    AutoApproval.approve_all().attach(bus)
    store = Store(db)
    engine = await ChatEngine(bus, store=store, tools=tools, llm=llm).start()
    print(f"session {engine.session_id} in {db} (model: {engine.model})\n")

    for prompt in ["How many words are in 'the quick brown fox jumps'?", "Please save that as a note."]:
        print(f"you> {prompt}\nllm> ", end="")
        await engine.send(prompt)

    totals = store.usage("session", session=engine.session_id)[0]
    print(f"usage: {totals.calls} model calls, {totals.total_tokens} tokens, cost ${totals.cost:.6f}")
    print(f"history: {len(store.messages(engine.session_id))} messages persisted; notes saved: {NOTES}")
    await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run one offline llmgine-nb session end to end.")
    parser.add_argument("--db", type=Path, default=Path(tempfile.mkdtemp()) / "demo.db", help="SQLite file to use")
    asyncio.run(main(parser.parse_args().db))

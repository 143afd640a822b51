"""``tasks_turn``: a task-assistant chat turn against the same turn on a bare engine.

The value is ``TaskAssistant.handle("1002", "show me Sam's tasks in
Recruitment")``: the board lookup of the platform user, the per-turn system
prompt, the offline planner parsing the request, the ``find_tasks`` tool on
a SQLite board, the question plumbing.  The baseline is the same turn
through a ``ChatEngine`` with the same tools and a scripted model that makes
the same ``find_tasks`` call and replies with its result: everything but the
assistant layer.  Both persist to a SQLite file; blocks are interleaved
after a warm-up, and each side keeps one session (as a chat does).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from _common import Figure

BLOCK = 15
ROUNDS = 5
TODAY = date(2026, 5, 6)
TEXT = "show me Sam's tasks in Recruitment"


async def _measure() -> tuple[float, float]:
    from llmgine_nb import MessageBus, ToolManager
    from llmgine_nb.apps.tasks import TaskAssistant, TaskTools, demo_board
    from llmgine_nb.engine import ChatEngine
    from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
    from llmgine_nb.store import Store

    tmp = Path(tempfile.mkdtemp())
    board = demo_board(today=TODAY, path=str(tmp / "board.db"))

    assistant = TaskAssistant(board, store=Store(tmp / "assistant.db"), today=TODAY)

    def fixed_model(messages, tools):
        if messages[-1].role == "tool":
            return messages[-1].content
        return ScriptedReply(tool_calls=[call("find_tasks", assignee="Sam", project="Recruitment")])

    bus = MessageBus()
    manager = ToolManager(bus=bus)
    TaskTools(board, today=TODAY).register(manager)
    engine = await ChatEngine(
        bus, store=Store(tmp / "engine.db"), tools=manager, llm=ScriptedLLM(fixed_model, bus=bus),
        system_prompt=assistant.system_prompt,
    ).start()
    manager.set_access(engine.session_id, user="mei", grants={"tasks:read", "tasks:write"})

    async def with_assistant() -> None:
        reply = await assistant.handle("1002", TEXT)
        assert reply.text.startswith("Sam Carter's active tasks in Recruitment"), reply

    async def bare() -> None:
        result = await engine.send(TEXT)
        assert result.text.startswith("Sam Carter's active tasks in Recruitment"), result

    async def block(fn) -> float:
        start = time.perf_counter()
        for _ in range(BLOCK):
            await fn()
        return (time.perf_counter() - start) / BLOCK

    await block(bare)
    await block(with_assistant)
    best_bare = best_assistant = float("inf")
    for _ in range(ROUNDS):
        best_bare = min(best_bare, await block(bare))
        best_assistant = min(best_assistant, await block(with_assistant))
    await assistant.close()
    await engine.close()
    board.close()
    return best_assistant, best_bare


def bench_tasks_turn() -> Figure:
    value, baseline = asyncio.run(_measure())
    ratio = value / baseline
    return Figure(
        "tasks_turn", value * 1000, baseline * 1000, "ms/turn", "ratio <= 1.3", ok=ratio <= 1.3,
        note="view-tasks turn: TaskAssistant.handle vs the same tools on a bare ChatEngine",
    )


BENCHMARKS = [bench_tasks_turn]

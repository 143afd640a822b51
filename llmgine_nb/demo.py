"""The main job: ``python -m llmgine_nb.demo`` (what ``make demo`` runs).

An offline, end-to-end run of the task assistant - the seed design's "Darcy"
flows - through the real engine, tools, approvals and SQLite store: an
unknown user verifies by email, views tasks, assigns one (confirmed before
anything is written), and marks one done after a "did you mean 1) 2) 3)?".
Then what it cost and what was stored.  Set ``LLMGINE_MODEL`` (and the
provider's key) to let a real model drive the same tools.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from datetime import date
from pathlib import Path

from llmgine_nb import Event
from llmgine_nb.apps.tasks import TaskAssistant, demo_board
from llmgine_nb.store import Store
from llmgine_nb.tools.events import ApprovalDecided, ToolFinished

TODAY = date(2026, 5, 6)  # fixed, so that "due Friday" reads the same on every run

CONVERSATION = [
    ("2001", "show me my tasks"),
    ("2001", "I'm priya@example.org"),
    ("1002", "show me Sam's tasks in Recruitment"),
    ("1002", "assign the budget review to Sam due Friday in Finance"),
    ("1002", "yes"),
    ("1001", "I finished the recruitment stuff"),
    ("1001", "2"),
]


def print_tool_activity(event: Event) -> None:
    if isinstance(event, ToolFinished):
        print(f"      [tool {event.tool_name}: {event.result.status}, {event.result.duration * 1000:.1f} ms]")
    elif isinstance(event, ApprovalDecided):
        print(f"      [approval of {event.tool_name}: {'approved' if event.approved else 'denied'}]")


async def main(db: Path) -> None:
    board = demo_board(today=TODAY, path=str(db.with_name("board.db")))
    store = Store(db)
    assistant = TaskAssistant(board, store=store, today=TODAY, model=os.environ.get("LLMGINE_MODEL"))
    assistant.bus.subscribe(Event, print_tool_activity)
    names = {"1001": "Sam", "1002": "Mei", "2001": "a new user"}
    print(f"Task assistant on a demo board (model: {assistant.llm.model}); data in {db.parent}\n")
    for user, text in CONVERSATION:
        print(f"{names[user]:>10} > {text}")
        reply = await assistant.handle(user, text)
        for line in str(reply).splitlines():
            print(f"{'Darcy':>10} < {line}")
        print()

    usage = store.usage("model")
    calls = sum(row.calls for row in usage)
    tokens = sum(row.total_tokens for row in usage)
    print(f"{calls} model calls, {tokens} tokens, cost ${sum(row.cost for row in usage):.6f}")
    print(f"{len(store.list_sessions())} sessions and {sum(len(store.tool_calls(s.id)) for s in store.list_sessions())} "
          f"tool calls stored; the board now has {len(board.tasks())} tasks")
    await assistant.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the task assistant end to end, offline.")
    parser.add_argument("--db", type=Path, default=Path(tempfile.mkdtemp()) / "llmgine.db", help="SQLite file to use")
    asyncio.run(main(parser.parse_args().db))

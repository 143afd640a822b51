"""The main job: ``python -m llmgine_nb.demo`` (what ``make demo`` runs).

An offline, end-to-end run of the task assistant - the seed design's "Darcy"
flows - through the real engine, tools, approvals and SQLite store: an
unknown user verifies by email, views tasks, assigns one (confirmed before
anything is written), and marks one done after a "did you mean 1) 2) 3)?".
Then what it cost, what was stored, and what to run next.  Its databases live
in a temporary folder removed at the end, unless ``--db`` names a file to keep.
Set ``LLMGINE_MODEL`` (and the provider's key) to let a real model drive the
same tools.
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
from llmgine_nb.apps.tasks.demo import DEMO_LINKS
from llmgine_nb.notebook.style import fmt_total_cost
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


#: The demo runs as a chat in this terminal: its users are "chat" users, linked as the board's own demo links.
PLATFORM = "chat"

NEXT_STEPS = """\
What next:
  make lab          JupyterLab on the tutorials: open tutorials/01-quickstart.ipynb first
                    (no key needed: the offline model answers, calls tools and shows approval cards)
  a real model      put LLMGINE_MODEL=openai/gpt-4o-mini and OPENAI_API_KEY=sk-... in a .env file here
                    (or the environment), then run make demo again: the same flows, driven by that model
  make test         every test, tutorial and example notebook, in real kernels"""


def print_tool_activity(event: Event) -> None:
    if isinstance(event, ToolFinished):
        print(f"      [tool {event.tool_name}: {event.result.status}, {event.result.duration * 1000:.1f} ms]")
    elif isinstance(event, ApprovalDecided):
        print(f"      [approval of {event.tool_name}: {'approved' if event.approved else 'denied'}]")


async def play(db: Path, *, keep: bool) -> None:
    board = demo_board(today=TODAY, path=str(db.with_name("board.db")))
    for _platform, user_id, email in DEMO_LINKS:
        board.link_platform(PLATFORM, user_id, email)
    store = Store(db)
    assistant = TaskAssistant(board, store=store, today=TODAY, platform=PLATFORM, model=os.environ.get("LLMGINE_MODEL"))
    assistant.bus.subscribe(Event, print_tool_activity)
    names = {"1001": "Sam", "1002": "Mei", "2001": "a new user"}
    where = f"data in {db.parent}" if keep else "data in a temporary folder, removed at the end"
    print(f"Task assistant on a demo board (model: {assistant.llm.model}); {where}\n")
    try:
        for user, text in CONVERSATION:
            print(f"{names[user]:>10} > {text}")
            reply = await assistant.handle(user, text)
            for line in str(reply).splitlines():
                print(f"{'Darcy':>10} < {line}")
            print()

        usage = store.usage("model")
        calls = sum(row.calls for row in usage)
        tokens = sum(row.total_tokens for row in usage)
        cost = fmt_total_cost(sum(row.cost for row in usage), sum(row.unpriced_calls for row in usage))
        free = " (the offline model is free)" if assistant.llm.model == "scripted" else ""
        print(f"{calls} model calls, {tokens:,} tokens, cost {cost}{free}")
        print(f"{len(store.list_sessions())} sessions and {sum(len(store.tool_calls(s.id)) for s in store.list_sessions())} "
              f"tool calls stored; the board now has {len(board.tasks())} tasks\n")
        print(NEXT_STEPS)
    finally:
        await assistant.close()
        store.close()
        board.close()


async def main(db: Path | None = None) -> None:
    """Play the flows; with no ``db``, in a temporary folder that is removed afterwards."""
    if db is not None:
        await play(db, keep=True)
        return
    with tempfile.TemporaryDirectory(prefix="llmgine-demo-") as folder:
        await play(Path(folder) / "llmgine.db", keep=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the task assistant end to end, offline.")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file to use and keep (default: a temporary one)")
    asyncio.run(main(parser.parse_args().db))

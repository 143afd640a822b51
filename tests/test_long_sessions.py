"""Long sessions stay flat (issue 13, item 11).

Over 2,000 turns with the offline model, the Python memory the process
holds (measured with tracemalloc) grows by less than 10 MB beyond the
store's own data: the messages of the session (kept by the session's
journal as its history, and in the database file).  The offline model used
to keep every request it saw (about 12 MB over 2,000 turns).
"""

from __future__ import annotations

import gc
import tracemalloc

from llmgine_nb import MessageBus
from llmgine_nb.engine import ChatEngine
from llmgine_nb.llm import ScriptedLLM
from llmgine_nb.store import Store

TURNS = 2000
LIMIT = 10 * 1024 * 1024


def _size_of_history(engine: ChatEngine) -> int:
    """The bytes tracemalloc attributes to the session's messages, measured the same way."""
    tracemalloc.start(1)
    before = tracemalloc.get_traced_memory()[0]
    copy = [m.model_copy(deep=True) for m in engine.history]
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del copy
    return size


async def test_memory_over_2000_turns_grows_less_than_10_mb_beyond_the_stored_messages(tmp_path):
    llm = ScriptedLLM()  # the default echo: answers every prompt
    engine = await ChatEngine(MessageBus(), store=Store(tmp_path / "long.db"), llm=llm).start()
    for i in range(20):  # warm up: imports, caches of fixed size, the first statements
        await engine.send(f"warm-up turn {i}")
    gc.collect()
    tracemalloc.start(1)
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(TURNS):
            await engine.send(f"turn number {i}: tell me something about the weather")
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    history = _size_of_history(engine) * TURNS // (TURNS + 20)
    assert llm.call_count >= TURNS + 20 and len(llm.calls) == llm.keep_calls  # (summaries are calls too)
    print(f"memory growth over {TURNS} turns: {growth / 1e6:.2f} MB, of which the history {history / 1e6:.2f} MB")
    assert growth - history < LIMIT, f"grew {growth / 1e6:.1f} MB, of which the history is {history / 1e6:.1f} MB"

"""``stream_assembly``: a 1 MB reply in 8-character pieces, through the engine vs straight from the model.

The reply comes from the offline model (``ScriptedLLM``), which streams it a
word at a time: 131,072 pieces of 8 characters.  The engine turn is the real
thing (the user message and the reply persisted to a SQLite file, the
context compiled, every event published, drafts saved while it streams);
the baseline is the same model's stream read to the end from the model layer
(``llm.stream(...)``), with no bus.  Assembling a streamed reply must stay
linear: when each piece copies the text so far, the turn takes seconds per
megabyte more than the stream itself.  Best of ``ROUNDS`` each, interleaved.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from _common import Figure

PIECE = "abcdefg "  # 8 characters: one word, one streamed piece
REPLY = PIECE * (1024 * 1024 // len(PIECE))  # 1 MiB
ROUNDS = 3


async def _bare() -> float:
    from llmgine_nb.llm import ScriptedLLM

    llm = ScriptedLLM([REPLY])
    start = time.perf_counter()
    pieces = 0
    async for _ in llm.stream("Say a lot."):
        pieces += 1
    elapsed = time.perf_counter() - start
    assert pieces == len(REPLY) // len(PIECE), pieces
    return elapsed


async def _engine(folder: Path, round_number: int) -> float:
    from llmgine_nb import MessageBus
    from llmgine_nb.engine import ChatEngine
    from llmgine_nb.llm import ScriptedLLM
    from llmgine_nb.store import Store

    bus = MessageBus()
    store = Store(folder / f"stream-{round_number}.db")
    llm = ScriptedLLM([REPLY], bus=bus)
    engine = await ChatEngine(bus, store=store, llm=llm, save_partial_every=0.5).start()
    start = time.perf_counter()
    result = await engine.send("Say a lot.")
    elapsed = time.perf_counter() - start
    assert result.status == "complete" and len(result.text) == len(REPLY), result.status
    await engine.close()
    store.close()
    return elapsed


def bench_stream_assembly() -> Figure:
    folder = Path(tempfile.mkdtemp(prefix="llmgine-bench-stream-"))
    bare, through = float("inf"), float("inf")
    for round_number in range(ROUNDS):
        bare = min(bare, asyncio.run(_bare()))
        through = min(through, asyncio.run(_engine(folder, round_number)))
    ratio = through / bare
    return Figure(
        name="stream_assembly",
        value=through,
        baseline=bare,
        unit="s per 1 MB",
        goal="<= 1.5x the model's own stream",
        ok=ratio <= 1.5,
        note=f"{len(REPLY) // len(PIECE)} pieces of {len(PIECE)} characters",
    )


BENCHMARKS = [bench_stream_assembly]

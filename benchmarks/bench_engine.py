"""``turn_overhead``: a whole engine turn against the bare model call it makes.

The turn is the real thing: the user message and the reply persisted to a
SQLite file, the context compiled (litellm's token counter), events
published, the standard observers attached (event log, metrics).  The model
is litellm with ``mock_response``, streamed, so no network is involved.  The
baseline is ``litellm.acompletion(mock_response=..., stream=True)`` read to
the end, in the same loop, in interleaved blocks after a warm-up.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from _common import Figure

from llmgine_nb.engine import ChatEngine

BLOCK = 20
ROUNDS = 6
REPLY = "Hello! How can I help you today?"


async def _measure() -> tuple[float, float]:
    from llmgine_nb import MessageBus
    from llmgine_nb.llm import get_llm
    from llmgine_nb.llm._litellm import load_litellm
    from llmgine_nb.observe.redact import Redactor
    from llmgine_nb.store import Store

    litellm = load_litellm()
    tmp = Path(tempfile.mkdtemp())
    bus = MessageBus()
    store = Store(tmp / "bench.db")
    observers = _attach_observers(bus, store)
    llm = get_llm("openai/gpt-4o-mini", bus=bus, mock_response=REPLY)
    redactor = Redactor()  # one per runtime, shared by its sessions, as the notebook does
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]

    async def bare() -> None:
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini", messages=messages, stream=True, mock_response=REPLY
        )
        async for _ in stream:
            pass

    async def new_engine() -> ChatEngine:
        # A fresh session per turn, so the model is sent the same two messages as the baseline.
        return await ChatEngine(
            bus, store=store, llm=llm, system_prompt="You are terse.", redactor=redactor
        ).start()

    async def turn(engine: ChatEngine) -> None:
        result = await engine.send("Say hello.")
        assert result.text == REPLY, result

    async def block(fn) -> float:
        engines = [await new_engine() for _ in range(BLOCK)] if fn is turn else [None] * BLOCK
        start = time.perf_counter()
        for engine in engines:
            await (fn(engine) if engine else fn())
        elapsed = (time.perf_counter() - start) / BLOCK
        for engine in engines:
            if engine:
                await engine.close()
        return elapsed

    await block(bare)
    await block(turn)
    best_bare = best_turn = float("inf")
    for _ in range(ROUNDS):
        best_bare = min(best_bare, await block(bare))
        best_turn = min(best_turn, await block(turn))
    for observer in observers:
        observer.detach()
    store.close()
    return best_turn, best_bare


def _attach_observers(bus, store) -> list:
    try:
        from llmgine_nb.observe import EventLogObserver, MetricsObserver
    except ImportError:  # observers not built yet: measure the engine alone
        return []
    return [EventLogObserver(store).attach(bus), MetricsObserver().attach(bus)]


def bench_turn_overhead() -> Figure:
    value, baseline = asyncio.run(_measure())
    ratio = value / baseline
    return Figure(
        "turn_overhead", value * 1000, baseline * 1000, "ms/turn", "ratio <= 1.25", ok=ratio <= 1.25,
        note="persisted to a SQLite file, event log + metrics observers attached",
    )


BENCHMARKS = [bench_turn_overhead]

"""Tool execution benchmarks: the calls of one model reply run concurrently.

``parallel_tools``: four calls of a *synchronous* tool that sleeps 0.5 s
(the harder case: it must go to the thread pool), run through
``ToolManager.execute`` as one reply, against the same four calls run one
after another through the same manager (about 2.0 s).
``parallel_tools_async``: the same with an async tool (``asyncio.sleep``).
"""

from __future__ import annotations

import asyncio
import time

from _common import Figure, best_of

from llmgine_nb.chat import ToolCall
from llmgine_nb.tools import ToolManager

NAP = 0.5
CALLS = 4


def nap(seconds: float) -> float:
    """Sleep in a worker thread."""
    time.sleep(seconds)
    return seconds


async def nap_async(seconds: float) -> float:
    """Sleep on the event loop."""
    await asyncio.sleep(seconds)
    return seconds


def _calls(name: str) -> list[ToolCall]:
    return [ToolCall.from_raw(f"c{i}", name, f'{{"seconds": {NAP}}}') for i in range(CALLS)]


def _measure(fn, name: str) -> Figure:
    manager = ToolManager([fn], max_workers=CALLS)

    async def together() -> None:
        results = await manager.execute(_calls(name))
        assert all(r.status == "ok" for r in results), [r.content for r in results]

    async def one_by_one() -> None:
        for call in _calls(name):
            assert (await manager.execute_one(call)).status == "ok"

    try:
        asyncio.run(together())  # warm the thread pool and pydantic
        value = best_of(lambda: asyncio.run(together()), repeat=3)
        baseline = best_of(lambda: asyncio.run(one_by_one()), repeat=1)
    finally:
        manager.close()
    figure_name = "parallel_tools" if fn is nap else "parallel_tools_async"
    ok = value <= 0.65 and value / baseline <= 0.33
    return Figure(
        name=figure_name,
        value=value,
        baseline=baseline,
        unit="s",
        goal="<= 0.65 s and ratio <= 0.33",
        ok=ok,
        note=f"{CALLS} calls x {NAP} s, {'sync tool in thread pool' if fn is nap else 'async tool'}; baseline one after another",
    )


def bench_parallel_tools() -> Figure:
    return _measure(nap, "nap")


def bench_parallel_tools_async() -> Figure:
    return _measure(nap_async, "nap_async")


BENCHMARKS = [bench_parallel_tools, bench_parallel_tools_async]

"""The LLM layer's two speed figures.

``import_time``: ``import llmgine_nb`` in a fresh interpreter against
``import litellm`` in a fresh interpreter (litellm must load only on the
first real call).  Each is timed inside the child process, so interpreter
start-up is not counted; the best of several runs is kept.

``llm_overhead``: one call through our ``LiteLLMClient`` (with a bus and a
subscriber, as the engine uses it: every subscriber the engine, the journal,
the event log and metrics attach says ``inline=True``) against the bare
``litellm.acompletion(mock_response=...)`` it wraps.  Both run in one event
loop, in interleaved blocks after a warm-up; the fastest block of each is
compared, per call.  The note also gives the same call with a plain
synchronous subscriber, which the bus runs in its worker threads (one thread
hop per event, two events a call): that is the bus's price for keeping a
blocking subscriber off the loop, not this layer's (``bench_bus.py``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import Figure

ROOT = Path(__file__).resolve().parent.parent

_TIMED_IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def _import_seconds(module: str, repeat: int) -> float:
    env = dict(os.environ)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network in the baseline either
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _TIMED_IMPORT.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=env,
        )
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def bench_import_time() -> Figure:
    ours = _import_seconds("llmgine_nb", repeat=7)
    with_llm = _import_seconds("llmgine_nb.llm", repeat=5)
    litellm = _import_seconds("litellm", repeat=3)
    ok = ours <= litellm / 15 and ours < 0.4
    return Figure(
        name="import_time",
        value=ours,
        baseline=litellm,
        unit="s",
        goal="<= litellm/15 and < 0.4 s",
        ok=ok,
        note=f"llmgine_nb.llm: {with_llm:.3f} s",
    )


async def _overhead() -> tuple[float, float, float, int]:
    from llmgine_nb import MessageBus
    from llmgine_nb.chat import ChatMessage
    from llmgine_nb.llm import LiteLLMClient, LLMEvent
    from llmgine_nb.llm._litellm import load_litellm

    litellm = load_litellm()
    events: list[LLMEvent] = []
    bus = MessageBus()
    bus.subscribe(LLMEvent, events.append, inline=True)  # as the engine's own subscribers
    llm = LiteLLMClient("openai/gpt-4o-mini", bus=bus)
    off_loop_bus = MessageBus()
    off_loop_bus.subscribe(LLMEvent, events.append)  # a plain sync subscriber: run in the bus's threads
    off_loop = LiteLLMClient("openai/gpt-4o-mini", bus=off_loop_bus)
    messages = [ChatMessage(role="system", content="You are terse."), ChatMessage(role="user", content="Say hello.")]
    raw_messages = [m.to_openai() for m in messages]
    reply = "Hello! How can I help you today?"

    async def ours(n: int, client: LiteLLMClient = llm) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await client.complete(messages, mock_response=reply)
        return (time.perf_counter() - start) / n

    async def bare(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await litellm.acompletion(model="openai/gpt-4o-mini", messages=raw_messages, mock_response=reply)
        return (time.perf_counter() - start) / n

    await bare(100)  # warm-up: imports, caches, first-call paths
    await ours(100)
    await ours(20, off_loop)
    best_ours = best_bare = best_off_loop = float("inf")
    for round_ in range(12):
        # Alternate which goes first so drift in machine load hits both alike.
        if round_ % 2:
            best_ours = min(best_ours, await ours(60))
            best_bare = min(best_bare, await bare(60))
        else:
            best_bare = min(best_bare, await bare(60))
            best_ours = min(best_ours, await ours(60))
        if round_ % 3 == 0:
            best_off_loop = min(best_off_loop, await ours(60, off_loop))
        if not events:
            raise RuntimeError("the subscribers heard no events: the figure would not measure a bus")
        events.clear()
    return best_ours, best_bare, best_off_loop, len(events)


def bench_llm_overhead() -> Figure:
    ours, bare, off_loop, _ = asyncio.run(_overhead())
    ratio = ours / bare
    return Figure(
        name="llm_overhead",
        value=ours * 1e6,
        baseline=bare * 1e6,
        unit="us/call",
        goal="ratio <= 1.10",
        ok=ratio <= 1.10,
        note=f"adds {(ours - bare) * 1e6:.0f} us/call; with a sync subscriber the bus runs in its threads: "
        f"adds {(off_loop - bare) * 1e6:.0f} us/call",
    )


BENCHMARKS = [bench_import_time, bench_llm_overhead]

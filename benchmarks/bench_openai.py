"""``openai_long_history``: a call through our ``OpenAIClient`` with 200 turns of history, against the bare SDK.

The trap this watches (issue 14, item 4): the openai SDK's
``chat.completions.create()`` walks every message of the request through
its type annotations before sending it (``maybe_transform``), a cost that
grows with the conversation.  ``OpenAIClient`` sends the body it built
through the SDK's public ``post()`` instead.  Both sides here make the same
streamed request, with the same 400 messages, to ``tests/fake_openai.py``
on 127.0.0.1 and read the stream to its end, in one event loop; ours with a
bus and a subscriber, as the engine uses it.  Blocks of calls alternate and
the fastest block of each is compared, per call.  The note gives the same
call through ``LiteLLMClient`` and ours with 20 messages of history.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from _common import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

TURNS = 200
BLOCK = 10
ROUNDS = 6
REPLY = "Hello! How can I help you today?"


def _history(turns: int) -> list:
    from llmgine_nb.chat import ChatMessage

    messages = [ChatMessage(role="system", content="You are terse.")]
    for i in range(turns):
        messages.append(ChatMessage(role="user", content=f"Question {i}: what is the next step in the plan? " * 3))
        messages.append(ChatMessage(role="assistant", content=f"Answer {i}: the next step is to check the log. " * 4))
    messages.append(ChatMessage(role="user", content="Say hello."))
    return messages


async def _measure(server) -> dict[str, float]:
    import openai

    from llmgine_nb import MessageBus
    from llmgine_nb.llm import LiteLLMClient, LLMEvent, OpenAIClient

    bus = MessageBus()
    seen: list[LLMEvent] = []
    bus.subscribe(LLMEvent, seen.append)
    long, short = _history(TURNS), _history(10)
    raw_long = [m.to_openai() for m in long]
    ours = OpenAIClient("openai/gpt-4o-mini", bus=bus, api_base=server.base_url, api_key=server.api_key)
    via_litellm = LiteLLMClient("openai/gpt-4o-mini", bus=bus, api_base=server.base_url, api_key=server.api_key)
    bare = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)

    async def ours_call(history=long) -> None:
        await ours.stream(history).get_response()

    async def litellm_call() -> None:
        await via_litellm.stream(long).get_response()

    async def bare_call() -> None:
        stream = await bare.chat.completions.create(
            model="gpt-4o-mini", messages=raw_long, stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            pass

    async def block(call) -> float:
        start = time.perf_counter()
        for _ in range(BLOCK):
            await call()
        seen.clear()
        return (time.perf_counter() - start) / BLOCK

    calls = {
        "ours": ours_call, "bare": bare_call, "litellm": litellm_call,
        "ours_short": lambda: ours_call(short),
    }
    for call in calls.values():
        await block(call)  # warm-up: imports, connections, first-call paths
    best = {name: float("inf") for name in calls}
    for round_ in range(ROUNDS):
        names = list(calls) if round_ % 2 else list(reversed(calls))
        for name in names:
            best[name] = min(best[name], await block(calls[name]))
    await bare.close()
    return best


def bench_openai_long_history() -> Figure:
    from fake_openai import FakeOpenAI, Reply

    with FakeOpenAI(default=Reply(REPLY, chunk_size=8)) as server:
        best = asyncio.run(_measure(server))
    ratio = best["ours"] / best["bare"]
    return Figure(
        "openai_long_hist", best["ours"] * 1000, best["bare"] * 1000, "ms/call", "ratio <= 1.0", ok=ratio <= 1.0,
        note=f"{TURNS} turns of history, streamed from a local server; through litellm {best['litellm'] * 1000:.1f} ms, "
        f"ours with 10 turns {best['ours_short'] * 1000:.1f} ms",
    )


BENCHMARKS = [bench_openai_long_history]

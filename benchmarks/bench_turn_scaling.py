"""``turn_scaling``: a turn in a session with 2,000 messages of history against one with 20.

Same model, same work: the offline scripted model gives the same reply to
the same prompt, and the context budget is such that both sessions send the
model about the same: the short one its whole history, the long one a stored
summary of its older messages plus the same number of recent ones (the
summary is stored beforehand, as an earlier turn would have, so no turn here
has to make one).  The store is a SQLite file and the standard observers
(event log, metrics) are attached, as in ``turn_overhead``.

What differs is only how much history the engine carries, so the ratio shows
what a turn costs per message of history: a context compiler that re-plans
the whole history every turn makes it grow with the session.

Each block is ``BLOCK`` turns in a freshly seeded, resumed session, timed
after its first turn: the first turn after a resume reads the whole history
once (like loading it), and the note reports it apart.  Blocks of the two
sizes alternate and the fastest of each is compared, in ``PROCESSES`` fresh
Python processes, reporting the middle one (as ``turn_overhead`` does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Figure

SHORT = 20
LONG = 2_000
KEPT = 20  # messages after the stored summary of a long session
BLOCK = 10
ROUNDS = 15
PROCESSES = 3
BUDGET = 1_000  # tokens: both sessions' sent context fits, the long session's whole history does not
REPLY = "Hello! How can I help you today?"
SYSTEM = "You are terse."
PROMPT = "Say hello."
HERE = Path(__file__).resolve().parent

_IN_A_PROCESS = "import asyncio, json, bench_turn_scaling as b; print(json.dumps(asyncio.run(b._measure())))"


def _seed(store, size: int):
    """A session with ``size`` messages of earlier conversation (and, when long, its summary)."""
    from llmgine_nb.chat import ChatMessage

    session = store.create_session()
    messages = []
    for i in range(size // 2):
        messages.append(ChatMessage(role="user", content=f"{PROMPT} ({i})"))
        messages.append(ChatMessage(role="assistant", content=REPLY))
    store.append_messages(session, messages)
    if size > KEPT:
        covered = size - KEPT
        store.save_summary(session.id, messages[covered - 1].id, "The user greeted the assistant many times.", covered)
    return session


async def _measure() -> tuple[float, float, int, int, float, float]:
    from llmgine_nb import MessageBus
    from llmgine_nb.engine import ChatEngine
    from llmgine_nb.llm.scripted import ScriptedLLM
    from llmgine_nb.observe import EventLogObserver, MetricsObserver
    from llmgine_nb.observe.redact import Redactor
    from llmgine_nb.store import Store

    bus = MessageBus()
    store = Store(Path(tempfile.mkdtemp()) / "bench.db")
    observers = [EventLogObserver(store).attach(bus), MetricsObserver().attach(bus)]
    llm = ScriptedLLM(lambda messages, tools: REPLY, bus=bus)
    sent: dict[int, int] = {}
    first: dict[int, float] = {}

    async def block(size: int) -> float:
        session = _seed(store, size)  # outside the timing
        engine = await ChatEngine(
            bus, store=store, llm=llm, system_prompt=SYSTEM, session_id=session.id,
            context_tokens=BUDGET, redactor=Redactor(),
        ).start()
        start = time.perf_counter()
        await engine.send(PROMPT)  # the first turn after a resume reads the whole history once
        first[size] = min(first.get(size, float("inf")), time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(BLOCK):
            result = await engine.send(PROMPT)
            assert result.text == REPLY, result
        elapsed = (time.perf_counter() - start) / BLOCK
        sent[size] = len(llm.calls[-1].messages)
        assert len(engine.history) == size + 2 * (BLOCK + 1)
        await engine.close()
        return elapsed

    await block(SHORT)
    await block(LONG)
    best_short = best_long = float("inf")
    for _ in range(ROUNDS):
        best_short = min(best_short, await block(SHORT))
        best_long = min(best_long, await block(LONG))
    for observer in observers:
        observer.detach()
    store.close()
    return best_long, best_short, sent[LONG], sent[SHORT], first[LONG], first[SHORT]


def bench_turn_scaling() -> Figure:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    runs = []
    for _ in range(PROCESSES):
        out = subprocess.run(
            [sys.executable, "-c", _IN_A_PROCESS], capture_output=True, text=True, check=True, cwd=HERE, env=env
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda run: run[0] / run[1])
    value, baseline, sent_long, sent_short, first_long, first_short = runs[len(runs) // 2]
    ratio = value / baseline
    ratios = ", ".join(f"{run[0] / run[1]:.3f}" for run in runs)
    return Figure(
        "turn_scaling", value * 1000, baseline * 1000, "ms/turn", "ratio <= 1.5", ok=ratio <= 1.5,
        note=f"{LONG:,} messages of history vs {SHORT}, offline model, {BUDGET:,}-token context; the last turn sent "
        f"{sent_long} vs {sent_short} messages; the first turn after resuming (not counted: it reads the history "
        f"once) {first_long * 1000:.1f} vs {first_short * 1000:.1f} ms; middle of {PROCESSES} processes ({ratios})",
    )


BENCHMARKS = [bench_turn_scaling]

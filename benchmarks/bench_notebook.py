"""The notebook front end: how fast ``%load_ext llmgine_nb`` is, and what live rendering costs.

* ``load_ext``: ``%load_ext llmgine_nb`` in a fresh IPython shell (a new
  process each time; only the load is timed).  Baseline: starting that fresh
  ``InteractiveShell`` plus ``%load_ext`` of a tiny extension (one trivial
  magic), in the same process.  Goal: under 0.3 s.
* ``stream_render``: 10,000 text deltas published on the bus and rendered by
  a live cell (the runtime's router -> ``LiveCell`` -> ``DisplaySink`` ->
  IPython's display machinery), against the same stream with nothing
  rendering it.  Goals: at most 1.2x the time, all text in the final output,
  and at most 20 display updates per second when the same stream is paced
  over about a second, as a model streams.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import Figure

N_DELTAS = 10_000
ROUNDS = 5

_LOAD_SCRIPT = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, {tiny_dir!r})
    t0 = time.perf_counter()
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "tiny_extension")
    t1 = time.perf_counter()
    shell.run_line_magic("load_ext", "llmgine_nb")
    t2 = time.perf_counter()
    assert "llmgine" in shell.magics_manager.magics["line"], "the magic is registered"
    print(t1 - t0, t2 - t1)
''')

_TINY_EXTENSION = textwrap.dedent('''
    def load_ipython_extension(ipython):
        ipython.register_magic_function(lambda line: line, "line", "tiny")
''')


def bench_load_ext() -> Figure:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "tiny_extension.py").write_text(_TINY_EXTENSION)
        env = dict(os.environ, IPYTHONDIR=str(Path(tmp, "ipython")))
        script = _LOAD_SCRIPT.format(tiny_dir=tmp)
        baselines, values = [], []
        for _ in range(ROUNDS):
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                                 timeout=120, check=True).stdout.split()
            baselines.append(float(out[0]))
            values.append(float(out[1]))
    value, baseline = min(values), min(baselines)
    return Figure(
        "load_ext", value, baseline, "s", "under 0.3 s",
        ok=value < 0.3,
        note="baseline: fresh InteractiveShell start + %load_ext of a one-magic extension",
    )


def _stream_setup():
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    from llmgine_nb.engine import TurnFinished, TurnStarted
    from llmgine_nb.llm.events import LLMTextDelta
    from llmgine_nb.notebook.kernel_runtime import NotebookRuntime
    from llmgine_nb.notebook.live import DisplaySink, LiveCell
    from llmgine_nb.notebook.transcript import Transcript

    shell = InteractiveShell.instance()
    shell.display_pub = CapturingDisplayPublisher()  # a frontend's side of display, kept in memory
    words = [f"word{i} " for i in range(N_DELTAS)]

    async def stream(bus, session_id: str, pace: bool) -> None:
        await bus.publish(TurnStarted(session_id=session_id, turn_id="t", text="q", model="m", user_message_id="u"))
        for i, word in enumerate(words):
            await bus.publish(LLMTextDelta(session_id=session_id, call_id="c", model="m", text=word))
            if pace and i % 10 == 9:
                await asyncio.sleep(0.001)  # about a second for the whole stream, as a model streams
        await bus.publish(TurnFinished(session_id=session_id, turn_id="t", text="".join(words), model="m"))

    def run(render: bool, pace: bool = False) -> tuple[float, LiveCell | None]:
        runtime = NotebookRuntime(None, db=":memory:", ui="markdown")  # its router; no engine needed
        cell = None
        if render:
            cell = LiveCell(Transcript("q"), DisplaySink(interactive=False))  # the default rate
            cell.start()
            runtime.cells.open("s", cell)
        else:
            runtime.close()  # no subscribers at all: the bare stream
        start = time.perf_counter()
        asyncio.run(stream(runtime.bus, "s", pace))
        elapsed = time.perf_counter() - start
        runtime.close()
        return elapsed, cell

    return shell, words, run


def bench_stream_render() -> Figure:
    shell, words, run = _stream_setup()
    baselines, timings, complete = [], [], True
    for _ in range(2 * ROUNDS):  # interleaved, so that both see the same machine noise
        baselines.append(run(render=False)[0])
        shell.display_pub.outputs.clear()
        timings.append(run(render=True)[0])
        final = shell.display_pub.outputs[-1]["data"]
        complete = complete and "".join(words).strip() in final["text/plain"]
    value, baseline = min(timings), min(baselines)
    paced_elapsed, paced_cell = run(render=True, pace=True)
    rate = paced_cell.updates / paced_elapsed
    ratio = value / baseline
    return Figure(
        "stream_render", value, baseline, "s", "ratio <= 1.2, all text shown, <= 20 updates/s",
        ok=ratio <= 1.2 and complete and rate <= 20,
        note=f"{N_DELTAS:,} deltas; paced over {paced_elapsed:.2f} s: {paced_cell.updates} updates = {rate:.1f}/s; "
             f"all text in the final output: {complete}",
    )


BENCHMARKS = [bench_load_ext, bench_stream_render]

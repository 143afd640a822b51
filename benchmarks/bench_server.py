"""The server under load: turns per second over WebSocket, and memory per idle open session.

* ``serve_turns``: 50 concurrent clients x 10 turns each against ``llmgine-nb
  serve`` (its own process, the offline model), each over its session's
  WebSocket (with ``"batch": true``, as the web page and the terminal client
  open it): a ``send`` command, then the events up to its ``TurnFinished``
  (the sessions are made with REST calls and their sockets opened before the
  clock starts, as the baseline makes its engines before its clock); baseline:
  the same 500 turns in process, 50 concurrent
  sessions on one bus and one store file.  ``ROUNDS`` alternating rounds of
  the two, compared by their medians.  Goal: ratio >= 0.5.  p50 and p95
  turn latency over the wire are in the note, and the ratio of each side's
  next 500 turns (50 more sessions on the same server, or bus and store):
  both past their start-up, the steady state; and the ratio against a
  baseline run with the collector set as the server sets it for itself
  (``cli/service.py``: thresholds, start-up collection and freeze), which the
  headline baseline, the engine in a user's process, does not have.
* ``serve_session_memory``: the server's resident memory per idle open
  session (an engine loaded and a WebSocket watching), beside the memory
  of an idle in-process ``ChatEngine``; reported, no goal.  The note has the
  same with ``--max-engines 20``: idle engines unloaded, their sockets open.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from _common import Figure

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 50
TURNS = 10
ROUNDS = 5  # serve_turns: rounds of (in process, over the wire), compared by their medians
IDLE_SESSIONS = 200
CAPPED_ENGINES = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class _Server:
    """``llmgine-nb serve`` in its own process, with one user, limits opened for load."""

    def __init__(self, *extra_args: str) -> None:
        sys.path.insert(0, str(ROOT))
        from llmgine_nb.store import Store
        from llmgine_nb.store.users import add_user

        self.dir = tempfile.mkdtemp(prefix="llmgine-bench-server-")
        self.db = Path(self.dir) / "server.db"
        with Store(self.db) as store:
            _, self.token = add_user(store, "bench")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LLMGINE_BLOCK_REAL_MODELS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llmgine_nb", "serve", "--db", str(self.db), "--port", str(self.port),
             "--model", "scripted", "--requests-per-minute", "10000000", "--max-turns-per-user", "1000",
             *extra_args],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/openapi.json", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the benchmark server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def _client(server: _Server, http: httpx.AsyncClient, ready: asyncio.Event, go: asyncio.Event,
                  connected: list[int], latencies: list[float]) -> None:
    from websockets.asyncio.client import connect

    session_id = (await http.post("/api/sessions", json={})).json()["id"]
    async with connect(server.url.replace("http", "ws", 1) + f"/api/sessions/{session_id}/ws") as ws:
        # batch, as the web page and the terminal client ask: the events ready at once in one frame.
        await ws.send(json.dumps({"token": server.token, "after": 0, "batch": True}))
        await ws.recv()  # ready
        connected.append(1)
        if len(connected) == CLIENTS:
            ready.set()
        await go.wait()  # the clock runs for turns only, as in the baseline (engines made before it starts)
        for turn in range(TURNS):
            start = time.perf_counter()
            await ws.send(json.dumps({"command": "send", "text": f"turn {turn} please"}))
            turn_id, finished = None, set()
            while turn_id is None or turn_id not in finished:
                frame = json.loads(await ws.recv())
                if isinstance(frame, list):  # events
                    finished.update(e["turn_id"] for e in frame if e["type"].endswith(".TurnFinished"))
                elif frame.get("control") == "refused":
                    raise RuntimeError(f"the server refused a turn: {frame['error']}")
                elif frame.get("control") == "accepted":
                    turn_id = frame["turn_id"]  # TurnFinished may come before the acceptance
            latencies.append(time.perf_counter() - start)


async def _over_the_wire(server: _Server) -> tuple[float, list[float], float]:
    """Turns per second, each turn's latency, and the server's CPU seconds per turn (turns only)."""
    latencies: list[float] = []
    connected: list[int] = []
    ready, go = asyncio.Event(), asyncio.Event()
    limits = httpx.Limits(max_connections=CLIENTS * 2)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"},
                                 timeout=120, limits=limits) as http:
        clients = asyncio.gather(*[_client(server, http, ready, go, connected, latencies) for _ in range(CLIENTS)])
        await asyncio.wait({asyncio.ensure_future(ready.wait()), clients}, return_when=asyncio.FIRST_COMPLETED)
        start, cpu_before = time.perf_counter(), _cpu_seconds(server.process.pid)
        go.set()
        await clients
        elapsed = time.perf_counter() - start
        server_cpu = _cpu_seconds(server.process.pid) - cpu_before
    return CLIENTS * TURNS / elapsed, latencies, server_cpu / (CLIENTS * TURNS)


def _with_service_gc(run: Callable[[], Awaitable[list[float]]]) -> list[float]:
    """``run`` with the collector set as ``llmgine-nb serve`` sets it for itself (``cli/service.py``)."""
    sys.path.insert(0, str(ROOT))
    from llmgine_nb.cli.service import SERVICE_GC_THRESHOLDS, freeze_startup_heap

    thresholds = gc.get_threshold()
    gc.set_threshold(*SERVICE_GC_THRESHOLDS)
    freeze_startup_heap()
    try:
        return asyncio.run(run())
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def _in_process(batches: int = 2) -> list[float]:
    """Turns per second of 500 turns in 50 new sessions, then of each next 500 in 50 more (same bus and store)."""
    sys.path.insert(0, str(ROOT))
    from llmgine_nb import MessageBus
    from llmgine_nb.engine import ChatEngine
    from llmgine_nb.store import Store

    store = Store(Path(tempfile.mkdtemp(prefix="llmgine-bench-inproc-")) / "inproc.db")
    bus = MessageBus()

    async def client(engine: ChatEngine) -> None:
        for turn in range(TURNS):
            await engine.send(f"turn {turn} please")

    rates, everyone = [], []
    for _ in range(batches):
        engines = [await ChatEngine(bus, store=store, model="scripted").start() for _ in range(CLIENTS)]
        everyone += engines
        start = time.perf_counter()
        await asyncio.gather(*[client(engine) for engine in engines])
        rates.append(CLIENTS * TURNS / (time.perf_counter() - start))
    for engine in everyone:
        await engine.close()
    store.close()
    return rates


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_serve_turns() -> Figure:
    # Alternating rounds, compared by their medians: a slow spell of the machine (it is shared with
    # the driver and, in CI, whatever else runs) then does not fall on one side only.
    baselines, values, warm_baselines, warm_values, cpu_per_turn, latencies = [], [], [], [], [], []
    tuned_baselines = []  # the baseline with the server's own collector settings, for the note
    for _ in range(ROUNDS):
        first, following = asyncio.run(_in_process())
        baselines.append(first)
        warm_baselines.append(following)
        tuned_baselines.append(_with_service_gc(lambda: _in_process(batches=1))[0])
        server = _Server()
        try:
            value, round_latencies, cpu = asyncio.run(_over_the_wire(server))
            # The same server's next 500 turns (50 new sessions), against the baseline's next 500 on its
            # same bus and store: both past their start, with twice the sessions and history (for the note).
            warm_values.append(asyncio.run(_over_the_wire(server))[0])
        finally:
            server.stop()
        values.append(value)
        cpu_per_turn.append(cpu)
        latencies += round_latencies
    value, baseline = statistics.median(values), statistics.median(baselines)
    ratio = value / baseline
    rounds = ", ".join(f"{v / b:.2f}" for v, b in zip(values, baselines))
    return Figure(
        "serve_turns", value, baseline, "turns/s", "ratio >= 0.5 (over WebSocket vs in process)", ratio >= 0.5,
        note=f"{CLIENTS}x{TURNS} turns, medians of {ROUNDS} rounds (ratios {rounds}); latency p50 "
             f"{_percentile(latencies, 0.5) * 1000:.0f} ms, p95 {_percentile(latencies, 0.95) * 1000:.0f} ms; "
             f"server CPU {statistics.median(cpu_per_turn) * 1000:.2f} ms/turn; the next {CLIENTS * TURNS} turns of "
             f"each side: ratio {statistics.median(warm_values) / statistics.median(warm_baselines):.2f}; against "
             f"a baseline with the server's collector settings: ratio {value / statistics.median(tuned_baselines):.2f}",
    )


async def _open_idle_sessions(server: _Server, count: int = IDLE_SESSIONS) -> list[object]:
    from websockets.asyncio.client import connect

    sockets = []
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"},
                                 timeout=60) as http:
        for _ in range(count):
            session_id = (await http.post("/api/sessions", json={})).json()["id"]
            ws = await connect(server.url.replace("http", "ws", 1) + f"/api/sessions/{session_id}/ws")
            await ws.send(json.dumps({"token": server.token, "after": 0}))
            await ws.recv()
            sockets.append(ws)
    return sockets


_ENGINE_MEMORY = """
import asyncio, os, sys, tempfile
sys.path.insert(0, sys.argv[1])
from llmgine_nb import MessageBus
from llmgine_nb.engine import ChatEngine
from llmgine_nb.store import Store
def rss():
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmRSS:'))
async def main():
    store = Store(os.path.join(tempfile.mkdtemp(), 'm.db')); bus = MessageBus()
    warm = await ChatEngine(bus, store=store, model='scripted').start()
    await warm.send('warm up')
    before = rss()
    engines = [await ChatEngine(bus, store=store, model='scripted').start() for _ in range(int(sys.argv[2]))]
    print((rss() - before) / len(engines))
asyncio.run(main())
"""


def _server_bytes_per_idle_session(*serve_args: str) -> float:
    server = _Server(*serve_args)
    try:

        async def measure() -> float:
            # One warm-up session first, so imports and caches are not counted as the sessions' cost.
            warm = await _open_idle_sessions(server, 1)
            before = _rss_bytes(server.process.pid)
            sockets = await _open_idle_sessions(server)
            after = _rss_bytes(server.process.pid)
            for ws in warm + sockets:
                await ws.close()  # type: ignore[attr-defined]
            return (after - before) / IDLE_SESSIONS

        return asyncio.run(measure())
    finally:
        server.stop()


def bench_serve_session_memory() -> Figure:
    engine_bytes = float(subprocess.run(
        [sys.executable, "-c", _ENGINE_MEMORY, str(ROOT), str(IDLE_SESSIONS)],
        capture_output=True, text=True, check=True, env={**os.environ, "LLMGINE_BLOCK_REAL_MODELS": "1"},
    ).stdout.strip())
    per_session = _server_bytes_per_idle_session()  # the default cap (1000 engines) unloads none of them
    capped = _server_bytes_per_idle_session("--max-engines", str(CAPPED_ENGINES))
    return Figure(
        "serve_session_memory", per_session / 1024, engine_bytes / 1024, "KiB/session",
        "reported (server: engine + stream + WebSocket; baseline: an idle in-process ChatEngine)", True,
        note=f"{IDLE_SESSIONS} idle sessions; with --max-engines {CAPPED_ENGINES} (idle engines unloaded, "
             f"sockets kept): {capped / 1024:.0f} KiB/session",
    )


BENCHMARKS = [bench_serve_turns, bench_serve_session_memory]

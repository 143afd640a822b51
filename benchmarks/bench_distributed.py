"""The bus across processes on Redis Streams (``llmgine_nb.distributed``).

- ``remote_roundtrip``: a command (``CancelTurn`` of an idle session: the
  engine answers at once) sent by this process through ``RedisTransport`` to
  an ``llmgine-nb worker`` process and its result back, against the raw
  round trip the transport is built on, measured in the same run: this
  process ``XADD``s, an echo process reading with a blocking ``XREADGROUP``
  ``XADD``s the reply and ``XACK``s, this process reads it with a blocking
  ``XREAD`` (redis-py's asyncio client on both sides).  Median of
  ``ROUNDTRIPS`` sequential round trips each.  Goal: ratio <= 3.
- ``worker_scaling``: turns per second with 2 worker processes against 1, the
  offline model with no latency, ``SESSIONS`` sessions in flight so that one
  worker is CPU-bound: each session a client sending its next turn as soon
  as the last is answered, the turns finished counted over ``WINDOW_S`` of
  steady state.  Timed once every worker is warm and holds its share of the
  partitions (the first worker to start takes them all and hands half back
  when it sees the second; timed before that, one worker ran nearly every
  session).  Goal: ratio >= 1.4 on a 2-core machine that also runs Redis and
  this driver.
- ``fanout``: events per second delivered to 10 followers of one session
  while a worker runs its turns (reported; no goal).

Redis is the one on 127.0.0.1:6379 (skipped with a note when it does not
answer); every run uses a key prefix of its own and deletes it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import Figure

REDIS_URL = os.environ.get("LLMGINE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
ROUNDTRIPS = 300
SESSIONS = 256  # worker_scaling: sessions in flight, each a client sending turn after turn
CONCURRENCY = 16  # turns a worker runs at once
WARM_S = 1.0  # worker_scaling: turns run before the window opens
WINDOW_S = 3.0  # ... and the window turns are counted in
SQLITE_ROUNDS = 3
FOLLOWERS = 10
HERE = Path(__file__).resolve().parent

_ECHO = """
import asyncio, sys
import redis.asyncio as r
async def main(url, stream, replies):
    client = r.Redis.from_url(url, decode_responses=True)
    try:
        await client.xgroup_create(stream, "echo", id="0", mkstream=True)
    except Exception:
        pass
    print("ready", flush=True)
    while True:
        reply = await client.xreadgroup("echo", "e1", {stream: ">"}, count=10, block=1000)
        for _, entries in reply or ():
            for entry_id, fields in entries:
                if fields.get("stop"):
                    return
                await client.xadd(replies, {"result": fields["command"]})
                await client.xack(stream, "echo", entry_id)
asyncio.run(main(*sys.argv[1:]))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}


def _redis_answers() -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


def _skipped(name: str, unit: str, goal: str) -> Figure:
    return Figure(name, 0.0, 0.0, unit, goal, ok=False,
                  note=f"not measured: Redis does not answer at {REDIS_URL} (or redis-py is missing)")


def _start_workers(count: int, db: Path | str, prefix: str) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "llmgine_nb", "worker", "--redis", REDIS_URL, "--db", str(db), "--prefix", prefix,
             "--concurrency", str(CONCURRENCY), "--lease-ms", "10000", "--model", "scripted"],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _forget(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


async def _transport(prefix: str, store: Any) -> Any:
    from llmgine_nb.distributed.redis_transport import RedisTransport

    return await RedisTransport.connect(REDIS_URL, prefix=prefix, store=store)


async def _until_workers_answer(transport: Any, session_id: str) -> None:
    from llmgine_nb.engine import CancelTurn

    await transport.send(CancelTurn(session_id=session_id), timeout=120)


# -- remote_roundtrip ---------------------------------------------------------------------


async def _raw_roundtrips(prefix: str) -> list[float]:
    import redis.asyncio as aioredis

    stream, replies = f"{prefix}:raw", f"{prefix}:raw-replies"
    echo = subprocess.Popen([sys.executable, "-c", _ECHO, REDIS_URL, stream, replies], stdout=subprocess.PIPE)
    assert echo.stdout is not None and echo.stdout.readline().strip() == b"ready"
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    cursor, times = "0-0", []
    try:
        for n in range(ROUNDTRIPS + 20):
            start = time.perf_counter()
            await client.xadd(stream, {"command": f'{{"n": {n}}}'})
            reply = await client.xread({replies: cursor}, count=1, block=5000)
            cursor = reply[0][1][0][0]
            if n >= 20:  # warmed up
                times.append(time.perf_counter() - start)
        await client.xadd(stream, {"stop": "1"})
    finally:
        await client.aclose()
        echo.wait(20)
    return times


async def _remote_roundtrips(prefix: str, db: Path) -> list[float]:
    from llmgine_nb.engine import CancelTurn
    from llmgine_nb.store import Store

    store = Store(db)
    session = store.create_session()
    workers = _start_workers(1, db, prefix)
    transport = await _transport(prefix, store)
    times = []
    try:
        await _until_workers_answer(transport, session.id)
        for n in range(ROUNDTRIPS + 20):
            start = time.perf_counter()
            result = await transport.send(CancelTurn(session_id=session.id), timeout=30)
            if n >= 20:
                times.append(time.perf_counter() - start)
            assert result.success and result.result is False, result
    finally:
        await transport.close()
        _stop(workers)
    return times


def bench_remote_roundtrip() -> Figure:
    goal = "ratio <= 3"
    if not _redis_answers():
        return _skipped("remote_roundtrip", "ms/command", goal)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        raw = asyncio.run(_raw_roundtrips(prefix))
        remote = asyncio.run(_remote_roundtrips(prefix, Path(tempfile.mkdtemp()) / "bench.db"))
    finally:
        _forget(prefix)
    value, baseline = statistics.median(remote), statistics.median(raw)
    return Figure(
        "remote_roundtrip", value * 1000, baseline * 1000, "ms/command", goal, ok=value / baseline <= 3,
        note=f"CancelTurn through RedisTransport to a worker process and back vs raw XADD + blocking XREADGROUP "
        f"echo + blocking XREAD; medians of {ROUNDTRIPS}; p90 {statistics.quantiles(remote, n=10)[-1] * 1000:.2f} "
        f"vs {statistics.quantiles(raw, n=10)[-1] * 1000:.2f} ms; load {os.getloadavg()[0]:.1f}",
    )


# -- worker_scaling -----------------------------------------------------------------------


POSTGRES_ADMIN = os.environ.get("LLMGINE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


class _Database:
    """The workers' shared store: a SQLite file, or a new PostgreSQL database (a SQLite file if none answers)."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.admin: Any = None

    def __enter__(self) -> str:
        self.name = f"llmgine_bench_{uuid.uuid4().hex[:10]}"
        if not self.postgres:
            return str(Path(tempfile.mkdtemp()) / "bench.db")
        try:
            import psycopg

            self.admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
        except Exception:
            self.admin = None
            return str(Path(tempfile.mkdtemp()) / "bench.db")
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        return f"{POSTGRES_ADMIN.rpartition('/')[0]}/{self.name}"

    def __exit__(self, *exc: object) -> None:
        if self.admin is not None:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.admin.close()


def _cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _until_partitions_shared(transport: Any, workers_count: int, timeout: float = 60.0) -> None:
    """Until every partition is held and each of ``workers_count`` workers holds its fair share."""
    keys = transport.keys
    fair = -(-keys.partitions // workers_count)
    deadline = time.monotonic() + timeout
    while True:
        owners = [await transport.redis.get(keys.partition_lease(p)) for p in range(keys.partitions)]
        held = [owners.count(owner) for owner in set(owners) if owner]
        if None not in owners and len(held) == workers_count and max(held) <= fair:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the partitions were not shared among {workers_count} workers in {timeout:.0f} s: "
                               f"{sorted(held)}")
        await asyncio.sleep(0.1)


async def _turns_per_second(workers_count: int, db: str) -> tuple[float, float]:
    """Turns per second in the steady state, and the workers' CPU use meanwhile (1.0: one core busy).

    Each session is a client that sends its next turn as soon as its last one is answered, so every
    worker stays busy through the whole window; a count of turns finished from a burst sent at once
    would also time the tail, where the worker whose partitions drew fewer sessions sits idle.
    """
    from llmgine_nb.engine import SendMessage
    from llmgine_nb.store import Store

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    store = Store(db)
    sessions = [store.create_session().id for _ in range(SESSIONS)]
    workers = _start_workers(workers_count, db, prefix)
    transport = await _transport(prefix, store)
    finished, stopping = 0, False

    async def client(session_id: str) -> None:
        nonlocal finished
        turn = 0
        while not stopping:
            result = await (await transport.submit(SendMessage(session_id=session_id, text=f"turn {turn}")))
            assert result.success, result.error
            finished, turn = finished + 1, turn + 1

    clients: list[asyncio.Future[None]] = []
    try:
        # Every worker warm (imports done, engines opened) and holding its share of the partitions: the
        # first to start takes them all, and hands half back once it sees the second.
        await asyncio.gather(*(_until_workers_answer(transport, s) for s in sessions))
        await _until_partitions_shared(transport, workers_count)
        await asyncio.gather(*(_until_workers_answer(transport, s) for s in sessions))
        clients = [asyncio.ensure_future(client(s)) for s in sessions]
        await asyncio.sleep(WARM_S)
        start, turns, cpu = time.perf_counter(), finished, sum(map(_cpu_seconds, workers))
        await asyncio.sleep(WINDOW_S)
        elapsed, turns = time.perf_counter() - start, finished - turns
        cpu = sum(map(_cpu_seconds, workers)) - cpu
        stopping = True
        await asyncio.gather(*clients)  # a failed turn fails the benchmark here
    finally:
        stopping = True
        for task in clients:
            task.cancel()
        await transport.close()
        _stop(workers)
        _forget(prefix)
        store.close()
    return turns / elapsed, cpu / elapsed


def bench_worker_scaling() -> Figure:
    goal = "ratio >= 1.4"
    if not _redis_answers():
        return _skipped("worker_scaling", "turns/s", goal)
    figures: dict[tuple[str, int], list[tuple[float, float]]] = {}
    # One worker, then two, three times over on SQLite (alternating, so a slow spell of the machine
    # does not fall on one side only); compared by their medians.  Once each on PostgreSQL.
    runs = [("sqlite", 1), ("sqlite", 2)] * SQLITE_ROUNDS + [("postgres", 1), ("postgres", 2)]
    for store, count in runs:
        with _Database(postgres=store == "postgres") as db:
            figures.setdefault((store, count), []).append(asyncio.run(_turns_per_second(count, db)))
    one = statistics.median(rate for rate, _ in figures["sqlite", 1])
    two = statistics.median(rate for rate, _ in figures["sqlite", 2])
    cpu_one = statistics.median(cpu for _, cpu in figures["sqlite", 1])
    cpu_two = statistics.median(cpu for _, cpu in figures["sqlite", 2])
    (pg_one, _), (pg_two, _) = figures["postgres", 1][0], figures["postgres", 2][0]
    rounds = ", ".join(f"{b / a:.2f}" for (a, _), (b, _) in zip(figures["sqlite", 1], figures["sqlite", 2]))
    return Figure(
        "worker_scaling", two, one, "turns/s", goal, ok=two / one >= 1.4,
        note=f"2 worker processes vs 1, {SESSIONS} sessions each sending its next turn when the last is answered, "
        f"offline model with no latency, the store one SQLite file; turns finished in {WINDOW_S:.0f} s of steady "
        f"state, medians of {SQLITE_ROUNDS} rounds (ratios {rounds}); the workers used {cpu_one:.2f} vs "
        f"{cpu_two:.2f} cores; on PostgreSQL {pg_two:.1f} vs {pg_one:.1f} turns/s (ratio {pg_two / pg_one:.2f}: "
        f"one worker there waits on the database more than it computes); load {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores",
    )


# -- fanout -----------------------------------------------------------------------------


async def _fanout() -> tuple[float, int]:
    from llmgine_nb.engine import SendMessage
    from llmgine_nb.store import Store

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    db = Path(tempfile.mkdtemp()) / "bench.db"
    store = Store(db)
    session = store.create_session().id
    workers = _start_workers(1, db, prefix)
    transport = await _transport(prefix, store)
    turns = 40
    delivered = 0

    async def follow() -> None:
        nonlocal delivered
        finished = 0
        async for _seq, text in transport.follow(session):
            delivered += 1
            finished += '.TurnFinished"' in text
            if finished == turns:
                return

    try:
        await _until_workers_answer(transport, session)
        followers = [asyncio.ensure_future(follow()) for _ in range(FOLLOWERS)]
        start = time.perf_counter()
        for n in range(turns):
            (await transport.send(SendMessage(session_id=session, text=f"turn {n}"), timeout=60)).unwrap()
        await asyncio.wait_for(asyncio.gather(*followers), 60)
        elapsed = time.perf_counter() - start
    finally:
        await transport.close()
        _stop(workers)
        _forget(prefix)
    return delivered / elapsed, delivered // FOLLOWERS


def bench_fanout() -> Figure:
    goal = "reported"
    if not _redis_answers():
        return _skipped("fanout", "events/s", goal)
    rate, events = asyncio.run(_fanout())
    return Figure(
        "fanout", rate, 1.0, "events/s", goal, ok=True,
        note=f"{events} events of one session (40 offline turns) to each of {FOLLOWERS} followers in one process, "
        f"through Redis; load {os.getloadavg()[0]:.1f}",
    )


BENCHMARKS = [bench_remote_roundtrip, bench_worker_scaling, bench_fanout]

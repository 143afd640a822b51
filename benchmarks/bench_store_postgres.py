"""The store on PostgreSQL beside the store on SQLite, measured in the same run (reported, no goal).

- store_turn_pg: one complete turn through ``Store.record_turn`` on PostgreSQL
  (127.0.0.1, one transaction, a network round trip per statement) vs the same
  turn on a SQLite file.
- session_load_pg: ``Store.load_session`` of a 10,000-message session from
  PostgreSQL vs from SQLite.

The database is made for the run (``llmgine_bench_<random>``) and dropped after.
``LLMGINE_BENCH_POSTGRES`` names the server (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
without a server answering there, these figures are left out with a line saying so.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import Figure, best_of
from bench_store import _long_history, _tmpdir, _turn

from llmgine_nb.store import Store

ADMIN_URL = os.environ.get("LLMGINE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def _postgres_database() -> Iterator[str]:
    import psycopg

    name = f"llmgine_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield ADMIN_URL.rpartition("/")[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seconds_per_turn(store: Store, turns: int = 200, rounds: int = 5) -> float:
    session = store.create_session(f"bench-{uuid.uuid4().hex[:6]}")
    best = float("inf")
    for _ in range(rounds):
        batch = [_turn(i, session.id) for i in range(turns)]
        start = time.perf_counter()
        for messages, call, events in batch:
            store.record_turn(session.id, messages, llm_calls=[call], events=events)
        best = min(best, time.perf_counter() - start)
    return best / turns


def _load_seconds(store: Store) -> float:
    session = store.create_session("ten thousand")
    store.append_messages(session, _long_history(10_000))
    assert len(store.load_session("ten thousand").messages) == 10_000
    return best_of(lambda: store.load_session("ten thousand"), repeat=7)


def _on_both(measure: Callable[[Store], float]) -> tuple[float, float]:
    """``measure`` of a store on PostgreSQL, then of one on a SQLite file."""
    with _postgres_database() as url, Store(url) as store:
        on_postgres = measure(store)
    folder = _tmpdir()
    try:
        with Store(Path(folder) / "bench.db") as store:
            on_sqlite = measure(store)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return on_postgres, on_sqlite


def _reported(name: str, value: float, baseline: float, unit: str, note: str) -> Figure:
    return Figure(name=name, value=value, baseline=baseline, unit=unit,
                  goal="reported (baseline: the same Store on a SQLite file)", ok=True, note=note)


def bench_store_turn_pg() -> Figure:
    value, baseline = _on_both(_seconds_per_turn)
    return _reported("store_turn_pg", value * 1e6, baseline * 1e6, "us/turn",
                     "3 messages + tool call + LLM call + 5 events, one transaction, PostgreSQL on 127.0.0.1")


def bench_session_load_pg() -> Figure:
    value, baseline = _on_both(_load_seconds)
    return _reported("session_load_pg", value * 1e3, baseline * 1e3, "ms", "10,000 messages as ChatMessages")


def _postgres_answers() -> bool:
    try:
        import psycopg

        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:  # no driver, no server: say so and leave the figures out
        print(f"bench_store_postgres: PostgreSQL not reachable at {ADMIN_URL} ({type(exc).__name__}); figures left out")
        return False
    return True


BENCHMARKS = [bench_store_turn_pg, bench_session_load_pg] if _postgres_answers() else []

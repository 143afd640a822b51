"""Three worker processes, 300 sessions x 5 turns with the offline model.

Each session's five messages are sent at once (not one after the other's
answer), so their order is kept by the transport: one partition stream per
session's commands, one worker at a time holding it, a session's turns run
one after the other.  A follower per session sees every event once, in order.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")

from distributed_support import Cluster, follow_turns, prefix, redis_url  # noqa: E402,F401

from llmgine_nb.distributed.redis_transport import RedisTransport  # noqa: E402
from llmgine_nb.engine import SendMessage  # noqa: E402
from llmgine_nb.engine.turn import TurnResult  # noqa: E402
from llmgine_nb.store import Store  # noqa: E402

pytestmark = [pytest.mark.faults, pytest.mark.slow]

WORKERS = 3
SESSIONS = int(os.environ.get("LLMGINE_SCALE_SESSIONS", "300"))
TURNS = 5


@pytest.fixture
def cluster(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Cluster]:  # noqa: F811
    made = Cluster(redis_url, prefix, tmp_path, {"LLMGINE_TEST_EFFECTS": str(tmp_path / "effects.txt"),
                                                 "LLMGINE_TEST_WORDS": "3"})
    yield made
    made.stop()


async def test_three_workers_run_1500_turns_in_order_with_every_event_once(cluster: Cluster) -> None:
    # Leases long enough that a worker whose loop waits on the shared SQLite file under load keeps them.
    cluster.start(WORKERS, concurrency=16, lease_ms=10_000)
    store = Store(cluster.db)
    transport = await RedisTransport.connect(cluster.url, prefix=cluster.prefix, store=store)
    sessions = [store.create_session().id for _ in range(SESSIONS)]
    seen: dict[str, list[int]] = {s: [] for s in sessions}

    followers = [asyncio.ensure_future(follow_turns(transport, s, seen[s], TURNS)) for s in sessions]
    try:
        futures = [await transport.submit(SendMessage(session_id=s, text=f"turn {n}"))
                   for s in sessions for n in range(TURNS)]
        results = await asyncio.wait_for(asyncio.gather(*futures), 600)
        done, waiting = await asyncio.wait(followers, timeout=120)
        behind = [(s, len(seen[s]), await transport.redis.xlen(transport.keys.events(s)),
                   store.database.read("SELECT max(seq) FROM events WHERE session_id = ?", (s,))[0][0])
                  for s, task in zip(sessions, followers) if task in waiting]
        assert not behind, f"followers that did not see their sessions end (session, seen, in redis, stored): {behind[:5]}"
    finally:
        for task in followers:
            task.cancel()
        await transport.close()

    assert len(results) == SESSIONS * TURNS
    assert all(TurnResult.read(r.unwrap()).ok for r in results)
    for session_id in sessions:
        messages = store.messages(session_id)
        assert [m.content for m in messages if m.role == "user"] == [f"turn {n}" for n in range(TURNS)]
        replies = [m.content for m in messages if m.role == "assistant"]
        assert replies == [f"reply to: turn {n} word word word (end)" for n in range(TURNS)]
        last = store.database.read("SELECT max(seq) FROM events WHERE session_id = ?", (session_id,))[0][0]
        assert seen[session_id] == list(range(1, last + 1)), "every stored event reached the follower once"

"""Redis killed and started again mid-run: workers and front ends reconnect, nothing is lost.

The test's own ``redis-server --appendonly yes --appendfsync always`` (the
deployment's durability choice: an acknowledged write survives a restart), two
worker processes, and this process as the front end following every session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")

from distributed_support import Cluster, RedisServer, cleanup_prefix, follow_turns  # noqa: E402

from llmgine_nb.distributed.redis_transport import RedisTransport  # noqa: E402
from llmgine_nb.engine import SendMessage  # noqa: E402
from llmgine_nb.engine.turn import TurnResult  # noqa: E402
from llmgine_nb.store import Store  # noqa: E402

pytestmark = pytest.mark.faults

SESSIONS, TURNS = 6, 4


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    yield server
    server.kill()


async def test_redis_restarted_mid_run_loses_nothing(redis_server: RedisServer, tmp_path: Path) -> None:
    env = {"LLMGINE_TEST_EFFECTS": str(tmp_path / "effects.txt"), "LLMGINE_TEST_DELAY": "0.01",
           "LLMGINE_TEST_WORDS": "30", "LLMGINE_LOG_LEVEL": "INFO"}
    cluster = Cluster(redis_server.url, "restart", tmp_path, env)
    cluster.start(2, lease_ms=3000)
    store = Store(cluster.db)
    transport = await RedisTransport.connect(redis_server.url, prefix="restart", store=store)
    sessions = [store.create_session().id for _ in range(SESSIONS)]
    seen: dict[str, list[int]] = {s: [] for s in sessions}

    async def converse(session_id: str) -> list[TurnResult]:
        results = []
        for n in range(TURNS):
            result = await transport.send(SendMessage(session_id=session_id, text=f"turn {n}"), timeout=120)
            results.append(TurnResult.read(result.unwrap()))
        return results

    followers = [asyncio.ensure_future(follow_turns(transport, s, seen[s], TURNS)) for s in sessions]
    talks = asyncio.ensure_future(asyncio.gather(*(converse(s) for s in sessions)))
    try:
        await asyncio.sleep(1.0)  # turns are running
        assert not talks.done(), "the conversation should still be going when Redis goes away"
        before = (await transport.redis.info("server"))["run_id"]
        await asyncio.to_thread(redis_server.restart)
        assert not talks.done(), "Redis was restarted mid-run"
        outcomes = await asyncio.wait_for(talks, 180)
        await asyncio.wait_for(asyncio.gather(*followers), 60)
        assert (await transport.redis.info("server"))["run_id"] != before, "it was another redis-server process"
    finally:
        for task in followers:
            task.cancel()
        await transport.close()
        cluster.stop()
        cleanup_prefix(redis_server.url, "restart")

    for session_id, results in zip(sessions, outcomes):
        assert all(r.ok and r.text.endswith("(end)") for r in results)
        asked = [m.content for m in store.messages(session_id) if m.role == "user"]
        assert asked == [f"turn {n}" for n in range(TURNS)], "each message once, in order"
        replies = [m for m in store.messages(session_id) if m.role == "assistant" and m.status != "interrupted"]
        assert len(replies) == TURNS
        assert seen[session_id] == list(range(1, len(seen[session_id]) + 1)), "each event once, in order, no gap"

"""Leases under stress: a turn runs once even when its worker stalls, loses its lease or dies before answering.

Worker processes (``llmgine-nb worker``) on real Redis and one SQLite file;
the test is the front end.  ``LLMGINE_TEST_CALLS`` counts the model's calls
per message: a turn run twice would call it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")

from distributed_support import Cluster, front, note_types, prefix, redis_url, wait_until  # noqa: E402,F401

from llmgine_nb.distributed.redis_transport import RedisTransport  # noqa: E402
from llmgine_nb.engine import SendMessage  # noqa: E402
from llmgine_nb.engine.turn import TurnResult  # noqa: E402
from llmgine_nb.store import Store  # noqa: E402

pytestmark = pytest.mark.faults

LEASE_MS = 1000


@pytest.fixture
def cluster(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Cluster]:  # noqa: F811
    env = {"LLMGINE_TEST_EFFECTS": str(tmp_path / "effects.txt"), "LLMGINE_TEST_CALLS": str(tmp_path / "calls.txt"),
           "LLMGINE_TEST_DIE_ONCE": str(tmp_path / "died"), "LLMGINE_TEST_DELAY": "0.02",
           "LLMGINE_TEST_WORDS": "100", "LLMGINE_LOG_LEVEL": "INFO"}
    made = Cluster(redis_url, prefix, tmp_path, env)
    # One partition: both workers want it, so the moment its holder loses it the other takes it.
    import redis

    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}:partitions", 1)
    client.close()
    yield made
    made.stop()


def model_calls(cluster: Cluster) -> list[str]:
    calls = Path(cluster.env["LLMGINE_TEST_CALLS"])
    return calls.read_text().splitlines() if calls.exists() else []


def stored_turn_types(store: Store, session_id: str) -> list[str]:
    rows = store.database.read("SELECT type FROM events WHERE session_id = ? AND seq IS NOT NULL ORDER BY seq",
                               (session_id,))
    return [row["type"].rsplit(".", 1)[-1] for row in rows if row["type"].rsplit(".", 1)[-1].startswith("Turn")]


def lease_holder(cluster: Cluster, transport: RedisTransport) -> str | None:
    import redis

    client = redis.Redis.from_url(cluster.url, decode_responses=True)
    try:
        return client.get(transport.keys.partition_lease(0))
    finally:
        client.close()


async def answered_once(store: Store, session_id: str, pending: asyncio.Future, text: str) -> TurnResult:
    result = TurnResult.read((await asyncio.wait_for(pending, 60)).unwrap())
    assert result.status == "complete" and result.text.endswith("(end)")
    messages = store.messages(session_id)
    assert [m.content for m in messages if m.role == "user"] == [text], "the user's message is kept once"
    assert [m.content for m in messages if m.role == "assistant"] == [result.text], "one reply, the one sent"
    assert stored_turn_types(store, session_id) == ["TurnStarted", "TurnFinished"], "the turn ran once, uncut"
    return result


async def test_a_worker_whose_loop_blocks_past_its_lease_keeps_its_partition(cluster: Cluster, front) -> None:  # noqa: F811
    transport, store = front
    cluster.start(2, lease_ms=LEASE_MS)
    session = store.create_session()
    await asyncio.to_thread(wait_until, lambda: lease_holder(cluster, transport) is not None, 30, "a lease holder")
    # The model blocks the worker's event loop three lease lives long (a synchronous call that does not await).
    text = f"block: {3 * LEASE_MS / 1000}"
    holder = lease_holder(cluster, transport)
    pending = await transport.submit(SendMessage(session_id=session.id, text=text))

    await answered_once(store, session.id, pending, text)
    assert model_calls(cluster) == [text], "the other worker did not take the partition and run the turn again"
    assert lease_holder(cluster, transport) == holder, "the stalled worker kept its lease"


async def test_a_partition_taken_mid_turn_waits_for_the_turn_and_answers_from_the_store(cluster: Cluster, front) -> None:  # noqa: F811
    transport, store = front
    cluster.start(2, lease_ms=LEASE_MS)
    session = store.create_session()
    seen: list[str] = []
    follower = asyncio.ensure_future(note_types(transport, session.id, seen))
    try:
        pending = await transport.submit(SendMessage(session_id=session.id, text="hello"))
        await asyncio.to_thread(wait_until, lambda: seen.count("LLMTextDelta") >= 2, 60, "the reply to stream")
        first = lease_holder(cluster, transport)
        # The lease goes while the turn runs (as if it had expired): the running worker must stop acting for
        # the partition, and the other, taking it, must neither cut the running turn nor run it again.
        await transport.redis.set(transport.keys.partition_lease(0), "someone-else", px=300)

        await answered_once(store, session.id, pending, "hello")
        assert model_calls(cluster) == ["hello"]
        assert lease_holder(cluster, transport) not in (first, "someone-else"), "the other worker took the partition"
        assert "TurnCancelled" not in seen
    finally:
        follower.cancel()


async def test_a_worker_killed_after_storing_a_turn_does_not_reply_twice(cluster: Cluster, front) -> None:  # noqa: F811
    transport, store = front
    cluster.start(2, lease_ms=LEASE_MS, app="distributed_app:dying_options")
    session = store.create_session()
    pending = await transport.submit(SendMessage(session_id=session.id, text="hello"))

    await answered_once(store, session.id, pending, "hello")
    assert Path(cluster.env["LLMGINE_TEST_DIE_ONCE"]).exists(), "a worker died before sending the result"
    assert sum(process.poll() is not None for process in cluster.processes) == 1
    assert model_calls(cluster) == ["hello"], "the next worker answered from the store, the model was not asked again"

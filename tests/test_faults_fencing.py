"""A worker frozen past its lease mid-turn cannot write the session when it wakes (fencing tokens).

Two worker processes (``llmgine-nb worker``) on real Redis and one store (a SQLite file,
and PostgreSQL), one partition; the test is the front end.  The worker running a turn is
frozen (SIGSTOP) until its heartbeat and lease expire; the other takes the partition and
the turn over and answers it; then the first is woken (SIGCONT).  Without fencing it went
on and stored a second reply; with it, its next write of the session is refused
(``store/fencing.py``) and it stops quietly.  ``make test-faults`` repeats it 10 times.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")

from distributed_support import Cluster, front, note_types, prefix, redis_url, wait_until  # noqa: E402,F401

from llmgine_nb.engine import SendMessage  # noqa: E402
from llmgine_nb.engine.turn import TurnResult  # noqa: E402
from llmgine_nb.store import Store  # noqa: E402

pytestmark = pytest.mark.faults

LEASE_MS = 1000


@pytest.fixture
def cluster(redis_url: str, prefix: str, tmp_path: Path, db_target: str | Path) -> Iterator[Cluster]:  # noqa: F811
    env = {"LLMGINE_TEST_EFFECTS": str(tmp_path / "effects.txt"), "LLMGINE_TEST_DELAY": "0.02",
           "LLMGINE_TEST_WORDS": "100", "LLMGINE_LOG_LEVEL": "INFO"}
    made = Cluster(redis_url, prefix, tmp_path, env, db=db_target)
    # One partition: the moment its holder loses it, the other worker takes it.
    import redis

    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}:partitions", 1)
    client.close()
    yield made
    made.stop()


def lease_holder(cluster: Cluster, lease_key: str) -> str | None:
    import redis

    client = redis.Redis.from_url(cluster.url, decode_responses=True)
    try:
        return client.get(lease_key)
    finally:
        client.close()


def replies(store: Store, session_id: str) -> list[str]:
    """The whole replies stored (a streamed reply ends with "(end)"; a cut draft does not)."""
    return [m.content or "" for m in store.messages(session_id)
            if m.role == "assistant" and (m.content or "").endswith("(end)")]


def finished_turns(store: Store, session_id: str) -> int:
    rows = store.database.read("SELECT type FROM events WHERE session_id = ? AND seq IS NOT NULL", (session_id,))
    return sum(row["type"].endswith(".TurnFinished") for row in rows)


async def test_a_worker_frozen_past_its_lease_mid_turn_cannot_write_the_session_when_it_wakes(
        cluster: Cluster, front) -> None:  # noqa: F811
    transport, store = front
    lease_key = transport.keys.partition_lease(0)
    cluster.start(2, lease_ms=LEASE_MS)
    session = store.create_session()
    seen: list[str] = []
    follower = asyncio.ensure_future(note_types(transport, session.id, seen))
    frozen: int | None = None
    try:
        pending = await transport.submit(SendMessage(session_id=session.id, text="hello"))
        await asyncio.to_thread(wait_until, lambda: seen.count("LLMTextDelta") >= 2, 60, "the reply to stream")
        holder = lease_holder(cluster, lease_key)
        assert holder is not None
        frozen = int(holder.split("-")[-2])  # worker ids name their process
        os.kill(frozen, signal.SIGSTOP)  # mid-turn: its heartbeat and lease expire, the other takes the turn over

        result = TurnResult.read((await asyncio.wait_for(pending, 60)).unwrap())
        assert result.status == "complete" and result.text.endswith("(end)")
        assert lease_holder(cluster, lease_key) not in (None, holder), "the other worker took the partition"
        os.kill(frozen, signal.SIGCONT)
        frozen = None

        # The woken worker goes on with its turn: its next write of the session is refused
        # (unfenced, it stored a second reply).
        log = cluster.logs
        await asyncio.to_thread(
            wait_until,
            lambda: "fenced out of session" in log.read_text(errors="replace") or len(replies(store, session.id)) > 1,
            15, "the woken worker to write the session or be fenced out")
        assert replies(store, session.id) == [result.text], "one reply for the turn: the one its new holder sent"
        assert [m.content for m in store.messages(session.id) if m.role == "user"] == ["hello"]
        assert finished_turns(store, session.id) == 1
        written = log.read_text(errors="replace")
        assert "its write was refused and nothing of it stored" in written, "the woken worker's write was refused"
        assert all(process.poll() is None for process in cluster.processes), "no worker process crashed"
    finally:
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
        follower.cancel()

"""Workers killed with SIGKILL: the turn completes on another worker, nothing lost, no effect twice.

Worker processes (``llmgine-nb worker``) on real Redis and one store (a SQLite
file, and PostgreSQL); the test is the front end.  ``make test-faults`` repeats each test 10 times.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")

from distributed_support import Cluster, front, prefix, redis_url, wait_until  # noqa: E402,F401

from llmgine_nb.distributed.keys import Keys  # noqa: E402
from llmgine_nb.distributed.redis_transport import RedisTransport  # noqa: E402
from llmgine_nb.engine import SendMessage  # noqa: E402
from llmgine_nb.engine.turn import TurnResult  # noqa: E402

pytestmark = pytest.mark.faults


@pytest.fixture
def cluster(redis_url: str, prefix: str, tmp_path: Path, db_target: str | Path) -> Iterator[Cluster]:  # noqa: F811
    # On both stores (``backend``: SQLite, and PostgreSQL in a schema of the test's own).
    env = {"LLMGINE_TEST_EFFECTS": str(tmp_path / "effects.txt"), "LLMGINE_TEST_DELAY": "0.02",
           "LLMGINE_TEST_WORDS": "150", "LLMGINE_TEST_TOOL_SLEEP": "2"}
    made = Cluster(redis_url, prefix, tmp_path, env, db=db_target)
    yield made
    made.stop()


def holder_pid(cluster: Cluster, keys: Keys, session_id: str) -> int:
    """The process that holds the lease of the session's partition (worker ids name their pid)."""
    import redis

    client = redis.Redis.from_url(cluster.url, decode_responses=True)
    owner = client.get(keys.partition_lease(keys.partition_of(session_id)))
    client.close()
    assert owner, "no worker holds the session's partition"
    return int(owner.split("-")[-2])


async def follow_until_finished(transport: RedisTransport, session_id: str, seen: list[tuple[int, dict]]) -> None:
    async for seq, text in transport.follow(session_id):
        event = json.loads(text)
        seen.append((seq, event))
        if event["type"].endswith((".TurnFinished", ".TurnFailed")):
            return


def types(seen: list[tuple[int, dict]]) -> list[str]:
    return [event["type"].rsplit(".", 1)[-1] for _, event in seen]


async def test_a_worker_killed_mid_stream_leaves_the_turn_to_another(cluster: Cluster, front) -> None:  # noqa: F811
    transport, store = front
    cluster.start(2)
    session = store.create_session()
    seen: list[tuple[int, dict]] = []
    follower = asyncio.ensure_future(follow_until_finished(transport, session.id, seen))
    pending = await transport.submit(SendMessage(session_id=session.id, text="hello"))
    await asyncio.to_thread(wait_until, lambda: types(seen).count("LLMTextDelta") >= 2, 60, "the reply to stream")
    os.kill(holder_pid(cluster, transport.keys, session.id), signal.SIGKILL)
    result = TurnResult.read((await asyncio.wait_for(pending, 60)).unwrap())
    await asyncio.wait_for(follower, 30)

    assert result.status == "complete" and result.text.endswith("(end)")
    messages = store.messages(session.id)
    assert [m.content for m in messages if m.role == "user"] == ["hello"], "the user's message is kept once"
    assert messages[-1].role == "assistant" and messages[-1].content == result.text
    assert [seq for seq, _ in seen] == list(range(1, len(seen) + 1)), "each event once, in order, no gap"
    assert types(seen).count("TurnStarted") == 2, "the turn started on the first worker and again on the second"
    assert types(seen)[-1] == "TurnFinished"


async def test_a_worker_killed_mid_tool_call_never_runs_the_call_twice(cluster: Cluster, front) -> None:  # noqa: F811
    transport, store = front
    cluster.start(2)
    session = store.create_session()
    seen: list[tuple[int, dict]] = []
    follower = asyncio.ensure_future(follow_until_finished(transport, session.id, seen))
    pending = await transport.submit(SendMessage(session_id=session.id, text="tool: paid"))
    await asyncio.to_thread(wait_until, lambda: "ToolStarted" in types(seen), 60, "the tool to start")
    os.kill(holder_pid(cluster, transport.keys, session.id), signal.SIGKILL)
    result = TurnResult.read((await asyncio.wait_for(pending, 60)).unwrap())
    await asyncio.wait_for(follower, 30)

    assert result.status == "complete"
    assert not cluster.effects.exists(), "the call cut by the kill was not run again"
    (call,) = store.tool_calls(session.id)
    assert call.status == "error" and "unknown" in (call.error or "")
    tool_messages = [m for m in store.messages(session.id) if m.role == "tool"]
    assert len(tool_messages) == 1 and "outcome of this call is unknown" in (tool_messages[0].content or "")
    assert [seq for seq, _ in seen] == list(range(1, len(seen) + 1))
    told = [event for _, event in seen if event["type"].endswith(".ToolFinished")]
    assert [event["result"]["metadata"]["outcome"] for event in told] == ["unknown"], "the user was told too"

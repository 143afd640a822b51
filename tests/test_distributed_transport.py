"""The Redis Streams transport with workers in this process: commands, results, events, partitions.

Real Redis (127.0.0.1:6379, a key prefix per test), a real SQLite file shared
by the workers and the front end, the offline model.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

pytest.importorskip("redis")

from distributed_app import options  # noqa: E402
from distributed_support import prefix, redis_url  # noqa: E402,F401

from llmgine_nb.distributed import event_of  # noqa: E402
from llmgine_nb.distributed.keys import Keys  # noqa: E402
from llmgine_nb.distributed.redis_transport import RedisTransport, connect_redis  # noqa: E402
from llmgine_nb.distributed.worker import Worker  # noqa: E402
from llmgine_nb.engine import SendMessage  # noqa: E402
from llmgine_nb.engine.commands import RetryTurn  # noqa: E402
from llmgine_nb.engine.turn import TurnResult  # noqa: E402
from llmgine_nb.server.hub import SessionHub  # noqa: E402
from llmgine_nb.store import Store  # noqa: E402


class Deployment:
    """Workers in this process on one Redis prefix and one database file, and a front end."""

    def __init__(self, url: str, prefix: str, db: Path) -> None:
        self.url, self.keys, self.db = url, Keys(prefix, partitions=4), db
        self.workers: list[tuple[Worker, asyncio.Event, asyncio.Task[None]]] = []

    async def add_worker(self, concurrency: int = 4) -> Worker:
        hub = SessionHub(Store(self.db), **options())
        worker = Worker(connect_redis(self.url), hub, keys=self.keys, concurrency=concurrency, lease_ms=600)
        stop = asyncio.Event()
        self.workers.append((worker, stop, asyncio.ensure_future(worker.run(stop))))
        return worker

    async def stop_worker(self, worker: Worker) -> None:
        for entry in self.workers:
            if entry[0] is worker:
                entry[1].set()
                await entry[2]
                await worker.hub.close()
                await worker.redis.aclose()
                self.workers.remove(entry)
                return

    async def close(self) -> None:
        for worker, _, _ in list(self.workers):
            await self.stop_worker(worker)


@pytest.fixture
async def deployment(redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    monkeypatch.setenv("LLMGINE_TEST_EFFECTS", str(tmp_path / "effects.txt"))
    made = Deployment(redis_url, prefix, tmp_path / "shared.db")
    yield made
    await made.close()


async def front_end(deployment: Deployment) -> tuple[RedisTransport, Store]:
    store = Store(deployment.db)
    return RedisTransport(connect_redis(deployment.url), keys=deployment.keys, store=store), store


async def test_a_turn_runs_on_a_worker_and_its_result_and_events_come_back(deployment: Deployment) -> None:
    await deployment.add_worker()
    transport, store = await front_end(deployment)
    session = store.create_session("remote")
    events: list[tuple[int, str]] = []

    async def follow() -> None:
        async for seq, text in transport.follow(session.id):
            events.append((seq, text))
            if json.loads(text)["type"].endswith(".TurnFinished"):
                return

    follower = asyncio.ensure_future(follow())
    result = await transport.send(SendMessage(session_id=session.id, text="hello"), timeout=30)
    turn = TurnResult.read(result.unwrap())
    assert turn.status == "complete" and turn.text == "reply to: hello word word word (end)"
    await asyncio.wait_for(follower, 10)
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    kinds = [type(event_of(text)).__name__ for _, text in events]
    assert kinds[0] == "TurnStarted" and kinds[-1] == "TurnFinished" and "LLMTextDelta" in kinds
    assert [m.content for m in store.messages(session.id)] == ["hello", turn.text]
    await transport.close()


async def test_a_command_sent_twice_runs_once_and_both_get_its_result(deployment: Deployment) -> None:
    worker = await deployment.add_worker()
    transport, store = await front_end(deployment)
    session = store.create_session()
    command = SendMessage(session_id=session.id, text="tool: once")
    first = await transport.send(command, timeout=30)
    second = await transport.send(command, timeout=30)  # the same message id: a redelivery
    assert first == second and TurnResult.read(first.unwrap()).text == "done: recorded once (end)"
    effects = Path(deployment.workers[0][0].hub.store.path).parent / "effects.txt"
    assert effects.read_text().splitlines() == ["once"]
    assert (worker.handled, worker.answered_again) == (1, 1) and len(store.messages(session.id)) == 4
    await transport.close()


async def test_two_copies_of_a_command_read_together_run_once_and_both_are_answered(
        deployment: Deployment) -> None:
    transport, store = await front_end(deployment)
    session = store.create_session()
    command = SendMessage(session_id=session.id, text="tool: together")
    # Sent twice before any worker reads (a sender that repeated an XADD it was unsure of):
    # the worker's first read holds both copies.
    first = await transport.submit(command)
    await transport.redis.xadd(transport.keys.commands(transport.keys.partition_of(session.id)),
                               {"command": command.to_json(), "reply_to": transport.client_id})
    worker = await deployment.add_worker()
    assert TurnResult.read((await asyncio.wait_for(first, 30)).unwrap()).text == "done: recorded together (end)"
    effects = Path(deployment.db).parent / "effects.txt"
    await _until(lambda: worker.handled + worker.answered_again >= 2)  # both copies dealt with
    assert effects.read_text().splitlines() == ["together"]
    assert (worker.handled, worker.answered_again) == (1, 1) and len(store.messages(session.id)) == 4
    pending = await transport.redis.xpending(transport.keys.commands(transport.keys.partition_of(session.id)), "workers")
    assert pending["pending"] == 0  # both copies acknowledged
    await transport.close()


async def test_two_copies_of_a_retry_read_together_answer_the_message_once(
        deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("LLMGINE_TEST_CALLS", str(calls))
    first_worker = await deployment.add_worker()
    transport, store = await front_end(deployment)
    session = store.create_session()
    (await transport.send(SendMessage(session_id=session.id, text="hello"), timeout=30)).unwrap()
    await deployment.stop_worker(first_worker)
    retry = RetryTurn(session_id=session.id)
    answer = await transport.submit(retry)
    await transport.redis.xadd(transport.keys.commands(transport.keys.partition_of(session.id)),
                               {"command": retry.to_json(), "reply_to": transport.client_id})
    worker = await deployment.add_worker()
    (await asyncio.wait_for(answer, 30)).unwrap()
    await _until(lambda: worker.handled + worker.answered_again >= 2)
    assert calls.read_text().splitlines() == ["hello", "hello"]  # the message, and its one retry
    assert (worker.handled, worker.answered_again) == (1, 1)
    await transport.close()


async def test_a_copy_that_arrives_while_its_command_runs_waits_for_that_run(
        deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGINE_TEST_TOOL_SLEEP", "0.5")
    worker = await deployment.add_worker()
    transport, store = await front_end(deployment)
    session = store.create_session()
    command = SendMessage(session_id=session.id, text="tool: meanwhile")
    first = await transport.submit(command)
    await _until(lambda: len(store.messages(session.id)) >= 2)  # the tool is running
    await transport.redis.xadd(transport.keys.commands(transport.keys.partition_of(session.id)),
                               {"command": command.to_json(), "reply_to": transport.client_id})
    assert TurnResult.read((await asyncio.wait_for(first, 30)).unwrap()).text == "done: recorded meanwhile (end)"
    await _until(lambda: worker.handled + worker.answered_again >= 2)  # both copies dealt with
    assert (Path(deployment.db).parent / "effects.txt").read_text().splitlines() == ["meanwhile"]
    assert worker.handled == 1 and len(store.messages(session.id)) == 4
    await transport.close()


async def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_turns_of_one_session_run_in_the_order_sent_across_two_workers(deployment: Deployment) -> None:
    first, second = await deployment.add_worker(), await deployment.add_worker()
    for _ in range(400):  # the first to start holds every partition until the second takes its share
        if first.partitions.readers and second.partitions.readers and not first.partitions.draining:
            break
        await asyncio.sleep(0.05)
    transport, store = await front_end(deployment)
    # 24 sessions over 16 partitions: the chance that all fall on one worker's half is about 2 in 16 million.
    sessions = [store.create_session().id for _ in range(24)]
    futures = [await transport.submit(SendMessage(session_id=s, text=f"{s[:6]} turn {n}"))
               for n in range(4) for s in sessions]
    results = await asyncio.wait_for(asyncio.gather(*futures), 60)
    assert all(TurnResult.read(r.unwrap()).ok for r in results)
    for session_id in sessions:
        asked = [m.content for m in store.messages(session_id) if m.role == "user"]
        assert asked == [f"{session_id[:6]} turn {n}" for n in range(4)]
    assert first.handled > 0 and second.handled > 0, "both workers took partitions"
    assert set(first.partitions.readers).isdisjoint(second.partitions.readers)
    await transport.close()


async def test_the_local_transport_carries_the_same_contract_in_one_process(tmp_path: Path) -> None:
    from llmgine_nb.distributed import LocalTransport

    hub = SessionHub(Store(tmp_path / "local.db"), **options())
    transport = LocalTransport(hub)
    record = await hub.create_session()
    first = await transport.send(SendMessage(session_id=record.id, text="one"), timeout=30)
    seen: list[int] = []

    async def follow() -> None:
        finished = 0
        async for seq, text in transport.follow(record.id, after=0):  # replays turn one, then live
            seen.append(seq)
            finished += json.loads(text)["type"].endswith(".TurnFinished")
            if finished == 2:
                return

    follower = asyncio.ensure_future(follow())
    second = await transport.send(SendMessage(session_id=record.id, text="two"), timeout=30)
    await asyncio.wait_for(follower, 10)
    assert TurnResult.read(first.unwrap()).ok and TurnResult.read(second.unwrap()).text.startswith("reply to: two")
    assert seen == list(range(1, len(seen) + 1)) and len(seen) > 6
    await transport.close()
    await hub.close()

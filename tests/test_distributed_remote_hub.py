"""The server's hub with no engines of its own: turns run on a worker, approvals and events come back.

A worker in this process (the demo's model and tools: "note: ..." asks approval),
real Redis, one SQLite file; ``RemoteHub`` is what ``llmgine-nb serve --redis`` puts
behind the routes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip("redis")

from distributed_support import prefix, redis_url  # noqa: E402,F401

from llmgine_nb.distributed.keys import Keys  # noqa: E402
from llmgine_nb.distributed.redis_transport import RedisTransport, connect_redis  # noqa: E402
from llmgine_nb.distributed.remote_hub import RemoteHub  # noqa: E402
from llmgine_nb.distributed.worker import Worker  # noqa: E402
from llmgine_nb.server.demo import demo_llm, demo_tools  # noqa: E402
from llmgine_nb.server.hub import SessionHub  # noqa: E402
from llmgine_nb.server.hub_api import NotPending  # noqa: E402
from llmgine_nb.store import Store  # noqa: E402


@pytest.fixture
async def keys(redis_url: str, prefix: str, tmp_path: Path) -> AsyncIterator[Keys]:  # noqa: F811
    """A worker in this process on ``tmp_path / "shared.db"`` (the demo's model and tools); its keys."""
    keys = Keys(prefix, partitions=2)
    hub = SessionHub(Store(tmp_path / "shared.db"), llm_factory=lambda model: demo_llm(), tools=demo_tools())
    worker = Worker(connect_redis(redis_url), hub, keys=keys, lease_ms=1000)
    stop = asyncio.Event()
    running = asyncio.ensure_future(worker.run(stop))
    yield keys
    stop.set()
    await hub.close()  # first: a turn left waiting for its approval (a failed check) is cancelled
    await running
    await worker.redis.aclose()


async def test_a_remote_hub_runs_a_turn_with_an_approval_on_a_worker(redis_url: str, keys: Keys,  # noqa: F811
                                                                     tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    store = Store(db)
    remote = RemoteHub(store, RedisTransport(connect_redis(redis_url), keys=keys, store=store))
    try:
        record = await remote.create_session("remote")
        watcher = remote.streams.subscribe(record.id)
        turn_id = await remote.send(record.id, "note: buy milk")
        assert turn_id and remote.running(record.id)
        for _ in range(200):
            if remote.pending(record.id):
                break
            await asyncio.sleep(0.05)
        (item,) = remote.pending(record.id)
        assert item["kind"] == "approval" and item["tool_name"] == "save_note"
        assert item["arguments"] == {"text": "buy milk"} and item["args_hash"]
        with pytest.raises(NotPending):
            await remote.decide(record.id, "nosuchcall", "approve")
        await remote.decide(record.id, item["display_id"], "approve", args_hash=item["args_hash"], decided_by="ada")
        seen = []
        while True:
            text = await asyncio.wait_for(watcher.get(), 30)
            seen.append(json.loads(text))
            if seen[-1]["type"].endswith(".TurnFinished"):
                break
        assert [event["seq"] for event in seen] == list(range(1, len(seen) + 1))
        assert "saved note" in seen[-1]["text"]
        assert remote.pending(record.id) == []
        assert [m.role for m in store.messages(record.id)] == ["user", "assistant", "tool", "assistant"]
        assert store.tool_calls(record.id)[0].approval.who == "ada"
        assert await remote.cancel(record.id) is False  # nothing running now
        remote.streams.unsubscribe(record.id, watcher)
    finally:
        await remote.close()


async def test_with_redis_delete_mid_turn_is_409_and_a_deleted_session_leaves_no_event_stream(
        redis_url: str, keys: Keys, tmp_path: Path) -> None:  # noqa: F811
    """Through the routes, as ``serve --redis`` runs them: the same answers as the in-process server."""
    import httpx

    from llmgine_nb.server import create_app
    from llmgine_nb.store.users import add_user

    db = tmp_path / "shared.db"
    store = Store(db)
    _, token = add_user(store, "ada")
    app = create_app(store, hub_factory=lambda s: RemoteHub(s, RedisTransport(connect_redis(redis_url), keys=keys,
                                                                                store=s)))
    redis = connect_redis(redis_url)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test",
                headers={"Authorization": f"Bearer {token}"}) as api:
            session_id = (await api.post("/api/sessions", json={})).json()["id"]
            assert (await api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: x"})).status_code == 202
            for _ in range(200):
                if (await api.get(f"/api/sessions/{session_id}/pending")).json():
                    break
                await asyncio.sleep(0.05)
            refused = await api.delete(f"/api/sessions/{session_id}")
            assert refused.status_code == 409 and "stop it" in refused.json()["error"]
            stream = keys.events(session_id)
            assert await redis.exists(stream) and 0 < await redis.ttl(stream)  # an idle stream expires
            assert (await api.post(f"/api/sessions/{session_id}/cancel")).status_code == 200
            for _ in range(200):
                if not (await api.get(f"/api/sessions/{session_id}")).json()["running"]:
                    break
                await asyncio.sleep(0.05)
            deleted = await api.delete(f"/api/sessions/{session_id}")
            assert deleted.status_code == 200, deleted.text
            assert not await redis.exists(stream)
    finally:
        await redis.aclose()


async def test_a_turn_cut_under_a_worker_says_the_worker_stopped_not_the_server(
        redis_url: str, prefix: str, tmp_path: Path) -> None:  # noqa: F811
    """A worker's hub names what happened when it loads a session whose turn was cut: the worker stopped."""
    from llmgine_nb.chat import ChatMessage
    from llmgine_nb.engine.events import TurnCancelled, TurnStarted
    from llmgine_nb.server.recovery import WORKER_STOPPED_REASON
    from llmgine_nb.store.streams import append_numbered

    store = Store(tmp_path / "shared.db")
    session_id = store.create_session(model="scripted").id
    store.record_turn(session_id, [ChatMessage(role="user", content="hi")])
    started = TurnStarted(session_id=session_id, turn_id="t1", text="hi", model="m", user_message_id="u1")
    append_numbered(store, [(session_id, 1, started, started.to_json())])  # started, never ended: cut
    hub = SessionHub(store, model="scripted")
    worker = Worker(connect_redis(redis_url), hub, keys=Keys(prefix, partitions=2))
    ended: list[TurnCancelled] = []
    hub.bus.subscribe(TurnCancelled, ended.append, inline=True)
    try:
        await hub.open(session_id)
    finally:
        await hub.close()
        await worker.redis.aclose()
        store.close()
    assert [e.reason for e in ended] == [WORKER_STOPPED_REASON]
    assert "worker running this turn stopped" in ended[0].reason and "server" not in ended[0].reason


async def test_a_restarted_front_end_lists_what_waits_without_a_stream(redis_url: str, keys: Keys,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """``serve --redis`` restarted while an approval waits: GET pending lists it from the store's log at once."""
    db = tmp_path / "shared.db"
    store = Store(db)
    first = RemoteHub(store, RedisTransport(connect_redis(redis_url), keys=keys, store=store))
    second = RemoteHub(store, RedisTransport(connect_redis(redis_url), keys=keys, store=store))
    try:
        record = await first.create_session("remote")
        await first.send(record.id, "note: buy milk")
        for _ in range(200):
            if first.pending(record.id):
                break
            await asyncio.sleep(0.05)
        (asked,) = first.pending(record.id)
        await first.close()  # the front end goes away; the turn waits on the worker
        (listed,) = second.pending(record.id)  # a new front end, asked at once
        assert listed["call_id"] == asked["call_id"] and listed["arguments"] == {"text": "buy milk"}
        await second.decide(record.id, listed["call_id"], "approve", args_hash=listed["args_hash"])
        for _ in range(200):
            if not second.pending(record.id):
                break
            await asyncio.sleep(0.05)
        assert second.pending(record.id) == []
    finally:
        await second.close()


async def test_with_no_worker_running_the_routes_answer_504_with_a_sentence(
        redis_url: str, prefix: str, tmp_path: Path) -> None:  # noqa: F811
    """Under ``serve --redis`` with no worker: not the client's fault (504: no worker answered), say what to
    check, and that the request stays queued (no Retry-After: sending it again would do it twice)."""
    import httpx

    from llmgine_nb.server import create_app
    from llmgine_nb.store.users import add_user

    store = Store(tmp_path / "shared.db")
    _, token = add_user(store, "ada")
    keys = Keys(prefix, partitions=2)
    app = create_app(store, hub_factory=lambda s: RemoteHub(
        s, RedisTransport(connect_redis(redis_url), keys=keys, store=s), start_timeout=0.3))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as api:
        session_id = (await api.post("/api/sessions", json={})).json()["id"]
        for method, path, body in [("POST", "cancel", None), ("POST", "model", {"model": "scripted"}),
                                   ("POST", "messages", {"text": "hello"})]:
            answer = await api.request(method, f"/api/sessions/{session_id}/{path}", json=body)
            assert answer.status_code == 504, (path, answer.text)
            assert "llmgine-nb worker is running" in answer.json()["error"]
            assert "stays queued" in answer.json()["error"] and "Retry-After" not in answer.headers
        # The turn stays queued (a worker that starts later runs it), so a second message waits its turn.
        assert (await api.post(f"/api/sessions/{session_id}/messages", json={"text": "again"})).status_code == 409

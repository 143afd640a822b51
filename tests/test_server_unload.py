"""Idle engines leave the hub and come back from the store: nothing pending or said is lost."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmgine_nb.llm import ScriptedLLM
from llmgine_nb.server.demo import demo_llm, demo_tools
from llmgine_nb.server.hub import SessionHub
from llmgine_nb.store import Store

ENDS = ("TurnFinished", "TurnFailed", "TurnCancelled")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "hub.db")
    yield store
    store.close()


def hub_over(store: Store, **options) -> SessionHub:
    return SessionHub(store, llm_factory=lambda model: demo_llm(), tools=demo_tools(), **options)


async def events_until(queue: asyncio.Queue[str], kind: str) -> list[dict]:
    seen = []
    while True:
        record = json.loads(await asyncio.wait_for(queue.get(), 10))
        seen.append(record)
        if record["type"].rsplit(".", 1)[-1] == kind:
            return seen


async def turn_over(hub: SessionHub, session_id: str) -> None:
    """Wait for the session's turn to end (``hub.turns`` holds running turns only)."""
    task = hub.turns.get(session_id)
    if task is not None:
        await asyncio.wait_for(task, 10)
    assert not hub.running(session_id) and session_id not in hub.running_sessions()


async def finish(hub: SessionHub, session_id: str, text: str) -> None:
    await hub.send(session_id, text)
    await turn_over(hub, session_id)


async def test_an_lru_cap_unloads_the_least_recently_used_and_a_request_reloads_it(store):
    users_seen: list[int] = []  # user messages the model got in each call

    def reply(messages, tools):
        users_seen.append(sum(1 for m in messages if m.role == "user"))
        return "ok"

    hub = SessionHub(store, llm_factory=lambda model: ScriptedLLM(reply), max_engines=2, idle_unload_s=None)
    try:
        first, second, third = [(await hub.create_session()).id for _ in range(3)]
        assert set(hub.engines) == {second, third}  # the first was least recently used
        await finish(hub, second, "hello second")
        await finish(hub, third, "hello third")
        await finish(hub, first, "hello first")  # reloaded from the store; the oldest idle one goes
        assert set(hub.engines) == {first, third}
        users_seen.clear()
        await finish(hub, second, "again second")
        assert users_seen == [2]  # the reloaded engine sent the model the earlier turn too
        history = [(m.role, m.content) for m in store.messages(second)]
        assert [role for role, _ in history] == ["user", "assistant", "user", "assistant"]
        assert history[0][1] == "hello second" and history[2][1] == "again second"
        assert len(hub.engines) == 2
    finally:
        await hub.close()


async def test_an_idle_timeout_never_unloads_a_session_waiting_for_an_approval(store):
    hub = hub_over(store, idle_unload_s=0.1, max_engines=None)
    try:
        session_id = (await hub.create_session()).id
        queue = hub.streams.subscribe(session_id)
        await hub.send(session_id, "note: buy milk")
        request = (await events_until(queue, "ApprovalRequested"))[-1]
        await asyncio.sleep(0.6)  # several sweeps later
        assert session_id in hub.engines
        assert [item["call_id"] for item in hub.pending(session_id)] == [request["call_id"]]
        await hub.decide(session_id, request["call_id"], "approve", decided_by="alice")
        await events_until(queue, "TurnFinished")
        await turn_over(hub, session_id)
        await asyncio.sleep(0.6)
        assert session_id not in hub.engines  # idle now: unloaded
        # Someone still watches: the stream stays numbered and the reloaded session's events reach them.
        last = hub.streams.last_seq(session_id)
        await hub.send(session_id, "hello again")
        events = await events_until(queue, "TurnFinished")
        assert [e["seq"] for e in events] == list(range(last + 1, last + 1 + len(events)))
        numbers = [seq for seq, _ in hub.streams.replay(session_id)]
        assert numbers == list(range(1, len(numbers) + 1))
        roles = [m.role for m in store.messages(session_id)]
        assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    finally:
        await hub.close()


async def test_an_unwatched_session_reloads_with_its_stream_numbers_going_on(store):
    hub = hub_over(store, idle_unload_s=None, max_engines=None)
    try:
        session_id = (await hub.create_session()).id
        await finish(hub, session_id, "one")
        before = hub.streams.last_seq(session_id)
        assert await hub.unload(session_id)
        assert session_id not in hub.engines
        await finish(hub, session_id, "two")
        numbers = [seq for seq, _ in hub.streams.replay(session_id)]
        assert numbers == list(range(1, len(numbers) + 1)) and numbers[-1] > before
    finally:
        await hub.close()


async def test_a_switched_model_is_the_model_of_the_reloaded_engine(store):
    asked_for: list[str | None] = []

    def factory(model):
        asked_for.append(model)
        return ScriptedLLM(["ok"])

    hub = SessionHub(store, llm_factory=factory, idle_unload_s=None)
    try:
        session = (await hub.create_session(model="scripted")).id
        assert await hub.switch_model(session, "openai/gpt-4o-mini") == "openai/gpt-4o-mini"
        assert store.get_session(session).model == "openai/gpt-4o-mini"  # what `sessions` lists
        assert await hub.unload(session)
        asked_for.clear()
        await finish(hub, session, "hello again")  # reloaded from the store
        assert asked_for == ["openai/gpt-4o-mini"]
    finally:
        await hub.close()


async def test_a_finished_turn_leaves_the_hub_so_a_send_counts_running_turns_only(store):
    """A send counts its user's running turns (the 429 limit): over those, not every session that ever ran one."""
    hub = hub_over(store, max_engines=None)
    try:
        ids = [(await hub.create_session()).id for _ in range(3)]
        for session_id in ids:
            await finish(hub, session_id, f"hello {session_id}")
        await asyncio.sleep(0)  # the last turn's done callback
        assert hub.turns == {} and hub.running_sessions() == []
    finally:
        await hub.close()

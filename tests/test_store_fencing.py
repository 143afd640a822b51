"""Fencing tokens in the store: a writer whose token is older than one that wrote the session is refused.

An engine worker frozen past its partition's lease must not write a session its
partition's new holder now writes (issue 17, ``store/fencing.py``).  On a SQLite
file and on PostgreSQL (``db_target``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmgine_nb.chat import ChatMessage, ToolCall
from llmgine_nb.messages import CommandFailed, Event
from llmgine_nb.store import Fenced, LLMCall, Store, StoreError
from llmgine_nb.store.streams import append_numbered, number_and_append


class Noted(Event):
    text: str = ""


class Tokens:
    """A writer's fencing (what an engine worker gives its store): one token for every session."""

    def __init__(self, token: int | None) -> None:
        self.current = token
        self.refusals: list[Fenced] = []

    def token(self, session_id: str) -> int | None:
        return self.current

    def refused(self, error: Fenced) -> None:
        self.refusals.append(error)


@pytest.fixture
def stores(db_target: str | Path):  # type: ignore[no-untyped-def]
    """Two processes' stores on one database: an old holder (token 1) and a new one (token 2)."""
    old, new = Store(db_target), Store(db_target)
    old.fencing, new.fencing = Tokens(1), Tokens(2)
    yield old, new
    old.close()
    new.close()


def fence_of(store: Store, session_id: str) -> int:
    return int(store.database.read("SELECT fence FROM sessions WHERE id = ?", (session_id,))[0][0])


def test_an_older_token_is_refused_and_nothing_of_its_write_lands(stores) -> None:  # type: ignore[no-untyped-def]
    old, new = stores
    session = old.create_session()
    old.append_message(session.id, ChatMessage(role="user", content="hi"))
    assert fence_of(old, session.id) == 1

    new.claim_fence(session.id)  # the new holder, before it reads the session
    assert fence_of(new, session.id) == 2
    reply = ChatMessage(role="assistant", content="a stale reply", tool_calls=[ToolCall.from_raw("c1", "t", "{}")])
    call = LLMCall(model="m", session_id=session.id, input_tokens=1, output_tokens=1)
    with pytest.raises(Fenced) as refused:
        old.record_turn(session.id, [reply], llm_calls=[call], events=[Noted(session_id=session.id, text="x")])
    assert isinstance(refused.value, StoreError)
    assert (refused.value.session_id, refused.value.token, refused.value.recorded) == (session.id, 1, 2)
    assert "newer holder" in str(refused.value) and "nothing of it stored" in str(refused.value)
    assert old.fencing.refusals == [refused.value]  # type: ignore[union-attr]

    # Nothing of the refused transaction is there: no message, no tool call, no model call, no event.
    assert [m.content for m in new.messages(session.id)] == ["hi"]
    assert new.tool_calls(session.id) == [] and new.llm_calls(session.id) == []
    assert new.events(session.id) == []
    # Every other kind of write of the session is refused too.
    refused_writes = [
        lambda: old.append_message(session.id, ChatMessage(role="assistant", content="again")),
        lambda: old.set_engine_state(session.id, {"step": 9}),
        lambda: old.log_events([Noted(session_id=session.id)]),
        lambda: number_and_append(old, [(session.id, Noted(session_id=session.id), "{}")]),
        lambda: append_numbered(old, [(session.id, 1, Noted(session_id=session.id), "{}")]),
        lambda: old.update_message(new.messages(session.id)[0].id, content="changed"),
        lambda: old.record_llm_call(call),
    ]
    for write in refused_writes:
        with pytest.raises(Fenced):
            write()
    assert [m.content for m in new.messages(session.id)] == ["hi"]
    assert new.events(session.id) == [] and new.llm_calls(session.id) == []
    assert new.get_session(session.id).engine_state == {}
    assert fence_of(new, session.id) == 2


def test_an_equal_or_higher_token_writes_and_a_higher_one_is_recorded(stores) -> None:  # type: ignore[no-untyped-def]
    old, new = stores
    session = new.create_session()
    assert fence_of(new, session.id) == 2, "a session made by a fenced writer starts with its token"
    new.append_message(session.id, ChatMessage(role="user", content="one"))
    new.fencing.current = 5  # type: ignore[union-attr]
    new.append_message(session.id, ChatMessage(role="assistant", content="two"))
    assert fence_of(new, session.id) == 5
    new.record_turn(session.id, [ChatMessage(role="user", content="three")], events=[Noted(session_id=session.id)])
    assert [m.content for m in old.messages(session.id)] == ["one", "two", "three"]
    old.fencing.current = 4  # type: ignore[union-attr]
    with pytest.raises(Fenced):
        old.claim_fence(session.id)


def test_without_a_token_the_store_writes_as_before(stores, db_target) -> None:  # type: ignore[no-untyped-def]
    old, new = stores
    session = new.create_session()
    new.fencing.current = 7  # type: ignore[union-attr]
    new.claim_fence(session.id)
    plain = Store(db_target)  # a notebook, the server: no fencing at all
    try:
        plain.append_message(session.id, ChatMessage(role="user", content="from a notebook"))
        plain.set_engine_state(session.id, {"a": 1})
        old.fencing.current = None  # type: ignore[union-attr]
        old.append_message(session.id, ChatMessage(role="assistant", content="no token for this session"))
        assert [m.content for m in plain.messages(session.id)] == ["from a notebook", "no token for this session"]
        assert fence_of(plain, session.id) == 7, "unfenced writes leave the recorded token alone"
        plain.claim_fence(session.id)  # nothing to claim without fencing
    finally:
        plain.close()


def test_a_session_not_stored_yet_is_claimed_by_its_first_write(stores) -> None:  # type: ignore[no-untyped-def]
    old, new = stores
    new.claim_fence("not-yet")  # the new holder opens a session nobody created yet: nothing to protect
    session = new.create_session(id="not-yet")
    assert fence_of(new, session.id) == 2
    with pytest.raises(Fenced):
        old.append_message(session.id, ChatMessage(role="user", content="late"))


async def test_a_stream_batch_with_one_fenced_session_still_writes_and_shows_the_others(stores) -> None:  # type: ignore[no-untyped-def]
    """The server's event writer puts several sessions' events in one transaction: a session taken over
    by a newer holder loses its own events there, not those of the sessions still held."""
    from llmgine_nb.server.stream import SessionStreams

    old, new = stores
    lost, kept = old.create_session().id, old.create_session().id
    old.append_message(lost, ChatMessage(role="user", content="hi"))
    new.claim_fence(lost)  # only this one changed hands
    old.fencing = PerSession({lost: 1, kept: 1})
    streams = SessionStreams(old)
    streams.track(lost)
    streams.track(kept)
    watching = streams.subscribe(kept)
    for session_id in (lost, kept, lost, kept):  # interleaved: one batch, one transaction at first
        streams._on_event(Noted(session_id=session_id, text=session_id[:4]))
    streams.flush()
    assert [seq for seq, _ in new_numbered(new, kept)] == [1, 2]
    assert new_numbered(new, lost) == []
    assert [json.loads(watching.get_nowait())["seq"] for _ in range(2)] == [1, 2] and watching.empty()
    assert (streams.fenced_writes, streams.failed_writes) == (1, 0)


class PerSession(Tokens):
    def __init__(self, tokens: dict[str, int]) -> None:
        super().__init__(None)
        self.tokens = tokens

    def token(self, session_id: str) -> int | None:
        return self.tokens.get(session_id)


def new_numbered(store: Store, session_id: str) -> list[tuple[int, str]]:
    from llmgine_nb.store.streams import numbered_events

    return numbered_events(store, session_id)


async def test_a_tool_does_not_start_once_its_session_has_a_newer_holder(stores) -> None:  # type: ignore[no-untyped-def]
    """The journal records a tool's start before the tool runs; refused (the session changed hands while
    the turn ran), the refusal reaches the tool manager and the tool does not run (issue 17: at most once)."""
    from llmgine_nb import MessageBus
    from llmgine_nb.engine import ChatEngine
    from llmgine_nb.llm import ScriptedLLM
    from llmgine_nb.llm.scripted import ScriptedReply, call
    from llmgine_nb.tools import ToolImpactAssessed, ToolManager, tool

    old, new = stores
    session = old.create_session(model="scripted")
    ran: list[str] = []

    @tool(risk="read")
    def record(label: str) -> str:
        """Record an effect.

        Args:
            label: what happened
        """
        ran.append(label)
        return "recorded"

    bus = MessageBus()
    engine = await ChatEngine(bus, store=old, session_id=session.id, tools=ToolManager([record], bus=bus),
                              llm=ScriptedLLM([ScriptedReply(tool_calls=[call("record", label="x")]), "done"])).start()
    # Another worker takes the session over just before the tool would start.
    bus.subscribe(ToolImpactAssessed, lambda event: new.claim_fence(session.id), inline=True)
    with pytest.raises(CommandFailed, match="Fenced"):
        (await engine.send("go")).unwrap()
    assert ran == []  # the tool never ran
    assert [c.status for c in new.tool_calls(session.id)] == ["requested"]
    await engine.close()

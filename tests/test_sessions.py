"""Sessions: scoping by ContextVar, scoped handlers, nesting, and start/end events."""

from __future__ import annotations

import asyncio

from llmgine_nb import Command, Event, MessageBus, SessionEnded, SessionStarted, current_session_id


class Note(Event):
    text: str = ""


class Ask(Command):
    pass


async def test_messages_created_inside_carry_the_session_id():
    bus = MessageBus()
    assert Note().session_id is None
    async with bus.session("outer") as s:
        assert current_session_id() == s.id
        assert Note().session_id == s.id
    assert Note().session_id is None


async def test_start_and_end_are_events():
    bus = MessageBus()
    seen = []
    bus.subscribe(SessionStarted, seen.append)
    bus.subscribe(SessionEnded, seen.append)
    async with bus.session("chat") as s:
        pass
    assert [type(e).__name__ for e in seen] == ["SessionStarted", "SessionEnded"]
    assert all(e.session_id == s.id and e.name == "chat" for e in seen)


async def test_concurrent_tasks_keep_their_own_session():
    bus = MessageBus()
    seen: dict[str, list[str | None]] = {}

    async def worker(name: str) -> str:
        async with bus.session(name) as s:
            ids = []
            for _ in range(5):
                await asyncio.sleep(0)  # interleave with the other task
                ids.append(Note().session_id)
            seen[s.id] = ids
            return s.id

    a, b = await asyncio.gather(worker("a"), worker("b"))
    assert a != b
    assert seen[a] == [a] * 5 and seen[b] == [b] * 5


async def test_session_handlers_see_only_their_session_and_go_away_on_close():
    bus = MessageBus()
    global_seen: list[str] = []
    bus.subscribe(Note, lambda e: global_seen.append(e.text))
    scoped_seen: list[str] = []

    async with bus.session("one") as one:
        one.subscribe(Note, lambda e: scoped_seen.append(e.text))
        await bus.publish(Note(text="in one"))
        async with bus.session("two"):
            await bus.publish(Note(text="nested in one"))
        await bus.publish(Note(text="outside", session_id=None))
    await bus.publish(Note(text="after close", session_id=one.id))

    assert scoped_seen == ["in one", "nested in one"]
    assert global_seen == ["in one", "nested in one", "outside", "after close"]
    assert not [reg for reg in bus.registrations() if reg.session_id is not None]


async def test_sibling_sessions_do_not_see_each_other():
    bus = MessageBus()
    seen = {"a": [], "b": []}

    async def run(name):
        async with bus.session(name) as s:
            s.subscribe(Note, lambda e: seen[name].append(e.text))
            await asyncio.sleep(0)
            await bus.publish(Note(text=name))
            await asyncio.sleep(0)

    await asyncio.gather(run("a"), run("b"))
    assert seen == {"a": ["a"], "b": ["b"]}


async def test_session_command_handler_wins_inside_and_is_removed_after():
    bus = MessageBus()
    bus.register_command_handler(Ask, lambda c: "global")
    async with bus.session() as s:
        s.register_command_handler(Ask, lambda c: "scoped")
        assert (await bus.execute(Ask())).result == "scoped"
        async with bus.session():
            assert (await bus.execute(Ask())).result == "scoped"  # nested sessions inherit
    assert (await bus.execute(Ask())).result == "global"


async def test_nested_sessions_record_their_parent():
    bus = MessageBus()
    started = []
    bus.subscribe(SessionStarted, started.append)
    async with bus.session("outer") as outer:
        async with bus.session("inner") as inner:
            assert current_session_id() == inner.id
        assert current_session_id() == outer.id
    assert current_session_id() is None
    assert started[1].parent_id == outer.id and started[0].parent_id is None


def test_sync_form_of_a_session():
    bus = MessageBus()
    seen = []
    bus.subscribe(Event, lambda e: seen.append((type(e).__name__, e.session_id)))
    with bus.session("sync") as s:
        assert current_session_id() == s.id
        bus.publish_sync(Note(text="hello"))
        s.subscribe(Note, lambda e: seen.append(("scoped", e.text)))
        bus.publish_sync(Note(text="again"))
    assert current_session_id() is None
    assert seen == [
        ("SessionStarted", s.id),
        ("Note", s.id),
        ("Note", s.id),
        ("scoped", "again"),
        ("SessionEnded", s.id),
    ]
    bus.close()


async def test_resuming_a_known_session_id():
    bus = MessageBus()
    async with bus.session(session_id="persisted-123") as s:
        assert s.id == "persisted-123" and Note().session_id == "persisted-123"

"""The message bus: commands, events, failure isolation, nesting, middleware."""

from __future__ import annotations

import asyncio
import logging

import pytest

from llmgine_nb import Command, CommandResult, DuplicateHandlerError, Event, HandlerFailed, MessageBus
from llmgine_nb.middleware import CommandTimer, LoggingMiddleware


class Add(Command):
    a: int
    b: int


class SpecialAdd(Add):
    pass


class Unhandled(Command):
    pass


class Happened(Event):
    what: str = ""


class HappenedLoudly(Happened):
    volume: int = 11


# -- commands ---------------------------------------------------------------


async def test_execute_runs_the_one_handler_sync_or_async():
    bus = MessageBus()
    bus.register_command_handler(Add, lambda c: c.a + c.b)
    result = await bus.execute(Add(a=2, b=3))
    assert result.success and result.result == 5
    assert result.command_type.endswith("Add")

    bus2 = MessageBus()

    async def add(c: Add) -> int:
        await asyncio.sleep(0)
        return c.a * 10 + c.b

    bus2.register_command_handler(Add, add)
    assert (await bus2.execute(Add(a=1, b=2))).result == 12


async def test_a_handler_may_return_its_own_command_result():
    bus = MessageBus()
    bus.register_command_handler(Add, lambda c: CommandResult(command_id=c.id, success=False, error="refused"))
    result = await bus.execute(Add(a=1, b=1))
    assert not result.success and result.error == "refused"


def test_second_handler_for_a_command_type_is_an_error():
    bus = MessageBus()
    reg = bus.register_command_handler(Add, lambda c: 1)
    with pytest.raises(DuplicateHandlerError, match="already has a handler"):
        bus.register_command_handler(Add, lambda c: 2)
    reg.unregister()
    reg.unregister()  # idempotent
    bus.register_command_handler(Add, lambda c: 2)


def test_registering_a_non_command_is_a_type_error():
    bus = MessageBus()
    with pytest.raises(TypeError, match="not a Command"):
        bus.register_command_handler(Happened, lambda c: 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an Event"):
        bus.subscribe(int, lambda e: 1)  # type: ignore[arg-type]


async def test_no_handler_gives_a_failed_result_with_a_clear_message():
    result = await MessageBus().execute(Unhandled())
    assert not result.success
    assert "no handler is registered for Unhandled" in result.error
    assert "register_command_handler" in result.error


async def test_subclass_command_falls_back_to_the_base_handler():
    bus = MessageBus()
    bus.register_command_handler(Add, lambda c: "base")
    assert (await bus.execute(SpecialAdd(a=1, b=1))).result == "base"
    bus.register_command_handler(SpecialAdd, lambda c: "special")
    assert (await bus.execute(SpecialAdd(a=1, b=1))).result == "special"


async def test_handler_exception_becomes_a_failed_result_and_the_bus_goes_on():
    bus = MessageBus()

    def explode(c: Add) -> int:
        raise ValueError(f"cannot add {c.a}")

    bus.register_command_handler(Add, explode)
    result = await bus.execute(Add(a=7, b=0))
    assert not result.success
    assert result.error == "ValueError: cannot add 7"
    assert "explode" in result.traceback and "ValueError" in result.traceback
    bus.register_command_handler(Unhandled, lambda c: "still working")
    assert (await bus.execute(Unhandled())).result == "still working"


def test_decorator_forms():
    bus = MessageBus()
    seen = []

    @bus.command_handler(Add)
    def add(c):
        return c.a + c.b

    @bus.on(Happened, priority=3)
    def record(e):
        seen.append(e.what)

    assert bus.execute_sync(Add(a=1, b=1)).result == 2
    bus.publish_sync(Happened(what="x"))
    assert seen == ["x"]
    bus.close()


# -- events -------------------------------------------------------------------


async def test_publish_reaches_subscribers_of_the_class_and_its_bases():
    bus = MessageBus()
    seen: list[str] = []
    bus.subscribe(Event, lambda e: seen.append(f"event:{type(e).__name__}"))
    bus.subscribe(Happened, lambda e: seen.append(f"happened:{type(e).__name__}"))
    bus.subscribe(HappenedLoudly, lambda e: seen.append(f"loud:{type(e).__name__}"))

    await bus.publish(Happened())
    await bus.publish(HappenedLoudly())
    assert sorted(seen) == sorted(
        ["event:Happened", "happened:Happened", "event:HappenedLoudly", "happened:HappenedLoudly", "loud:HappenedLoudly"]
    )


class HappenedQuietly(Happened):
    pass


async def test_a_subscriber_can_exclude_subclasses_and_has_subscribers_says_who_listens():
    bus = MessageBus()
    assert not bus.has_subscribers(Happened)
    seen: list[Event] = []
    everything_but_loud = bus.subscribe(Event, seen.append, exclude=(HappenedLoudly,))
    await bus.publish(Happened(what="a"))
    await bus.publish(HappenedLoudly(what="b"))
    await bus.publish(HappenedQuietly(what="c"))
    assert [e.what for e in seen] == ["a", "c"]
    assert bus.has_subscribers(Happened) and not bus.has_subscribers(HappenedLoudly)
    loud = bus.subscribe(HappenedLoudly, seen.append, session_id="s1")  # a session's subscriber counts there
    assert bus.has_subscribers(HappenedLoudly, session_id="s1")
    assert not bus.has_subscribers(HappenedLoudly) and not bus.has_subscribers(HappenedLoudly, session_id="s2")
    async with bus.session(session_id="s1"):
        assert bus.has_subscribers(HappenedLoudly)  # by default: the caller's current session
    loud.unregister()
    everything_but_loud.unregister()
    assert not bus.has_subscribers(Happened)

    async def passthrough(event, deliver):
        await deliver(event)

    bus.add_event_middleware(passthrough)
    assert bus.has_subscribers(HappenedLoudly)  # middleware sees every event
    with pytest.raises(TypeError, match="exclude"):
        bus.subscribe(Event, seen.append, exclude=(int,))


async def test_a_lone_async_subscriber_gets_the_same_isolation_and_follows_changes():
    bus = MessageBus()
    failures: list[HandlerFailed] = []
    got: list[str] = []

    async def lone(event: Happened) -> None:  # the only subscriber: delivered on the short path
        if event.what == "boom":
            raise ValueError("lone handler broke")
        got.append(f"lone:{event.what}")

    bus.subscribe(HandlerFailed, failures.append)
    handle = bus.subscribe(Happened, lone)
    await bus.publish(Happened(what="a"))
    await bus.publish(Happened(what="boom"))  # reported, not raised
    assert got == ["lone:a"] and "lone handler broke" in failures[0].error
    second = bus.subscribe(Happened, lambda e: got.append(f"second:{e.what}"))
    await bus.publish(Happened(what="b"))
    second.unregister()
    await bus.publish(Happened(what="c"))
    handle.unregister()
    await bus.publish(Happened(what="d"))
    assert got == ["lone:a", "lone:b", "second:b", "lone:c"]


async def test_priority_order_then_subscription_order_sync_and_async():
    bus = MessageBus()
    order: list[str] = []

    async def late(e):
        order.append("low")

    bus.subscribe(Happened, late, priority=-5)
    bus.subscribe(Happened, lambda e: order.append("default-1"))

    async def first(e):
        await asyncio.sleep(0)
        order.append("high")

    bus.subscribe(Happened, first, priority=10)
    bus.subscribe(Event, lambda e: order.append("default-2 (base class)"))
    await bus.publish(Happened())
    assert order == ["high", "default-1", "default-2 (base class)", "low"]


async def test_unsubscribe_handle_removes_the_subscriber():
    bus = MessageBus()
    seen = []
    reg = bus.subscribe(Happened, seen.append)
    await bus.publish(Happened())
    reg.unregister()
    await bus.publish(Happened())
    assert len(seen) == 1
    assert not reg.active


async def test_a_failing_subscriber_does_not_stop_the_others_and_is_reported():
    bus = MessageBus()
    seen: list[str] = []
    failures: list[HandlerFailed] = []

    def broken(e):
        raise RuntimeError("subscriber broke")

    bus.subscribe(Happened, broken, priority=5)
    bus.subscribe(Happened, lambda e: seen.append(e.what))
    bus.subscribe(HandlerFailed, failures.append)

    event = Happened(what="after the failure")
    await bus.publish(event)
    assert seen == ["after the failure"]
    assert len(failures) == 1
    failure = failures[0]
    assert failure.event_id == event.id
    assert failure.error == "RuntimeError: subscriber broke"
    assert "broken" in failure.handler and "RuntimeError" in failure.traceback


async def test_a_failing_handler_failed_subscriber_does_not_loop(caplog):
    bus = MessageBus()
    calls = []

    def broken(e):
        calls.append(type(e).__name__)
        raise RuntimeError("always")

    bus.subscribe(Event, broken)  # sees Happened *and* HandlerFailed
    with caplog.at_level(logging.ERROR, logger="llmgine_nb.bus"):
        await asyncio.wait_for(bus.publish(Happened()), timeout=2)
    assert calls == ["Happened", "HandlerFailed"]
    assert "not reported again" in caplog.text


async def test_handlers_may_publish_and_execute_from_inside_handlers_without_deadlock():
    """The original llmgine waited for the whole queue inside publish and hung here."""
    bus = MessageBus()
    trail: list[str] = []

    async def on_add(c: Add) -> int:
        trail.append("command")
        await bus.publish(Happened(what="added"))
        return c.a + c.b

    async def on_happened(e: Happened) -> None:
        trail.append(f"event:{e.what}")
        if e.what == "added":
            await bus.publish(HappenedLoudly(what="nested"))
            inner = await bus.execute(Unhandled())
            trail.append(f"inner:{inner.success}")

    bus.register_command_handler(Add, on_add)
    bus.subscribe(Happened, on_happened)
    result = await asyncio.wait_for(bus.execute(Add(a=1, b=2)), timeout=2)
    assert result.result == 3
    assert trail == ["command", "event:added", "event:nested", "inner:False"]


# -- middleware --------------------------------------------------------------------


async def test_command_middleware_chain_runs_in_order_and_can_be_removed():
    bus = MessageBus()
    trail: list[str] = []

    def make(name):
        async def mw(command, call_next):
            trail.append(f"{name}>")
            result = await call_next(command)
            trail.append(f"<{name}")
            return result

        return mw

    outer = bus.add_command_middleware(make("outer"))
    bus.add_command_middleware(make("inner"))
    bus.register_command_handler(Add, lambda c: trail.append("handler") or 0)
    await bus.execute(Add(a=0, b=0))
    assert trail == ["outer>", "inner>", "handler", "<inner", "<outer"]
    trail.clear()
    outer.unregister()
    await bus.execute(Add(a=0, b=0))
    assert trail == ["inner>", "handler", "<inner"]


async def test_middleware_can_short_circuit_and_must_be_async():
    bus = MessageBus()

    async def deny_all(command, call_next):
        return CommandResult(command_id=command.id, success=False, error="blocked by policy")

    bus.add_command_middleware(deny_all)
    bus.register_command_handler(Add, lambda c: 1)
    assert (await bus.execute(Add(a=1, b=1))).error == "blocked by policy"
    with pytest.raises(TypeError, match="async"):
        bus.add_command_middleware(lambda c, n: n(c))


async def test_event_middleware_wraps_delivery():
    bus = MessageBus()
    trail = []

    async def stamp(event, call_next):
        # Messages are immutable: middleware passes on a copy with more metadata.
        with pytest.raises(TypeError, match="immutable"):
            event.metadata["stamped"] = True
        trail.append("before")
        await call_next(event.model_copy(update={"metadata": {**event.metadata, "stamped": True}}))
        trail.append("after")

    bus.add_event_middleware(stamp)
    bus.subscribe(Happened, lambda e: trail.append(f"handler stamped={e.metadata['stamped']}"))
    await bus.publish(Happened())
    assert trail == ["before", "handler stamped=True", "after"]


async def test_timing_and_logging_middleware(caplog):
    bus = MessageBus()
    timer = CommandTimer()
    bus.add_command_middleware(timer)
    bus.add_command_middleware(LoggingMiddleware(level=logging.INFO))
    bus.add_event_middleware(LoggingMiddleware(level=logging.INFO))

    async def slow(c):
        await asyncio.sleep(0.01)
        raise ValueError("nope")

    bus.register_command_handler(Add, slow)
    with caplog.at_level(logging.INFO, logger="llmgine_nb.messages"):
        await bus.execute(Add(a=1, b=1))
        await bus.publish(Happened())
    assert len(timer.durations["Add"]) == 1 and timer.durations["Add"][0] >= 0.01
    assert "Add" in caplog.text and "failed: ValueError: nope" in caplog.text
    assert "Happened" in caplog.text


@pytest.mark.parametrize("how", ["inline", "async", "lone async", "thread"])
async def test_a_subscriber_that_stops_publishing_stops_the_publisher_and_the_rest(how: str) -> None:
    """``StopPublishing`` (what must come first was refused) reaches the publisher, not ``HandlerFailed``;
    the subscribers after it are not called.  Any other failure is still reported and passed over."""
    from llmgine_nb.messages import StopPublishing

    class Refused(StopPublishing):
        pass

    bus = MessageBus()
    failures: list[HandlerFailed] = []
    later: list[str] = []
    bus.subscribe(HandlerFailed, failures.append, inline=True)

    def refuse(event: Happened) -> None:
        if event.what == "refused":
            raise Refused("the write that had to come first was refused")
        if event.what == "broken":
            raise ValueError("an ordinary failure")

    async def refuse_async(event: Happened) -> None:
        refuse(event)

    if how == "inline":
        bus.subscribe(Happened, refuse, priority=10, inline=True)
    elif how == "thread":
        bus.subscribe(Happened, refuse, priority=10)
    else:
        bus.subscribe(Happened, refuse_async, priority=10)
    if how != "lone async":
        bus.subscribe(Happened, lambda e: later.append(e.what), inline=True)
    if how == "thread":  # a second thread handler: called in the same batch on the worker thread
        bus.subscribe(Happened, lambda e: later.append(f"thread {e.what}"), priority=5)
    with pytest.raises(Refused):
        await bus.publish(Happened(what="refused"))
    assert later == [] and failures == []
    await bus.publish(Happened(what="broken"))  # reported, and the others still get it
    assert [f.error for f in failures] == ["ValueError: an ordinary failure"]
    assert later == {"lone async": [], "thread": ["thread broken", "broken"]}.get(how, ["broken"])

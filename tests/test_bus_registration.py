"""The bus as a notebook user meets it: re-run cells, results without ids, an overridden publish."""

from __future__ import annotations

import textwrap

import pytest

from llmgine_nb import Command, CommandResult, DuplicateHandlerError, Event, HandlerFailed, MessageBus


class Ping(Command):
    n: int = 0


class Pong(Event):
    n: int = 0


def run_cell(source: str, namespace: dict) -> None:
    """Run ``source`` as a notebook cell would: top-level code in ``__main__``'s namespace."""
    exec(compile(textwrap.dedent(source), "<cell>", "exec"), namespace)


def new_notebook(bus: MessageBus) -> dict:
    return {"__name__": "__main__", "bus": bus, "Ping": Ping, "Pong": Pong, "seen": []}


# -- results without the command's id ------------------------------------------------


async def test_a_handler_may_return_a_result_without_the_command_id_and_the_bus_fills_it_in():
    bus = MessageBus()

    def handler(command: Ping) -> CommandResult:
        return CommandResult(success=True, result=command.n * 2)  # as llmgine's handlers are written

    bus.register_command_handler(Ping, handler)
    command = Ping(n=21, session_id="s-1")
    result = await bus.execute(command)
    assert result.success and result.result == 42
    assert result.command_id == command.id
    assert result.command_type == Ping.type_name
    assert result.session_id == "s-1"
    assert CommandResult.from_json(result.to_json()).command_id == command.id


async def test_a_result_that_names_its_command_is_returned_as_it_is():
    bus = MessageBus()
    own = CommandResult(command_id="given", command_type="mine", success=False, error="refused")
    bus.register_command_handler(Ping, lambda c: own)
    assert await bus.execute(Ping()) is own


# -- re-running a cell -----------------------------------------------------------------


CELL = """
def on_pong(event):
    seen.append(("v1", event.n))

bus.subscribe(Pong, on_pong)
"""


async def test_rerunning_a_cell_that_subscribes_replaces_the_subscription():
    bus = MessageBus()
    nb = new_notebook(bus)
    run_cell(CELL, nb)
    run_cell(CELL, nb)  # the same cell again: a new function object, the same handler
    await bus.publish(Pong(n=1))
    assert nb["seen"] == [("v1", 1)]

    run_cell(CELL.replace('"v1"', '"v2"'), nb)  # the cell edited and run again
    await bus.publish(Pong(n=2))
    assert nb["seen"] == [("v1", 1), ("v2", 2)]
    assert len([r for r in bus.registrations() if r.active]) == 1


async def test_rerunning_a_cell_in_a_session_replaces_only_within_that_session():
    bus = MessageBus()
    nb = new_notebook(bus)
    cell = """
    def on_pong(event):
        seen.append((event.session_id, event.n))

    bus.subscribe(Pong, on_pong, session_id=SESSION)
    """
    for session in ("a", "a", "b"):
        nb["SESSION"] = session
        run_cell(cell, nb)
    await bus.publish(Pong(n=1, session_id="a"))
    await bus.publish(Pong(n=2, session_id="b"))
    assert nb["seen"] == [("a", 1), ("b", 2)]


async def test_rerunning_a_cell_that_registers_a_command_handler_replaces_it():
    bus = MessageBus()
    nb = new_notebook(bus)
    cell = """
    def on_ping(command):
        return command.n + OFFSET

    bus.register_command_handler(Ping, on_ping)
    """
    nb["OFFSET"] = 1
    run_cell(cell, nb)
    nb["OFFSET"] = 100
    run_cell(cell, nb)  # no DuplicateHandlerError: it is the same function
    assert (await bus.execute(Ping(n=1))).result == 101

    def another(command: Ping) -> int:
        return 0

    with pytest.raises(DuplicateHandlerError, match="already has a handler .*on_ping.*a different one is refused"):
        bus.register_command_handler(Ping, another)
    assert (await bus.execute(Ping(n=1))).result == 101


class Recorder:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_pong(self, event: Pong) -> None:
        self.seen.append(event.n)


async def test_two_observers_of_one_class_stay_two_and_one_observer_is_replaced():
    bus = MessageBus()
    first, second = Recorder(), Recorder()
    bus.subscribe(Pong, first.on_pong)
    bus.subscribe(Pong, second.on_pong)
    old = bus.subscribe(Pong, first.on_pong)  # the same instance again: replaced, not doubled
    await bus.publish(Pong(n=7))
    assert first.seen == [7] and second.seen == [7]
    assert old.active and len(bus.registrations()) == 2


async def test_different_lambdas_are_different_handlers_and_an_unchanged_lambda_is_the_same():
    bus = MessageBus()
    seen: list[str] = []
    bus.subscribe(Pong, lambda e: seen.append("one"))
    bus.subscribe(Pong, lambda e: seen.append("two"))
    nb = new_notebook(bus)
    lambda_cell = "bus.subscribe(Pong, lambda e: seen.append('cell'))"
    run_cell(lambda_cell, nb)
    run_cell(lambda_cell, nb)
    nb["seen"] = seen
    await bus.publish(Pong())
    assert sorted(seen) == ["cell", "one", "two"] and len(bus.registrations()) == 3
    with pytest.raises(DuplicateHandlerError):
        bus.register_command_handler(Ping, lambda c: 1)
        bus.register_command_handler(Ping, lambda c: 2)


async def test_the_replaced_registration_is_inactive_and_unregistering_it_leaves_the_new_one():
    bus = MessageBus()
    nb = new_notebook(bus)
    run_cell(CELL, nb)
    first = [r for r in bus.registrations()][0]
    run_cell(CELL, nb)
    assert not first.active
    first.unregister()  # harmless: it was already replaced
    await bus.publish(Pong(n=3))
    assert nb["seen"] == [("v1", 3)]


# -- publish is an ordinary method --------------------------------------------------------


class CountingBus(MessageBus):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[str] = []

    async def publish(self, event: Event) -> None:
        self.published.append(type(event).__name__)
        await super().publish(event)


async def test_a_subclass_that_overrides_publish_is_called_for_every_event():
    bus = CountingBus()
    seen: list[int] = []
    bus.subscribe(Pong, lambda e: seen.append(e.n))

    def broken(event: Pong) -> None:
        raise RuntimeError("no")

    bus.subscribe(Pong, broken)
    async with bus.session("s"):
        await bus.publish(Pong(n=1))
    assert seen == [1]
    # The session's start and end, the event, and the failure report all went through the override.
    assert bus.published == ["SessionStarted", "Pong", "HandlerFailed", "SessionEnded"]
    assert HandlerFailed.__name__ in bus.published


def test_an_overridden_publish_is_called_by_publish_sync_too():
    bus = CountingBus()
    try:
        bus.publish_sync(Pong(n=1))
    finally:
        bus.close()
    assert bus.published == ["Pong"]

"""Bus throughput: publish and execute, each against calling the handler directly."""

from __future__ import annotations

import asyncio
import time

from _common import Figure

from llmgine_nb import Command, CommandResult, Event, MessageBus

N = 200_000
ROUNDS = 5


class Tick(Event):
    n: int = 0


class Nudge(Command):
    n: int = 0


def _rate(run_once, count: int) -> float:
    """Best messages per second over several rounds of ``count`` messages."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        asyncio.run(run_once())
        best = min(best, time.perf_counter() - start)
    return count / best


def bench_bus_publish() -> Figure:
    bus = MessageBus()
    received = [0]

    async def handler(event: Tick) -> None:
        received[0] += 1

    bus.subscribe(Tick, handler)
    events = [Tick(n=i) for i in range(N)]  # built once: we time delivery, not pydantic

    async def through_bus():
        publish = bus.publish
        for event in events:
            await publish(event)

    async def direct():
        for event in events:
            await handler(event)

    baseline = _rate(direct, N)
    value = _rate(through_bus, N)
    assert received[0] == 2 * ROUNDS * N, "every event must reach the handler"
    ratio = value / baseline
    return Figure(
        "bus_publish",
        value,
        baseline,
        "events/s",
        "ratio >= 0.4 and >= 100,000 events/s",
        ok=ratio >= 0.4 and value >= 100_000,
    )


def _execute_rates(handler) -> tuple[float, float]:
    """Commands per second through ``execute`` and by calling ``handler`` directly."""
    bus = MessageBus()
    bus.register_command_handler(Nudge, handler)
    commands = [Nudge(n=i) for i in range(N // 4)]

    async def through_bus():
        execute = bus.execute
        for command in commands:
            await execute(command)

    async def direct():
        for command in commands:
            await handler(command)

    return _rate(through_bus, len(commands)), _rate(direct, len(commands))


def bench_bus_execute() -> Figure:
    async def handler(command: Nudge) -> int:
        return command.n

    value, baseline = _execute_rates(handler)
    return Figure("bus_execute", value, baseline, "commands/s", "ratio >= 0.4", ok=value / baseline >= 0.4)


def bench_bus_execute_result() -> Figure:
    """The same, with a handler that builds its own ``CommandResult``, as llmgine handlers do.

    ``bus_execute`` above compares against a no-op handler, so its baseline
    never builds the result message the bus must return; this figure shows
    the bus's cost when the handler's own work includes that message.
    """

    async def handler(command: Nudge) -> CommandResult:
        return CommandResult(command_id=command.id, result=command.n)

    value, baseline = _execute_rates(handler)
    return Figure(
        "bus_execute_result", value, baseline, "commands/s", "ratio >= 0.4", ok=value / baseline >= 0.4,
        note="handler returns its own CommandResult",
    )


BENCHMARKS = [bench_bus_publish, bench_bus_execute, bench_bus_execute_result]

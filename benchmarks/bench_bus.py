"""Bus throughput: publish and execute, each against calling the handler directly."""

from __future__ import annotations

import asyncio
import time

from _common import Figure

from llmgine_nb import Command, CommandResult, Event, MessageBus

N = 200_000
ROUNDS = 7


class Tick(Event):
    n: int = 0


class Nudge(Command):
    n: int = 0


def _rates(measured, baseline, count: int) -> tuple[float, float]:
    """Best messages per second of ``measured`` and of ``baseline``, over rounds of ``count`` messages.

    The two alternate round by round, so a busy spell on a shared machine
    slows both rather than one of them.
    """
    best = [float("inf"), float("inf")]
    for _ in range(ROUNDS):
        for which, run_once in enumerate((measured, baseline)):
            start = time.perf_counter()
            asyncio.run(run_once())
            best[which] = min(best[which], time.perf_counter() - start)
    return count / best[0], count / best[1]


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

    value, baseline = _rates(through_bus, direct, N)
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

    return _rates(through_bus, direct, len(commands))


def bench_bus_execute() -> Figure:
    """``execute`` against calling a handler that builds its own ``CommandResult``, as llmgine handlers do.

    The bus must hand back a result message for every command; a baseline
    handler that builds none (a bare no-op call) would measure pydantic, not
    the bus, so the baseline's work includes that message.
    """

    async def handler(command: Nudge) -> CommandResult:
        return CommandResult(command_id=command.id, result=command.n)

    value, baseline = _execute_rates(handler)
    return Figure(
        "bus_execute", value, baseline, "commands/s", "ratio >= 0.5", ok=value / baseline >= 0.5,
        note="baseline: the handler, which returns its own CommandResult, called directly",
    )


SESSIONS_MANY = 10_000
SESSIONS_FEW = 10
SESSION_EVENTS = 20_000


async def _publish_rate_with_open_sessions(count: int) -> tuple[float, float]:
    """Events/s published inside one of ``count`` open sibling sessions, each with its own scoped subscriber.

    Also returns the seconds it took to open the sessions, subscribe in each,
    publish once and execute once in each (a server's sessions coming and going).
    """
    bus = MessageBus()
    received = [0]
    release = asyncio.Event()
    opened: list[str] = []
    all_open = asyncio.Event()

    async def on_tick(event: Tick) -> None:
        received[0] += 1

    bus.register_command_handler(Nudge, lambda command: command.n)

    async def hold_a_session(i: int) -> None:
        async with bus.session(f"s{i}") as session:
            session.subscribe(Tick, on_tick)
            await bus.publish(Tick(n=i))
            await bus.execute(Nudge(n=i))
            opened.append(session.id)
            if len(opened) == count:
                all_open.set()
            await release.wait()

    start = time.perf_counter()
    holders = [asyncio.ensure_future(hold_a_session(i)) for i in range(count)]
    await all_open.wait()
    setup = time.perf_counter() - start
    target = opened[len(opened) // 2]
    events = [Tick(n=i, session_id=target) for i in range(SESSION_EVENTS)]
    received[0] = 0
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for event in events:
            await bus.publish(event)
        best = min(best, time.perf_counter() - start)
    assert received[0] == ROUNDS * SESSION_EVENTS, "each event reaches its own session's subscriber only"
    release.set()
    await asyncio.gather(*holders)
    return SESSION_EVENTS / best, setup


def bench_bus_sessions() -> Figure:
    few, _ = asyncio.run(_publish_rate_with_open_sessions(SESSIONS_FEW))
    many, setup = asyncio.run(_publish_rate_with_open_sessions(SESSIONS_MANY))
    return Figure(
        "bus_sessions", many, few, "events/s", "ratio >= 0.5", ok=many / few >= 0.5,
        note=f"publishing in one of {SESSIONS_MANY:,} open sessions (each with a scoped subscriber) vs one of "
        f"{SESSIONS_FEW}; opening {SESSIONS_MANY:,} sessions that each subscribe, publish and execute once: {setup:.2f} s",
    )


BENCHMARKS = [bench_bus_publish, bench_bus_execute, bench_bus_sessions]

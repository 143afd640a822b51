"""The concurrency model: the bus from plain sync code, from inside a running loop, and across threads.

Documented in README ("How it runs"): the engine lives on a background event
loop; front ends submit work to it thread-safely.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llmgine_nb import BackgroundLoop, Command, Event, MessageBus


class Work(Command):
    n: int


class Done(Event):
    n: int


def test_execute_sync_from_plain_code_runs_on_the_background_loop():
    bus = MessageBus()
    threads = []

    async def handler(c: Work) -> int:
        threads.append(threading.current_thread().name)
        await asyncio.sleep(0)
        return c.n * 2

    bus.register_command_handler(Work, handler)
    assert bus.execute_sync(Work(n=21)).result == 42
    assert threads == ["llmgine-bus"]
    bus.close()


def test_sync_calls_inside_an_already_running_loop_do_not_fail():
    """A notebook kernel always has a running loop; sync calls must still work there."""
    bus = MessageBus()
    bus.register_command_handler(Work, lambda c: c.n + 1)
    seen = []
    bus.subscribe(Done, lambda e: seen.append(e.n))

    async def cell():
        # As a notebook cell would: a running loop in this thread, sync API.
        result = bus.execute_sync(Work(n=1))
        bus.publish_sync(Done(n=5))
        # And the async API works in the same loop.
        again = await bus.execute(Work(n=2))
        return result.result, again.result

    assert asyncio.run(cell()) == (2, 3)
    assert seen == [5]
    bus.close()


def test_blocking_call_from_inside_the_background_loop_is_refused_clearly():
    bus = MessageBus()

    def handler(c: Work):
        return bus.execute_sync(Work(n=0))  # would wait for itself forever

    bus.register_command_handler(Work, handler)
    result = bus.execute_sync(Work(n=1), timeout=5)
    assert not result.success
    assert "use `await` there instead" in result.error
    bus.close()


def test_commands_submitted_from_many_threads():
    bus = MessageBus()
    total = []
    bus.register_command_handler(Work, lambda c: total.append(c.n) or c.n)
    results = []

    def submit(start):
        for i in range(start, start + 50):
            results.append(bus.execute_sync(Work(n=i)).result)

    threads = [threading.Thread(target=submit, args=(k * 50,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(200)) == sorted(total)
    bus.close()


def test_background_loop_submit_returns_at_once_and_timeout_cancels():
    loop = BackgroundLoop("test-loop")
    started = time.perf_counter()
    future = loop.submit(asyncio.sleep(0.2, result="slept"))
    assert time.perf_counter() - started < 0.15  # submit does not wait
    assert future.result(timeout=2) == "slept"

    cancelled = threading.Event()

    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match="gave up waiting"):
        loop.run(slow(), timeout=0.1)
    assert cancelled.wait(2)
    loop.stop()
    # A stopped loop starts again on next use.
    assert loop.run(asyncio.sleep(0, result=1)) == 1
    loop.stop()

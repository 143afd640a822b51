"""Where plain (sync) subscribers run: off the loop, in order, so a slow one stalls nobody else."""

from __future__ import annotations

import asyncio
import threading
import time

from llmgine_nb import Event, HandlerFailed, MessageBus, current_session_id
from llmgine_nb.engine import ChatEngine, TurnFinished, TurnStarted
from llmgine_nb.llm.scripted import ScriptedLLM
from llmgine_nb.store import Store


class Saved(Event):
    text: str = ""


async def test_plain_subscribers_run_on_worker_threads_in_priority_order_after_inline_ones():
    bus = MessageBus()
    trail: list[tuple[str, str, str | None]] = []
    loop_thread = threading.current_thread().name

    def persist(event: Saved) -> None:  # like the journal: inline, higher priority
        trail.append(("persist", threading.current_thread().name, current_session_id()))

    def render(event: Saved) -> None:  # like a renderer: a plain function, may block
        time.sleep(0.01)
        trail.append(("render", threading.current_thread().name, current_session_id()))

    async def later(event: Saved) -> None:
        trail.append(("async", threading.current_thread().name, current_session_id()))

    def log_after(event: Saved) -> None:
        trail.append(("log", threading.current_thread().name, current_session_id()))

    bus.subscribe(Saved, persist, priority=100, inline=True)
    bus.subscribe(Saved, render, priority=10)
    bus.subscribe(Saved, later, priority=5)
    bus.subscribe(Saved, log_after, priority=0)
    async with bus.session("s") as session:
        await bus.publish(Saved(text="x"))
    assert [step for step, _, _ in trail] == ["persist", "render", "async", "log"]
    threads = {step: thread for step, thread, _ in trail}
    assert threads["persist"] == loop_thread and threads["async"] == loop_thread
    assert threads["render"].startswith("llmgine-bus-sync") and threads["log"].startswith("llmgine-bus-sync")
    # The worker sees the publisher's context: the session it published in.
    assert {sid for _, _, sid in trail} == {session.id}
    bus.close()


async def test_a_failing_plain_subscriber_is_reported_and_the_rest_still_run():
    bus = MessageBus()
    seen: list[str] = []
    failures: list[HandlerFailed] = []

    def broken(event: Saved) -> None:
        raise OSError("disk full")

    def returns_a_coroutine(event: Saved):  # a plain function handing back work for the loop
        async def finish() -> None:
            seen.append("awaited")

        return finish()

    bus.subscribe(Saved, broken, priority=3)
    bus.subscribe(Saved, returns_a_coroutine, priority=2)
    bus.subscribe(Saved, lambda e: seen.append("after"), priority=1)
    bus.subscribe(HandlerFailed, failures.append, inline=True)
    await bus.publish(Saved())
    assert seen == ["awaited", "after"]
    assert len(failures) == 1 and failures[0].error == "OSError: disk full"
    assert "broken" in failures[0].handler and "disk full" in failures[0].traceback
    bus.close()


async def test_a_blocking_sync_subscriber_in_one_session_does_not_stall_another_sessions_turn():
    """Issue 13 item 10: a slow file write in one session's subscriber held up every session."""
    bus = MessageBus()
    store = Store(":memory:")
    slow = await ChatEngine(bus, store=store, llm=ScriptedLLM(bus=bus)).start()
    other = await ChatEngine(bus, store=store, llm=ScriptedLLM(bus=bus)).start()
    other_done = threading.Event()
    blocking = threading.Event()
    still_blocked_when_other_finished: list[bool] = []

    def slow_write(event: TurnStarted) -> None:
        blocking.set()
        other_done.wait(timeout=1.0)  # blocks for up to 1 s, like a slow disk
        blocking.clear()

    def note_finish(event: TurnFinished) -> None:
        still_blocked_when_other_finished.append(blocking.is_set())

    bus.subscribe(TurnStarted, slow_write, session_id=slow.session_id)
    bus.subscribe(TurnFinished, note_finish, session_id=other.session_id, inline=True)

    slow_turn = asyncio.ensure_future(slow.send("write this down"))
    start = time.perf_counter()
    result = await other.send("and answer me meanwhile")
    took = time.perf_counter() - start
    other_done.set()
    assert (await slow_turn).status == "complete"
    assert result.status == "complete"
    # The other session's turn ended while the slow subscriber was still blocked ...
    assert still_blocked_when_other_finished == [True]
    # ... so it was not held up for the second the subscriber blocked (generous: a turn takes milliseconds).
    assert took < 0.5, f"the other session's turn took {took:.3f} s"
    await slow.close()
    await other.close()
    store.close()
    bus.close()


async def test_many_sessions_each_with_a_scoped_subscriber_deliver_only_to_their_own():
    bus = MessageBus()
    seen: dict[str, list[int]] = {}
    sessions = [f"s{i}" for i in range(2_000)]
    for session_id in sessions:
        box = seen.setdefault(session_id, [])

        async def on_saved(event: Saved, box: list[int] = box) -> None:
            box.append(1)

        bus.subscribe(Saved, on_saved, session_id=session_id)
    await bus.publish(Saved(session_id="s7"))
    await bus.publish(Saved(session_id="s1999"))
    await bus.publish(Saved(session_id=None))
    assert {k: v for k, v in seen.items() if v} == {"s7": [1], "s1999": [1]}

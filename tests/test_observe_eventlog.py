"""The event log: rows in a real SQLite store, reloaded as typed events; batching; failures."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from test_observe_scenarios import run_scenario

from llmgine_nb.bus import MessageBus
from llmgine_nb.engine.events import TurnFailed, TurnFinished, TurnStarted
from llmgine_nb.llm.events import LLMCallFinished, LLMTextDelta, LLMToolCallDelta
from llmgine_nb.messages import SessionEnded, SessionStarted
from llmgine_nb.observe import EventLogObserver, Redactor
from llmgine_nb.observe.eventlog import FLUSH_ON, ROWS_PER_TRANSACTION
from llmgine_nb.store import Store
from llmgine_nb.tools.events import ToolFinished


class CountingStore(Store):
    """The real store, counting the batches it is asked to write."""

    batches: list[int]

    def log_events(self, events, **options):  # type: ignore[no-untyped-def]
        events = list(events)
        self.__dict__.setdefault("batches", []).append(len(events))
        super().log_events(events, **options)


def no_secrets() -> Redactor:
    return Redactor(from_environment=False)


async def test_rows_reload_as_typed_events(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.db")
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets()).attach(bus)
    scenario = await run_scenario(bus)
    log.detach()  # writes what is buffered

    kept = [e for e in scenario.published if not isinstance(e, (LLMTextDelta, LLMToolCallDelta))]
    loaded = store.events(scenario.session_id)
    assert len(loaded) == len(kept) + 2  # plus SessionStarted and SessionEnded
    by_id = {e.id: e for e in loaded}
    for original in kept:
        again = by_id[original.id]
        assert type(again) is type(original)
        assert again == original  # every field, nested ToolResult and Usage included
    assert isinstance(by_id[kept[-1].id], type(kept[-1]))
    finished = [e for e in loaded if isinstance(e, ToolFinished)]
    assert {f.result.status for f in finished} == {"ok", "denied"}
    assert sum(isinstance(e, (SessionStarted, SessionEnded)) for e in loaded) == 2
    # The raw rows: one per event, typed by class name.
    rows = list(store.db.query("select type, session_id from events"))
    assert len(rows) == len(loaded)
    assert {r["session_id"] for r in rows} == {scenario.session_id}
    assert "llmgine_nb.llm.events.LLMTextDelta" not in {r["type"] for r in rows}
    store.close()


async def test_deltas_are_logged_on_request(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.db")
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets(), log_deltas=True).attach(bus)
    scenario = await run_scenario(bus)
    log.detach()
    deltas = store.events(scenario.session_id, types=[LLMTextDelta, LLMToolCallDelta])
    assert len(deltas) == sum(isinstance(e, (LLMTextDelta, LLMToolCallDelta)) for e in scenario.published) == 7
    store.close()


async def test_writes_are_batched(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "log.db")
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets(), background=False).attach(bus)
    scenario = await run_scenario(bus)
    log.detach()
    written = len(store.events(scenario.session_id))
    # One approval asked, one turn failed, one session ended: three batches for ~35 events,
    # each written in transactions of at most ROWS_PER_TRANSACTION events.
    assert sum(store.batches) == written and written > 30
    assert max(store.batches) <= ROWS_PER_TRANSACTION
    assert len(store.batches) <= 3 + written // ROWS_PER_TRANSACTION, store.batches
    store.close()


def wait_for_rows(store: Store, count: int) -> list:
    deadline = time.monotonic() + 10
    while len(store.events()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return store.events()


@pytest.mark.parametrize("flush_on", [FLUSH_ON, FLUSH_ON + (TurnFinished,)])
async def test_flush_on_events_reach_disk_without_flush(tmp_path: Path, flush_on: tuple) -> None:
    store = Store(tmp_path / "log.db")
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets(), flush_interval=60, flush_on=flush_on).attach(bus)
    await bus.publish(LLMCallFinished(call_id="c", model="m"))
    assert log.pending == 1  # buffered, not written during the publish
    await bus.publish(TurnFinished(turn_id="t", text="done", model="m"))
    if TurnFinished in flush_on:
        assert [type(e).__name__ for e in wait_for_rows(store, 2)] == ["LLMCallFinished", "TurnFinished"]
    else:
        time.sleep(0.2)
        assert store.events() == [] and log.pending == 2  # a good turn end waits for the interval
        await bus.publish(TurnFailed(turn_id="t2", kind="timeout", reason="r", error="e"))
        assert len(wait_for_rows(store, 3)) == 3
    log.detach()
    store.close()


async def test_interval_flush_and_thread_stops(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.db")
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets(), flush_interval=0.05).attach(bus)
    await bus.publish(LLMCallFinished(call_id="c", model="m"))
    deadline = time.monotonic() + 10
    while not store.events() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(store.events()) == 1 and log.written == 1
    log.detach()
    assert not [t for t in threading.enumerate() if t.name == "llmgine-eventlog" and t.is_alive()]
    await bus.publish(LLMCallFinished(call_id="d", model="m"))  # detached: not logged
    assert len(store.events()) == 1
    store.close()


async def test_a_failing_store_does_not_break_the_bus(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path / "log.db")
    store.close()  # every write now fails
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets(), background=False).attach(bus)
    with caplog.at_level(logging.ERROR, logger="llmgine_nb.observe.eventlog"):
        await bus.publish(TurnFailed(turn_id="t", kind="timeout", reason="r", error="e"))
    assert log.failed_writes == 1 and log.written == 0
    assert "could not write 1 events to the event log" in caplog.text
    log.detach()


async def test_an_event_without_session_is_filed_under_its_turn(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.db")
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets(), background=False).attach(bus)
    await bus.publish(TurnStarted(turn_id="t", text="hi", model="m", user_message_id="u", session_id="s1"))
    orphan = LLMCallFinished(call_id="c", model="m", metadata={"turn_id": "t"})
    stranger = LLMCallFinished(call_id="d", model="m", metadata={"turn_id": "unknown"})
    await bus.publish(orphan)
    await bus.publish(stranger)
    log.flush()
    assert orphan.session_id is None  # the published event itself is not changed
    in_session = store.events("s1")
    assert [type(e).__name__ for e in in_session] == ["TurnStarted", "LLMCallFinished"]
    assert in_session[1].id == orphan.id and in_session[1].session_id == "s1"
    assert len(store.events()) == 3  # the stranger is kept, without a session
    log.detach()
    store.close()


def test_bad_settings_say_what_to_do(tmp_path: Path) -> None:
    store = Store(":memory:")
    with pytest.raises(ValueError, match="at least 1"):
        EventLogObserver(store, batch_size=0)
    with pytest.raises(ValueError, match="positive number of seconds"):
        EventLogObserver(store, flush_interval=0)
    log = EventLogObserver(store, no_secrets()).attach(MessageBus())
    with pytest.raises(RuntimeError, match="already attached"):
        log.attach(MessageBus())
    log.detach()


async def test_deltas_are_not_even_built_when_only_the_log_listens(tmp_path: Path, monkeypatch) -> None:
    from llmgine_nb.llm import ScriptedLLM, base

    built: list[str] = []

    class CountedDelta(LLMTextDelta):
        def __init__(self, **data):  # type: ignore[no-untyped-def]
            built.append(data["text"])
            super().__init__(**data)

    monkeypatch.setattr(base, "LLMTextDelta", CountedDelta)
    store = Store(tmp_path / "log.db")
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets()).attach(bus)
    llm = ScriptedLLM(["one two three"], bus=bus)
    assert (await llm.stream("hi").get_response()).text == "one two three"
    assert built == []  # the log takes every event but deltas, so none was made
    shown: list[LLMTextDelta] = []
    bus.subscribe(LLMTextDelta, shown.append)  # a renderer arrives
    llm.script.append("four five")
    await llm.stream("hi").get_response()
    assert "".join(e.text for e in shown) == "four five" and len(built) == 2
    log.detach()
    assert not store.events(types=[LLMTextDelta])
    store.close()

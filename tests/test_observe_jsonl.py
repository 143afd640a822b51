"""JSONL: export of the store's event log and its round trip; the live JSONL observer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from test_observe_scenarios import run_scenario

from llmgine_nb.bus import MessageBus
from llmgine_nb.llm.events import LLMCallFinished, LLMTextDelta, LLMToolCallDelta
from llmgine_nb.messages import Message
from llmgine_nb.observe import EventLogObserver, JSONLObserver, Redactor, export_jsonl, read_jsonl, write_jsonl
from llmgine_nb.store import Store


def no_secrets() -> Redactor:
    return Redactor(from_environment=False)


async def test_export_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.db")
    bus = MessageBus()
    log = EventLogObserver(store, no_secrets()).attach(bus)
    alpha = await run_scenario(bus, session_name="alpha")
    beta = await run_scenario(bus, session_name="beta")
    log.detach()

    path = tmp_path / "alpha.jsonl"
    count = export_jsonl(store, path, session=alpha.session_id, redactor=no_secrets())
    stored = store.events(alpha.session_id)
    assert count == len(stored) > 30
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == count
    first = json.loads(lines[0])
    # Oldest first: the scenario's events carry fixed 2025 timestamps.
    assert first["type"] == "llmgine_nb.engine.events.TurnStarted" and first["session_id"] == alpha.session_id
    back = read_jsonl(path)
    assert back == stored  # same classes, same fields, same order
    assert {e.session_id for e in back} == {alpha.session_id}

    everything = tmp_path / "all.jsonl"
    assert export_jsonl(store, everything, redactor=no_secrets()) == len(stored) + len(store.events(beta.session_id))
    store.close()


async def test_live_observer_appends_as_events_happen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "live.jsonl"
    bus = MessageBus()
    live = JSONLObserver(path, redactor=no_secrets()).attach(bus)
    scenario = await run_scenario(bus)
    # Each line is on disk as soon as its event was published (before detach).
    lines = path.read_text(encoding="utf-8").splitlines()
    live.detach()
    kept = [e for e in scenario.published if not isinstance(e, (LLMTextDelta, LLMToolCallDelta))]
    back = [Message.from_json(line) for line in lines]
    assert [e for e in back if e.id in {k.id for k in kept}] == kept
    assert live.written == len(lines) == len(kept) + 2

    # Attaching again appends rather than overwriting.
    JSONLObserver(path, redactor=no_secrets()).attach(bus)
    await bus.publish(LLMCallFinished(call_id="x", model="m"))
    assert len(read_jsonl(path)) == len(lines) + 1


def test_write_to_an_open_file_and_read_errors(tmp_path: Path) -> None:
    buffer = io.StringIO()
    event = LLMCallFinished(call_id="x", model="m", text="hi")
    assert write_jsonl([event, event], buffer, redactor=no_secrets()) == 2
    buffer.seek(0)
    assert read_jsonl(buffer) == [event, event]

    bad = tmp_path / "bad.jsonl"
    bad.write_text(event.to_json() + "\n\nnot json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3 of .*bad.jsonl is not an event record"):
        read_jsonl(bad)


def test_live_observer_reports_an_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="pass a path in a folder you can write to"):
        JSONLObserver(blocker / "live.jsonl").attach(MessageBus())

"""A reply that is still streaming is saved as a draft, so a crash of the kernel keeps what arrived."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmgine_nb import MessageBus
from llmgine_nb.chat import ChatMessage
from llmgine_nb.engine import ChatEngine
from llmgine_nb.llm.base import StreamDelta
from llmgine_nb.llm.scripted import ScriptedLLM
from llmgine_nb.store import Store

LONG_REPLY = " ".join(f"word{i}" for i in range(60))


def assistant_rows(db: Path) -> list[tuple[str, str]]:
    """(status, content) of every stored assistant message, read through a second connection."""
    with Store(db) as other:
        return [
            (m.status, m.content or "")
            for s in other.list_sessions()
            for m in other.messages(s.id)
            if m.role == "assistant"
        ]


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_draft_grows_on_disk_and_the_finished_reply_takes_its_place(tmp_path: Path) -> None:
    db = tmp_path / "drafts.db"
    llm = ScriptedLLM([LONG_REPLY], delay_s=0.01)  # about 0.6 s of streaming
    engine = await ChatEngine(MessageBus(), store=Store(db), llm=llm, save_partial_every=0.05).start()
    turn = asyncio.ensure_future(engine.send("tell me a story"))
    await wait_for(lambda: assistant_rows(db))
    status, first = assistant_rows(db)[0]
    assert status == "interrupted" and LONG_REPLY.startswith(first) and first != LONG_REPLY
    await wait_for(lambda: len(assistant_rows(db)[0][1]) > len(first))  # it is written again as it grows
    result = await turn
    assert result.status == "complete" and result.text == LONG_REPLY
    assert assistant_rows(db) == [("complete", LONG_REPLY)]  # replaced, not followed
    stored = engine.store.messages(engine.session_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    seqs = engine.store.db.execute("SELECT seq FROM messages WHERE session_id = ? ORDER BY seq", [engine.session_id])
    assert [row[0] for row in seqs] == [0, 1]  # the reply took the draft's place: no gap
    assert [m.id for m in stored] == [m.id for m in engine.history]
    assert len(engine.store.llm_calls(engine.session_id)) == 1
    assert engine.store.search("word59")[0].message_id == stored[-1].id  # the search index follows


def message_writes(store: Store) -> list[str]:
    """Every statement that writes the messages table, as SQLite runs it."""
    writes: list[str] = []
    kinds = ("INSERT INTO messages ", "UPDATE messages ", "DELETE FROM messages ")
    store.db.conn.set_trace_callback(lambda sql: writes.append(sql) if sql.startswith(kinds) else None)
    return writes


async def test_a_short_reply_writes_no_draft_even_when_it_is_slow_to_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "short.db")
    writes = message_writes(store)

    def thinks_then_answers(messages, tools):  # type: ignore[no-untyped-def]
        time.sleep(0.1)  # a model that takes long to send its first token
        return "short and quick"

    llm = ScriptedLLM(thinks_then_answers)
    engine = await ChatEngine(MessageBus(), store=store, llm=llm, save_partial_every=0.05).start()
    assert (await engine.send("hi")).text == "short and quick"
    assert [m.status for m in store.messages(engine.session_id)] == ["complete", "complete"]
    distinct = set(writes)  # SQLite reports a statement again for each trigger it runs
    assert len(distinct) == 2 and all(w.startswith("INSERT INTO messages ") for w in distinct), distinct


async def test_a_draft_that_cannot_be_written_does_not_cost_the_reply(tmp_path: Path, caplog, monkeypatch) -> None:
    db = tmp_path / "locked.db"
    engine = await ChatEngine(
        MessageBus(), store=Store(db), llm=ScriptedLLM([LONG_REPLY], delay_s=0.005), save_partial_every=0.02
    ).start()
    attempts: list[str] = []

    def locked(*args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append("draft")
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(engine.journal, "save_draft", locked)
    result = await engine.send("tell me a story")
    assert result.status == "complete" and result.text == LONG_REPLY
    assert assistant_rows(db) == [("complete", LONG_REPLY)]
    assert attempts == ["draft"]  # tried once, then left alone for the rest of the reply
    assert "could not save the draft" in caplog.text


async def test_the_reply_replaces_its_draft_even_after_another_writer_added_a_message(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    llm = ScriptedLLM([LONG_REPLY], delay_s=0.01)
    engine = await ChatEngine(MessageBus(), store=Store(db), llm=llm, session_name="shared",
                              save_partial_every=0.05).start()
    turn = asyncio.ensure_future(engine.send("tell me a story"))
    await wait_for(lambda: assistant_rows(db))
    with Store(db) as other:  # another notebook writes to the same session meanwhile
        other.append_message("shared", ChatMessage(role="user", content="(a note from elsewhere)"))
    await turn
    assert assistant_rows(db) == [("complete", LONG_REPLY)]  # no stale draft left beside the reply


async def test_cancelling_after_a_draft_keeps_one_interrupted_reply(tmp_path: Path) -> None:
    db = tmp_path / "cancel.db"
    llm = ScriptedLLM([LONG_REPLY, "after"], delay_s=0.01)
    engine = await ChatEngine(MessageBus(), store=Store(db), llm=llm, save_partial_every=0.05).start()
    turn = asyncio.ensure_future(engine.send("tell me a story"))
    await wait_for(lambda: assistant_rows(db))
    await engine.cancel()
    result = await turn
    assert result.status == "cancelled"
    assert assistant_rows(db) == [("interrupted", result.text)]
    assert [m.id for m in engine.store.messages(engine.session_id)] == [m.id for m in engine.history]
    assert (await engine.send("go on")).text == "after"


class BreaksMidStream(ScriptedLLM):
    """Streams some words, then the connection drops."""

    async def _request_stream(self, request):  # type: ignore[no-untyped-def]
        for word in LONG_REPLY.split()[:20]:
            await asyncio.sleep(0.01)
            yield StreamDelta("text", text=word + " ")
        raise ConnectionError("the connection dropped")


async def test_a_stream_that_drops_keeps_what_arrived_as_one_interrupted_reply(tmp_path: Path) -> None:
    db = tmp_path / "failed.db"
    engine = await ChatEngine(
        MessageBus(), store=Store(db), llm=BreaksMidStream(), save_partial_every=0.05
    ).start()
    result = await engine.send("tell me a story")
    assert result.status == "failed" and "message is kept" in (result.reason or "")
    arrived = "".join(word + " " for word in LONG_REPLY.split()[:20])
    assert result.text == arrived
    assert assistant_rows(db) == [("interrupted", arrived)]  # the draft became the reply: one row, not two
    assert [m.role for m in engine.store.messages(engine.session_id)] == ["user", "assistant"]
    assert [m.role for m in engine.history] == ["user", "assistant"]


def test_save_partial_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="save_partial_every"):
        ChatEngine(MessageBus(), llm=ScriptedLLM(), save_partial_every=0)


CRASHING_KERNEL = textwrap.dedent(
    """
    import asyncio, sys
    from llmgine_nb import MessageBus
    from llmgine_nb.engine import ChatEngine
    from llmgine_nb.llm.scripted import ScriptedLLM
    from llmgine_nb.store import Store

    async def main():
        reply = " ".join(f"word{i}" for i in range(2000))  # streams for a minute: killed long before
        llm = ScriptedLLM([reply], delay_s=0.03)
        engine = await ChatEngine(MessageBus(), store=Store(sys.argv[1]), llm=llm, session_name="story",
                                  save_partial_every=0.1).start()
        await engine.send("tell me a long story")

    asyncio.run(main())
    """
)


async def test_a_kernel_killed_mid_stream_keeps_the_partial_reply_and_the_session_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    kernel = subprocess.Popen([sys.executable, "-c", CRASHING_KERNEL, str(db)], env=os.environ.copy())
    try:
        await wait_for(lambda: db.exists() and any(len(c) > 40 for _, c in assistant_rows(db)), timeout=30)
    finally:
        kernel.send_signal(signal.SIGKILL)
        kernel.wait()
    [(status, partial)] = assistant_rows(db)
    assert status == "interrupted" and partial.startswith("word0 word1 word2")
    engine = await ChatEngine(MessageBus(), store=Store(db), llm=ScriptedLLM(["Where was I?"]),
                              session_name="story").start()
    assert [(m.role, m.status) for m in engine.history] == [("user", "complete"), ("assistant", "interrupted")]
    assert (await engine.send("go on")).text == "Where was I?"
    assert [m.role for m in engine.store.messages(engine.session_id)] == ["user", "assistant", "user", "assistant"]

"""Editing the dialog: forget an exchange, edit a message, pin one - commands answered by the session's engine,
events published, changes stored (they survive a new engine on the same database), honoured by the context
compiler (what the model is sent next), and shown by the history."""

from __future__ import annotations

import pytest

from llmgine_nb import MessageBus
from llmgine_nb.chat import ChatMessage
from llmgine_nb.context import ContextCompiler
from llmgine_nb.engine import (
    ChatEngine,
    EditMessage,
    ForgetMessage,
    MessageEdited,
    MessagePinned,
    MessagesForgotten,
    PinMessage,
)
from llmgine_nb.llm.scripted import ScriptedLLM
from llmgine_nb.messages import Message
from llmgine_nb.store import Store


def echo(messages, tools):
    return f"noted: {messages[-1].content}"


@pytest.fixture
def store(db_target):  # a SQLite file, and a PostgreSQL schema (tests/services.py)
    with Store(db_target) as s:
        yield s


async def engine_with(store, bus, llm, session_id=None, **options):
    return await ChatEngine(bus, store=store, llm=llm, session_id=session_id, **options).start()


def sent_texts(llm: ScriptedLLM) -> list[str]:
    return [m.content or "" for m in llm.calls[-1].messages]


async def test_forget_leaves_the_exchange_out_and_undo_brings_it_back(store):
    bus = MessageBus("dialog")
    llm = ScriptedLLM(echo)
    engine = await engine_with(store, bus, llm)
    for text in ("my name is Ada", "the secret word is plum", "what do you know?"):
        await engine.send(text)
    events: list = []
    bus.subscribe(MessagesForgotten, events.append)
    second_user = engine.history[2]
    reply_id = engine.history[3].id
    result = await bus.execute(ForgetMessage(session_id=engine.session_id, message_id=reply_id[:8]))
    assert result.success and result.result == [second_user.id, reply_id]  # the whole exchange, from its reply
    assert events[0].message_ids == [second_user.id, reply_id] and events[0].forgotten

    await engine.send("and now?")
    sent = sent_texts(llm)
    assert "the secret word is plum" not in " ".join(sent) and "my name is Ada" in sent
    assert [m.forgotten for m in store.messages(engine.session_id)][:4] == [False, False, True, True]

    await bus.execute(ForgetMessage(session_id=engine.session_id, message_id=second_user.id, forgotten=False))
    await engine.send("again?")
    assert "the secret word is plum" in sent_texts(llm)
    await engine.close()
    bus.close()


async def test_edit_changes_what_the_model_sees_and_is_stored(store):
    bus = MessageBus("dialog")
    llm = ScriptedLLM(echo)
    engine = await engine_with(store, bus, llm)
    await engine.send("the meeting is on Monday")
    events: list = []
    bus.subscribe(MessageEdited, events.append)
    first = engine.history[0].id
    result = await bus.execute(EditMessage(session_id=engine.session_id, message_id=first, text="the meeting is on Friday"))
    assert result.success and events[0].previous == "the meeting is on Monday"
    await engine.send("when is it?")
    assert "the meeting is on Friday" in sent_texts(llm) and "the meeting is on Monday" not in sent_texts(llm)
    assert store.get_message(first).content == "the meeting is on Friday"

    refused = await bus.execute(EditMessage(session_id=engine.session_id, message_id=first, text="  "))
    assert not refused.success and "forget it instead" in (refused.error or "")
    unknown = await bus.execute(EditMessage(session_id=engine.session_id, message_id="nope", text="x"))
    assert not unknown.success and "is no message of this session" in (unknown.error or "")
    assert "%llmgine" not in (refused.error or "") + (unknown.error or "")  # the engine names no front end
    await engine.close()
    bus.close()


async def test_a_pinned_message_survives_the_cut_and_a_restart(store):
    bus = MessageBus("dialog")
    llm = ScriptedLLM(echo)
    engine = await engine_with(store, bus, llm, context_tokens=400)
    await engine.send("Remember: the launch code is 7-7-3.")
    for i in range(12):
        await engine.send(f"filler message number {i} " + "words " * 20)
    assert "Remember: the launch code is 7-7-3." not in sent_texts(llm)  # cut by the budget
    events: list = []
    bus.subscribe(MessagePinned, events.append)
    result = await bus.execute(PinMessage(session_id=engine.session_id, message_id=engine.history[0].id))
    assert result.success and events[0].pinned
    session_id = engine.session_id
    await engine.close()

    again = ScriptedLLM(echo)
    reopened = await engine_with(store, bus, again, session_id=session_id, context_tokens=400)  # a restart
    await reopened.send("what is the code?")
    assert "Remember: the launch code is 7-7-3." in sent_texts(again)
    await reopened.close()
    bus.close()


def test_the_compiler_reports_what_was_forgotten():
    history = [
        ChatMessage(role="user", content="keep"),
        ChatMessage(role="assistant", content="kept"),
        ChatMessage(role="user", content="drop", forgotten=True),
        ChatMessage(role="assistant", content="dropped", forgotten=True),
        ChatMessage(role="user", content="now"),
    ]
    compiled = ContextCompiler(budget=10_000).compile_sync(history)
    assert [m.content for m in compiled.messages] == ["keep", "kept", "now"]
    assert compiled.report.forgotten == [history[2].id, history[3].id]
    assert "2 forgotten messages left out" in str(compiled.report)



def test_forgetting_is_seen_by_a_compiler_that_already_indexed_the_history():
    """The compiler's index sets forgotten messages aside as it reads them: a later
    forgotten message, one forgotten after it was indexed, and one brought back all count."""
    def sent(compiled):
        return [m.content for m in compiled.messages]

    history = [
        ChatMessage(role="user", content="a"),
        ChatMessage(role="assistant", content="a!"),
        ChatMessage(role="user", content="b", forgotten=True),
        ChatMessage(role="assistant", content="b!", forgotten=True),
        ChatMessage(role="user", content="c"),
    ]
    compiler = ContextCompiler(budget=10_000)
    assert sent(compiler.compile_sync(history, session_id="s")) == ["a", "a!", "c"]
    history += [ChatMessage(role="assistant", content="c!", forgotten=True), ChatMessage(role="user", content="d")]
    grown = compiler.compile_sync(history, session_id="s")  # read incrementally
    assert sent(grown) == ["a", "a!", "c", "d"] == sent(ContextCompiler(budget=10_000).compile_sync(history))
    assert grown.report.forgotten == [history[2].id, history[3].id, history[5].id]
    history[0] = history[0].model_copy(update={"forgotten": True})  # forgotten after it was indexed
    history[2] = history[2].model_copy(update={"forgotten": False})  # brought back
    again = compiler.compile_sync(history, session_id="s")
    assert sent(again) == ["a!", "b", "c", "d"]
    assert again.report.forgotten == [history[0].id, history[3].id, history[5].id]

def test_the_commands_and_events_survive_json():
    for message in (
        ForgetMessage(session_id="s", message_id="m", forgotten=False),
        EditMessage(session_id="s", message_id="m", text="new"),
        PinMessage(session_id="s", message_id="m"),
        MessagesForgotten(session_id="s", message_ids=["a", "b"]),
        MessageEdited(session_id="s", message_id="m", text="new", previous="old"),
        MessagePinned(session_id="s", message_id="m", pinned=False),
    ):
        assert Message.from_json(message.to_json()) == message

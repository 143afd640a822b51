"""Full turns through the chat engine with the offline scripted model."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel

from llmgine_nb import Event, MessageBus, ToolContext, ToolManager, tool
from llmgine_nb.chat import ChatMessage, ToolCall
from llmgine_nb.engine import (
    Budget,
    BudgetExceeded,
    ChatEngine,
    DecideApproval,
    ForkSession,
    MessagesForgotten,
    ResetSession,
    SendMessage,
    StepLimitReached,
    TurnCancelled,
    TurnFailed,
    TurnFinished,
    TurnResult,
)
from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
from llmgine_nb.store import Store
from llmgine_nb.tools import ApprovalQueue, AutoApproval


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@tool
async def slow_lookup(key: str) -> str:
    """Look a key up slowly."""
    await asyncio.sleep(0.3)
    return f"value-of-{key}"


@tool(risk="write")
def save_note(text: str) -> str:
    """Save a note."""
    saved.append(text)
    return "saved"


@tool
def explode() -> str:
    """Always fails."""
    raise RuntimeError("the disk is on fire")


saved: list[str] = []


async def until(condition, timeout: float = 2.0) -> None:
    """Wait until ``condition()`` holds (a turn reached a point), or fail the test."""
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "timed out waiting for the turn to get there"
        await asyncio.sleep(0.01)


class Recorder:
    def __init__(self, bus: MessageBus) -> None:
        self.events: list[Event] = []
        bus.subscribe(Event, self.events.append)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


async def make(script, *tools_, store=None, **options):
    bus = MessageBus()
    recorder = Recorder(bus)
    llm = ScriptedLLM(script, bus=bus)
    manager = ToolManager(list(tools_), bus=bus, approval_timeout=5)
    engine = await ChatEngine(bus, store=store or Store(":memory:"), tools=manager, llm=llm, **options).start()
    return engine, llm, recorder


async def test_plain_answer_is_persisted_and_evented():
    engine, llm, rec = await make(["Hello, Ada!"])
    result = await engine.send("Hi, I am Ada")
    assert result.status == "complete" and result.text == "Hello, Ada!"
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    stored = engine.store.messages(engine.session_id)
    assert [(m.role, m.content) for m in stored] == [("user", "Hi, I am Ada"), ("assistant", "Hello, Ada!")]
    finished = rec.of(TurnFinished)[0]
    assert finished.turn_id == result.turn_id and finished.session_id == engine.session_id
    # Every event of the turn - the engine's, the model's - carries the turn id.
    turn_events = [e for e in rec.events if e.metadata.get("turn_id") == result.turn_id]
    kinds = {type(e).__name__ for e in turn_events}
    assert {"TurnStarted", "ContextCompiled", "LLMCallStarted", "LLMTextDelta", "LLMCallFinished", "TurnFinished"} <= kinds
    assert engine.store.llm_calls(engine.session_id)[0].input_tokens == result.usage.input_tokens


async def test_one_tool_then_the_answer():
    engine, llm, rec = await make([ScriptedReply(tool_calls=[call("add", a=2, b=40)]), "It is 42."], add)
    result = await engine.send("What is 2 + 40?")
    assert result.text == "It is 42." and result.steps == 2
    tool_message = [m for m in engine.history if m.role == "tool"][0]
    assert tool_message.content == "42"
    # The model's second call saw the tool result.
    assert llm.calls[1].messages[-1].content == "42"
    records = engine.store.tool_calls(engine.session_id)
    assert [(r.tool, r.status, r.result) for r in records] == [("add", "done", "42")]


async def test_two_parallel_tools_run_concurrently():
    engine, _, rec = await make(
        [ScriptedReply(tool_calls=[call("slow_lookup", key="a"), call("slow_lookup", key="b")]), "Both found."],
        slow_lookup,
    )
    started = time.perf_counter()
    result = await engine.send("look up a and b")
    elapsed = time.perf_counter() - started
    assert result.text == "Both found."
    assert sorted(m.content for m in engine.history if m.role == "tool") == ["value-of-a", "value-of-b"]
    assert elapsed < 0.55, f"two 0.3 s tools took {elapsed:.2f} s: they did not overlap"


async def test_denied_approval_never_runs_and_the_model_is_told():
    saved.clear()
    engine, llm, rec = await make(
        [ScriptedReply(tool_calls=[call("save_note", text="secret plan")]), "Understood, not saved."], save_note
    )
    AutoApproval.deny_all("not without a review").attach(engine.bus)
    result = await engine.send("save my plan")
    assert result.text == "Understood, not saved."
    assert saved == []
    told = llm.calls[1].messages[-1]
    assert told.role == "tool" and "denied" in told.content and "not without a review" in told.content
    record = engine.store.tool_calls(engine.session_id)[0]
    assert record.status == "denied" and record.approval.decision == "denied"
    assert record.approval.reason == "not without a review"


async def test_decide_approval_command_answers_the_queue():
    saved.clear()
    queue = ApprovalQueue()
    engine, _, rec = await make(
        [ScriptedReply(tool_calls=[call("save_note", text="v1")]), "Saved."], save_note, approvals=queue
    )
    queue.attach(engine.bus)
    turn = asyncio.ensure_future(engine.send("save it"))
    await until(lambda: queue.pending())
    pending = queue.pending()
    assert len(pending) == 1 and saved == []  # waiting for a person: nothing ran yet
    result = await engine.bus.execute(
        DecideApproval(session_id=engine.session_id, call_id=pending[0].call_id, decision="edit",
                       arguments={"text": "v2"}, decided_by="ada")
    )
    assert result.success, result.error
    assert (await turn).text == "Saved."
    assert saved == ["v2"]


async def test_step_limit_stops_with_a_clear_message():
    looping = [ScriptedReply(tool_calls=[call("add", a=i, b=i)]) for i in range(5)]
    engine, _, rec = await make(looping, add, max_steps=3)
    result = await engine.send("keep adding")
    assert result.status == "step_limit" and result.steps == 3
    assert "step limit" in result.text and "max_steps" in result.text
    assert rec.of(StepLimitReached)[0].steps == 3


async def test_budget_hit_asks_and_a_denial_stops_the_turn_without_spending():
    engine, llm, rec = await make(["never sent"], budget=Budget(turn_tokens=5))
    AutoApproval.deny_all().attach(engine.bus)
    result = await engine.send("a message long enough to need more than five tokens of context")
    assert result.status == "failed" and result.error_kind == "budget"
    assert "budget" in result.reason
    assert llm.calls == []  # the model was never called
    exceeded = rec.of(BudgetExceeded)[0]
    assert exceeded.limit == "turn_tokens" and not exceeded.approved
    assert engine.history[-1].role == "user"  # the message is kept


async def test_budget_hit_approved_goes_on():
    engine, llm, rec = await make(["Fine."], budget=Budget(turn_tokens=5))
    AutoApproval.approve_all().attach(engine.bus)
    result = await engine.send("a message long enough to need more than five tokens of context")
    assert result.status == "complete" and result.text == "Fine."
    assert rec.of(BudgetExceeded)[0].approved


async def test_cancelled_stream_keeps_the_partial_text_marked_interrupted():
    long_reply = " ".join(f"word{i}" for i in range(200))
    bus = MessageBus()
    recorder = Recorder(bus)
    llm = ScriptedLLM([long_reply, "after"], bus=bus, delay_s=0.01)
    engine = await ChatEngine(bus, llm=llm).start()
    turn = asyncio.ensure_future(engine.send("tell me a long story"))
    await asyncio.sleep(0.15)
    assert await engine.cancel() is True
    result = await turn
    assert result.status == "cancelled"
    assert result.text.startswith("word0 word1") and len(result.text) < len(long_reply)
    last = engine.store.messages(engine.session_id)[-1]
    assert last.role == "assistant" and last.status == "interrupted" and last.content == result.text
    assert recorder.of(TurnCancelled)[0].partial_text == result.text
    # The session is still usable.
    assert (await engine.send("go on")).text == "after"


async def test_a_crashing_tool_becomes_an_error_result_and_the_turn_goes_on():
    engine, llm, rec = await make([ScriptedReply(tool_calls=[call("explode")]), "The tool failed, sorry."], explode)
    result = await engine.send("try it")
    assert result.status == "complete"
    told = llm.calls[1].messages[-1].content
    assert "RuntimeError" in told and "the disk is on fire" in told
    assert engine.store.tool_calls(engine.session_id)[0].status == "error"


async def test_malformed_arguments_are_sent_back_and_the_model_corrects_itself():
    script = [
        ScriptedReply(tool_calls=[{"name": "add", "arguments": '{"a": 1, "b": '}]),  # broken JSON
        ScriptedReply(tool_calls=[call("add", a="one", b=2)]),  # wrong type
        ScriptedReply(tool_calls=[call("add", a=1, b=2)]),
        "1 + 2 = 3",
    ]
    engine, llm, rec = await make(script, add)
    result = await engine.send("add one and two")
    assert result.text == "1 + 2 = 3" and result.steps == 4
    tool_results = [m.content for m in engine.history if m.role == "tool"]
    assert "JSON" in tool_results[0]
    assert "a" in tool_results[1] and "integer" in tool_results[1].lower()
    assert tool_results[2] == "3"


async def test_structured_output():
    class City(BaseModel):
        name: str
        population: int

    engine, llm, rec = await make(['{"name": "Perth", "population": 2300000}'])
    result = await engine.send("Largest city in WA?", response_model=City)
    assert isinstance(result.structured, City) and result.structured.population == 2_300_000
    assert rec.of(TurnFinished)[0].structured == {"name": "Perth", "population": 2300000}


class City(BaseModel):
    name: str


@pytest.mark.parametrize("wrong", [dict[str, int], list[City], City(name="Perth"), int], ids=str)
async def test_a_response_model_that_is_not_a_pydantic_class_is_refused_saying_what_to_pass(wrong):
    with pytest.raises(TypeError, match=r"must be a pydantic model class .* wrap it in a model"):
        SendMessage(text="cities?", response_model=wrong)
    engine, llm, rec = await make(["[]"])
    with pytest.raises(TypeError, match="wrap it in a model"):
        await engine.send("cities?", response_model=wrong)
    assert llm.calls == [] and engine.history == []  # refused before anything ran or was stored


async def test_engine_state_is_typed_persisted_and_visible_to_tools(tmp_path):
    class Notes(BaseModel):
        count: int = 0

    @tool
    def bump(ctx: ToolContext) -> int:
        """Count a call."""
        ctx.state["count"] += 1
        return ctx.state["count"]

    db = tmp_path / "state.db"
    script = [ScriptedReply(tool_calls=[call("bump")]), "bumped"]
    engine, *_ = await make(script, bump, store=Store(db), state=Notes, session_name="counter")
    await engine.send("bump it")
    assert engine.state.count == 1
    # A new engine on the same database resumes the session with its state.
    again, *_ = await make(list(script), bump, store=Store(db), state=Notes, session_name="counter")
    assert again.session_id == engine.session_id and again.state.count == 1
    await again.send("once more")
    assert again.state.count == 2


async def test_resume_presents_undecided_tool_calls_again(tmp_path):
    db = tmp_path / "resume.db"
    saved.clear()
    queue = ApprovalQueue()
    engine, *_ = await make(
        [ScriptedReply(tool_calls=[call("save_note", text="draft")])], save_note,
        store=Store(db), session_name="work", approvals=queue,
    )
    queue.attach(engine.bus)
    turn = asyncio.ensure_future(engine.send("save the draft"))
    await until(lambda: queue.pending())
    assert queue.pending()
    # The kernel "restarts" before anyone decided: a new engine on the same file,
    # while the old one is simply gone (it never gets to write anything more).
    assert saved == []
    restarted, llm, rec = await make(["Saved it."], save_note, store=Store(db), session_name="work")
    pending = restarted.pending_tool_calls
    assert [p.tool for p in pending] == ["save_note"]
    AutoApproval.approve_all().attach(restarted.bus)
    result = await restarted.send("did you save it?")
    assert saved == ["draft"]  # asked again, approved, then run - never silently
    assert result.text == "Saved it."
    assert restarted.pending_tool_calls == []
    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)


async def test_cancelling_while_a_call_waits_for_approval_closes_it_as_interrupted():
    saved.clear()
    queue = ApprovalQueue()
    engine, *_ = await make([ScriptedReply(tool_calls=[call("save_note", text="x")])], save_note, approvals=queue)
    queue.attach(engine.bus)
    turn = asyncio.ensure_future(engine.send("save"))
    await until(lambda: queue.pending())
    await engine.cancel()
    result = await turn
    assert result.status == "cancelled" and saved == []
    last = engine.history[-1]
    assert last.role == "tool" and last.status == "interrupted"
    assert engine.store.tool_calls(engine.session_id)[0].status == "error"
    assert engine.pending_tool_calls == []


async def test_a_retry_after_a_cancelled_tool_call_runs_the_users_message_again():
    saved.clear()
    queue = ApprovalQueue()
    script = [ScriptedReply(tool_calls=[call("save_note", text="x")]), "Saved it."]
    engine, llm, rec = await make(script, save_note, approvals=queue)
    queue.attach(engine.bus)
    turn = asyncio.ensure_future(engine.send("save x"))
    await until(lambda: queue.pending())
    await engine.cancel()
    assert (await turn).status == "cancelled"
    cut = [m.id for m in engine.history[1:]]  # the assistant's call and the "cancelled" tool note

    retried = await engine.retry()
    assert retried.status == "complete" and retried.text == "Saved it."
    sent = llm.calls[-1].messages  # what the model got on the retry: the user's message last, nothing of the cut turn
    assert [(m.role, m.content) for m in sent if m.role != "system"] == [("user", "save x")]
    stored = {m.id: m for m in engine.store.messages(engine.session_id)}
    assert all(stored[i].forgotten for i in cut)  # kept in the store, marked, left out of the context
    assert [m.content for m in engine.history if m.role == "user"] == ["save x"]  # not stored twice
    assert rec.of(MessagesForgotten)[-1].message_ids == cut


async def test_fork_and_switch_model_and_retry_after_a_failure():
    engine, llm, rec = await make(["one", RuntimeError("boom"), "two"])
    first = await engine.send("first")
    failed = await engine.send("second")
    assert failed.status == "failed" and "message is kept" in failed.reason and "%llmgine" not in failed.reason
    assert rec.of(TurnFailed)[0].reason == failed.reason
    assert engine.history[-1].content == "second"  # the user's message is kept
    retried = await engine.retry()
    assert retried.text == "two"
    assert [m.content for m in engine.history if m.role == "user"] == ["first", "second"]

    old = engine.session_id
    new_id = (await engine.bus.execute(ForkSession(session_id=old, at_message_id=first.message_id))).unwrap()
    assert engine.session_id == new_id != old
    assert [m.content for m in engine.history] == ["first", "one"]


async def test_empty_message_is_refused_clearly(caplog):
    engine, llm, rec = await make(["unused"])
    result = await engine.bus.execute(SendMessage(session_id=engine.session_id, text="   "))
    turn = TurnResult.read(result.result)  # a TurnResult, or its JSON when the command crossed a wire
    assert result.success and turn.status == "failed"
    assert turn.error_kind == "input"
    assert turn.reason == "The message is empty; type something to send."
    assert "Traceback" not in caplog.text and llm.calls == []
    assert engine.history == []  # nothing stored
    retry = await engine.retry()
    assert retry.error_kind == "input" and "no earlier message" in retry.reason


async def test_two_engines_on_one_bus_keep_their_sessions_apart():
    bus = MessageBus()
    a = await ChatEngine(bus, llm=ScriptedLLM(["from a"], bus=bus)).start()
    b = await ChatEngine(bus, llm=ScriptedLLM(["from b"], bus=bus)).start()
    ra, rb = await asyncio.gather(a.send("hi a"), b.send("hi b"))
    assert (ra.text, rb.text) == ("from a", "from b")


async def test_every_event_of_a_turn_carries_the_session_id():
    engine, llm, rec = await make([ScriptedReply(tool_calls=[call("add", a=1, b=1)]), "2"], add)
    result = await engine.send("1+1?")
    turn_events = [e for e in rec.events if e.metadata.get("turn_id") == result.turn_id]
    assert len(turn_events) > 10
    assert {e.session_id for e in turn_events} == {engine.session_id}


async def test_secrets_never_reach_the_store_or_the_failure_reason(monkeypatch, tmp_path):
    key = "sk-test-SECRET-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    db = tmp_path / "secrets.db"
    script = [
        ScriptedReply(text=f"Your key is {key}", tool_calls=[call("add", a=1, b=2)]),
        RuntimeError(f"Incorrect API key provided: {key}"),
    ]
    engine, llm, rec = await make(script, add, store=Store(db))
    result = await engine.send(f"my key is {key}, keep it safe")
    assert result.status == "failed"
    assert key not in result.reason
    assert all(key not in (m.content or "") for m in engine.history)
    engine.store.close()
    assert key.encode() not in db.read_bytes()
    for extra in tmp_path.glob("secrets.db-*"):  # the WAL file too
        assert key.encode() not in extra.read_bytes()


async def test_resumed_calls_are_answered_before_the_new_message(tmp_path):
    db = tmp_path / "order.db"
    queue = ApprovalQueue()
    engine, *_ = await make(
        [ScriptedReply(tool_calls=[call("save_note", text="a")])], save_note, store=Store(db),
        session_name="order", approvals=queue,
    )
    queue.attach(engine.bus)
    turn = asyncio.ensure_future(engine.send("save a"))
    await until(lambda: queue.pending())
    restarted, llm, rec = await make(["ok"], save_note, store=Store(db), session_name="order")
    AutoApproval.approve_all().attach(restarted.bus)
    await restarted.send("and now?")
    sent = [m.role for m in llm.calls[0].messages]
    assert sent == ["user", "assistant", "tool", "user"]
    assert [m.role for m in restarted.store.messages(restarted.session_id)] == ["user", "assistant", "tool", "user", "assistant"]
    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)


async def test_a_cancel_keeps_the_results_of_calls_that_finished():
    saved.clear()
    queue = ApprovalQueue()
    engine, *_ = await make(
        [ScriptedReply(tool_calls=[call("add", a=1, b=1), call("save_note", text="x")])], add, save_note,
        approvals=queue,
    )
    queue.attach(engine.bus)
    turn = asyncio.ensure_future(engine.send("add and save"))
    await until(lambda: queue.pending() and any(m.role == "tool" for m in engine.history))
    await engine.cancel()
    assert (await turn).status == "cancelled"
    calls = {r.tool: r for r in engine.store.tool_calls(engine.session_id)}
    assert calls["add"].status == "done" and calls["add"].result == "2"  # it ran: its result is kept
    assert calls["save_note"].status == "error" and saved == []
    answers = {m.name: m for m in engine.history if m.role == "tool"}
    assert answers["add"].content == "2" and answers["save_note"].status == "interrupted"


async def test_a_second_cancel_waits_for_the_first():
    bus = MessageBus()
    recorder = Recorder(bus)
    llm = ScriptedLLM([" ".join(["word"] * 300)], bus=bus, delay_s=0.01)
    engine = await ChatEngine(bus, llm=llm).start()
    turn = asyncio.ensure_future(engine.send("talk"))
    await asyncio.sleep(0.1)
    first, second = await asyncio.gather(engine.cancel(), engine.cancel())
    result = await turn
    assert result.status == "cancelled" and first and second
    assert len(recorder.of(TurnCancelled)) == 1


async def test_reset_and_fork_are_refused_while_a_turn_runs():
    bus = MessageBus()
    llm = ScriptedLLM([" ".join(["word"] * 300)], bus=bus, delay_s=0.01)
    engine = await ChatEngine(bus, llm=llm).start()
    turn = asyncio.ensure_future(engine.send("talk"))
    await asyncio.sleep(0.05)
    refused = await bus.execute(ForkSession(session_id=engine.session_id))
    assert not refused.success and "cancel it before you fork" in refused.error
    await engine.cancel()
    await turn


async def test_structured_output_and_every_model_call_are_counted():
    class City(BaseModel):
        name: str

    engine, llm, rec = await make(['{"name": "Perth"}'])
    result = await engine.send("Largest city in WA?", response_model=City)
    assert result.usage.output_tokens > 0
    calls = engine.store.llm_calls(engine.session_id)
    assert len(calls) == 1 and calls[0].output_tokens == result.usage.output_tokens


async def test_who_decided_is_persisted():
    saved.clear()
    queue = ApprovalQueue()
    engine, *_ = await make([ScriptedReply(tool_calls=[call("save_note", text="v")]), "ok"], save_note,
                            approvals=queue)
    queue.attach(engine.bus)
    turn = asyncio.ensure_future(engine.send("save"))
    await until(lambda: queue.pending())
    await engine.bus.execute(DecideApproval(session_id=engine.session_id, call_id=queue.pending()[0].call_id,
                                            decision="approve", decided_by="ada"))
    await turn
    assert engine.store.tool_calls(engine.session_id)[0].approval.who == "ada"


def test_approvals_must_be_the_queue_itself():
    bus = MessageBus()
    with pytest.raises(TypeError, match=r"attach\(\) returns a handle"):
        ChatEngine(bus, approvals=ApprovalQueue().attach(bus))


async def test_a_cancel_before_the_turn_starts_is_not_lost():
    engine, llm, rec = await make(["never said"])
    turn = asyncio.ensure_future(engine.send("hello"))
    await asyncio.sleep(0)  # the command is being handled; the turn has not run a step yet
    assert await engine.cancel() is True
    result = await turn
    assert result.status == "cancelled" and llm.calls == []
    assert len(rec.of(TurnCancelled)) == 1


async def test_a_decision_sent_to_one_session_cannot_settle_another_sessions_call():
    saved.clear()
    bus = MessageBus()
    queue = ApprovalQueue()
    queue.attach(bus)
    tools = ToolManager([save_note], bus=bus, approval_timeout=5)
    alice = await ChatEngine(bus, tools=tools, approvals=queue, llm=ScriptedLLM(["hi"], bus=bus)).start()
    bob = await ChatEngine(
        bus, tools=tools, approvals=queue,
        llm=ScriptedLLM([ScriptedReply(tool_calls=[call("save_note", text="bob's")]), "done"], bus=bus),
    ).start()
    turn = asyncio.ensure_future(bob.send("save"))
    await until(lambda: queue.pending())
    call_id = queue.pending()[0].call_id
    refused = await bus.execute(DecideApproval(session_id=alice.session_id, call_id=call_id, decision="approve"))
    assert not refused.success and "nothing is waiting for approval" in refused.error
    assert saved == [] and queue.pending()
    accepted = await bus.execute(DecideApproval(session_id=bob.session_id, call_id=call_id, decision="approve",
                                                decided_by="bob"))
    assert accepted.success
    assert (await turn).text == "done" and saved == ["bob's"]


async def test_a_call_interrupted_by_a_restart_is_not_run_again_and_its_outcome_is_unknown(tmp_path):
    sent: list[str] = []

    @tool(risk="write", approval="never")
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return "sent"

    db = tmp_path / "interrupted.db"
    store = Store(db)
    session = store.create_session("mail")
    store.append_message(session.id, ChatMessage(role="user", content="email bob"))
    store.append_message(session.id, ChatMessage(role="assistant", tool_calls=[ToolCall.from_raw("c1", "send_email", '{"to": "bob"}')]))
    store.tool_started(session.id, "c1")  # it was running when the kernel died: it may have sent already
    restarted, llm, rec = await make(["ok"], send_email, store=store, session_name="mail")
    await restarted.send("did it go?")
    assert sent == []  # not re-run: it may have had its effect (engine/resume.py)
    record = restarted.store.tool_calls(restarted.session_id)[0]
    assert record.status == "error" and "outcome of this call is unknown" in record.error
    told = [m.content for m in restarted.history if m.role == "tool"]
    assert len(told) == 1 and "outcome of this call is unknown" in told[0]


async def test_an_idempotent_call_interrupted_by_a_restart_runs_again(tmp_path):
    looked_up: list[str] = []

    @tool(idempotent=True)
    def look_up(name: str) -> str:
        """Look a name up."""
        looked_up.append(name)
        return "found"

    store = Store(tmp_path / "interrupted.db")
    session = store.create_session("look")
    store.append_message(session.id, ChatMessage(role="user", content="find bob"))
    store.append_message(session.id, ChatMessage(role="assistant", tool_calls=[ToolCall.from_raw("c1", "look_up", '{"name": "bob"}')]))
    store.tool_started(session.id, "c1")
    restarted, llm, rec = await make(["ok"], look_up, store=store, session_name="look")
    await restarted.send("and?")
    assert looked_up == ["bob"]
    assert [m.content for m in restarted.history if m.role == "tool"] == ["found"]


async def test_a_result_recorded_before_a_restart_is_used_and_the_call_not_run_again(tmp_path):
    sent: list[str] = []

    @tool(risk="write", approval="never")
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return "sent"

    store = Store(tmp_path / "interrupted.db")
    session = store.create_session("mail")
    store.append_message(session.id, ChatMessage(role="user", content="email bob"))
    store.append_message(session.id, ChatMessage(role="assistant", tool_calls=[ToolCall.from_raw("c1", "send_email", '{"to": "bob"}')]))
    store.tool_started(session.id, "c1")
    store.tool_finished(session.id, "c1", result="sent to bob")  # recorded; the process died before the message
    restarted, llm, rec = await make(["ok"], send_email, store=store, session_name="mail")
    await restarted.send("did it go?")
    assert sent == []
    assert [m.content for m in restarted.history if m.role == "tool"] == ["sent to bob"]


async def test_a_message_to_the_old_session_after_a_reset_says_where_to_go():
    engine, *_ = await make(["one", "two"])
    await engine.send("first")
    old = engine.session_id
    new = (await engine.bus.execute(ResetSession(session_id=old))).unwrap()
    stale = await engine.bus.execute(SendMessage(session_id=old, text="hello?"))
    assert not stale.success and f"continues in session {new}" in stale.error
    assert (await engine.send("second")).text == "two" and engine.history[0].content == "second"

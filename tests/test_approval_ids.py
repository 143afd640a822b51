"""Approval ids and arguments (issue 13, items 2 and 3) and the shared approval interface.

Each test here fails on the code before display ids and argument hashes:
a provider's prefix counted towards a shortened id, a decision could not
say which arguments it was made on, arguments named like credentials were
shown (and recorded, and sent back from an edit) as "[redacted]", and who
decided was stamped onto events by the front ends.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from llmgine_nb import Event, MessageBus, ToolContext, ToolManager, tool
from llmgine_nb.engine import AnswerQuestion, ChatEngine, DecideApproval, RetryTurn
from llmgine_nb.llm import LLMAuthenticationError
from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
from llmgine_nb.notebook.transcript import Transcript
from llmgine_nb.observe.eventlog import EventLogObserver
from llmgine_nb.observe.jsonl import write_jsonl
from llmgine_nb.observe.redact import Redactor
from llmgine_nb.store import Store
from llmgine_nb.tools import (
    ApprovalDecided,
    ApprovalExpired,
    ApprovalQueue,
    ApprovalRequested,
    ChoiceRequested,
    ConfirmationRequested,
    QuestionAnswered,
    args_hash,
)
from llmgine_nb.tools.pending import DisplayIds, unique_part

ran: list[tuple[str, dict[str, Any]]] = []


@tool(risk="destructive")
def drop_table(table: str) -> str:
    """Drop a database table."""
    ran.append(("drop_table", {"table": table}))
    return f"dropped {table}"


@tool(risk="write")
def put_object(bucket: str, object_key: str, primary_key: str, token: str, headers: dict[str, str]) -> str:
    """Store an object."""
    ran.append(("put_object", {"bucket": bucket, "object_key": object_key, "primary_key": primary_key,
                               "token": token, "headers": headers}))
    return "stored"


@tool
async def pick(ctx: ToolContext) -> str:
    """Ask, then choose."""
    if not await ctx.confirm("Go on?"):
        return "stopped"
    return await ctx.choose("Which one?", ["red", "blue"]) or "none"


def call_with_id(name: str, call_id: str, **arguments: Any) -> dict[str, Any]:
    """A scripted tool call with the id a provider would give it."""
    return {**call(name, **arguments), "id": call_id}


async def until(condition: Any, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.005)


async def engine_with(script: list[Any], *tools: Any, store: Store | None = None, **options: Any) -> tuple[
        ChatEngine, ApprovalQueue, list[Event]]:
    ran.clear()
    bus = MessageBus()
    queue = ApprovalQueue()
    queue.attach(bus)
    seen: list[Event] = []
    bus.subscribe(Event, seen.append)
    engine = await ChatEngine(
        bus, store=store or Store(":memory:"), tools=ToolManager(list(tools), approval_timeout=options.pop("timeout", 5)),
        llm=ScriptedLLM(script), approvals=queue, **options,
    ).start()
    return engine, queue, seen


# -- item 2: ids that cannot pick a call the person never saw ---------------------------------


async def test_a_providers_prefix_never_counts_towards_a_shortened_id() -> None:
    """Six characters of which five are "call_" named a call on the old code; now they name nothing."""
    engine, queue, _ = await engine_with(
        [ScriptedReply(tool_calls=[call_with_id("drop_table", "call_Zk3q9v1x", table="users")]), "ok"], drop_table
    )
    turn = asyncio.ensure_future(engine.send("clean up"))
    [request] = await until(queue.pending_approvals)
    for short in ("call_Z", "call_Zk", "call_Zk3q9"):
        refused = await engine.bus.execute(DecideApproval(session_id=engine.session_id, call_id=short,
                                                          decision="approve"))
        assert not refused.success and "at least 6 characters" in refused.error
    assert queue.pending_approvals() and ran == []
    # Six characters of the unique part are enough; so is the display id on the card.
    assert unique_part(request.call_id) == "Zk3q9v1x"
    decided = await engine.bus.execute(DecideApproval(session_id=engine.session_id, call_id="Zk3q9v",
                                                      decision="deny"))
    assert decided.success
    assert (await turn).status == "complete" and ran == []


async def test_display_ids_are_unique_among_pending_and_not_reused_soon() -> None:
    calls = [call_with_id("drop_table", f"call_{n}", table=f"t{n}") for n in range(40)]
    engine, queue, seen = await engine_with([ScriptedReply(tool_calls=calls), "ok"], drop_table)
    turn = asyncio.ensure_future(engine.send("drop them all"))
    pending = await until(lambda: len(queue.pending_approvals()) == 40 and queue.pending_approvals())
    # An item is pending from its announcement on, which the queue hears before other subscribers.
    await until(lambda: len([e for e in seen if isinstance(e, ApprovalRequested)]) == 40)
    shown = [r.display_id for r in pending]
    assert len(set(shown)) == 40 and all(len(d) >= 4 for d in shown)
    # The events carry the same ids the queue accepts.
    assert sorted(e.display_id for e in seen if isinstance(e, ApprovalRequested)) == sorted(shown)
    first = pending[0]
    await engine.bus.execute(DecideApproval(session_id=engine.session_id, call_id=first.display_id, decision="deny"))
    await until(lambda: len(queue.pending_approvals()) == 39)
    # A decided call's id names nothing any more ("only among calls pending now").
    again = await engine.bus.execute(DecideApproval(session_id=engine.session_id, call_id=first.display_id,
                                                    decision="approve"))
    assert not again.success and "nothing is waiting for approval" in again.error
    queue.deny_all()
    await turn
    assert ran == []


def test_a_released_display_id_is_not_handed_out_again_at_once() -> None:
    ids = DisplayIds()
    first = ids.allocate("s", "call_1_0")
    ids.release("s", first)
    again = ids.allocate("s", "call_1_0")  # the same call id in the same session (a new reply)
    assert again != first and again.startswith(first)
    assert ids.allocate("other", "call_1_0") == first  # another session's ids are its own


# -- item 3: what is approved is exactly what runs -------------------------------------------


ARGUMENTS = {"bucket": "b1", "object_key": "reports/2026.csv", "primary_key": "id", "token": "page-2",
             "headers": {"Content-Type": "text/csv", "X-Trace": "abc"}}


async def test_arguments_named_like_credentials_show_their_real_values_in_every_sink(tmp_path) -> None:
    store = Store(tmp_path / "a.db")
    redactor = Redactor(from_environment=False)
    engine, queue, seen = await engine_with(
        [ScriptedReply(tool_calls=[call_with_id("put_object", "call_put1", **ARGUMENTS)]), "ok"], put_object,
        store=store, redactor=redactor,
    )
    observer = EventLogObserver(store, redactor=redactor).attach(engine.bus)
    transcript = Transcript("store it", redactor=redactor)
    engine.bus.subscribe(Event, transcript.apply)
    turn = asyncio.ensure_future(engine.send("store it"))
    [request] = await until(queue.pending_approvals)
    assert request.arguments == ARGUMENTS
    # The card (drawn from the event, redacted as every output is) shows every argument as it will run.
    [block] = await until(transcript.pending_approvals)  # the queue hears the announcement first
    assert block.arguments == ARGUMENTS and block.approval.display_id == request.display_id
    assert "[redacted]" not in json.dumps(block.arguments).lower()
    await engine.bus.execute(DecideApproval(session_id=engine.session_id, call_id=request.display_id,
                                            decision="approve", args_hash=request.args_hash, decided_by="ada"))
    await turn
    assert ran == [("put_object", ARGUMENTS)]
    observer.close()  # writes what it buffered
    logged = [json.dumps(e.to_record()) for e in store.events(engine.session_id)]
    assert any("put_object" in text and "reports/2026.csv" in text for text in logged), "the event log has the call"
    jsonl = tmp_path / "events.jsonl"
    write_jsonl([e for e in seen if isinstance(e, (ApprovalRequested, ApprovalDecided))], jsonl, redactor=redactor)
    for text in [jsonl.read_text(), *logged]:
        assert "[redacted]" not in text.lower(), text[:300]
    assert "reports/2026.csv" in jsonl.read_text() and "page-2" in jsonl.read_text()


async def test_an_edit_never_sends_a_marker_back_and_a_known_secret_is_hidden_by_value() -> None:
    secret = "sk-live-abcdefghijklmnop"
    redactor = Redactor([secret], from_environment=False)
    arguments = {**ARGUMENTS, "token": secret}
    engine, queue, _ = await engine_with(
        [ScriptedReply(tool_calls=[call_with_id("put_object", "call_put2", **arguments)]), "ok"], put_object,
        redactor=redactor,
    )
    transcript = Transcript("store it", redactor=redactor)
    engine.bus.subscribe(Event, transcript.apply)
    turn = asyncio.ensure_future(engine.send("store it"))
    [request] = await until(queue.pending_approvals)
    [block] = await until(transcript.pending_approvals)  # the queue hears the announcement first
    assert secret not in json.dumps(block.arguments) and block.arguments["object_key"] == "reports/2026.csv"
    # The person edits the bucket on the card; the token field goes back as it was shown (a marker).
    edited = {**block.arguments, "bucket": "b2"}
    await engine.bus.execute(DecideApproval(session_id=engine.session_id, call_id=request.display_id,
                                            decision="edit", arguments=edited, decided_by="ada"))
    await turn
    assert ran == [("put_object", {**arguments, "bucket": "b2"})], "the real token ran, not the marker"


async def test_a_decision_made_on_other_arguments_does_not_run_the_call() -> None:
    engine, queue, seen = await engine_with(
        [ScriptedReply(tool_calls=[call_with_id("drop_table", "call_drop9", table="users")]), "ok"], drop_table
    )
    turn = asyncio.ensure_future(engine.send("drop users"))
    [request] = await until(queue.pending_approvals)
    assert request.args_hash == args_hash({"table": "users"})
    stale = await engine.bus.execute(DecideApproval(
        session_id=engine.session_id, call_id=request.display_id, decision="approve",
        args_hash=args_hash({"table": "sessions"}),  # what some other card showed
    ))
    assert not stale.success and "other arguments" in stale.error
    assert queue.pending_approvals() and ran == [], "the request stays pending; nothing ran"
    ok = await engine.bus.execute(DecideApproval(session_id=engine.session_id, call_id=request.display_id,
                                                 decision="approve", args_hash=request.args_hash, decided_by="ada"))
    assert ok.success
    await turn
    assert ran == [("drop_table", {"table": "users"})]
    [decided] = [e for e in seen if isinstance(e, ApprovalDecided)]
    assert decided.decided_by == "ada" and decided.display_id == request.display_id


# -- the interface: fields, question events, commands -----------------------------------------


async def test_questions_are_announced_answered_by_command_and_say_who_answered() -> None:
    """Answered the moment it is announced: the question is already pending then (it failed 2 times in 15)."""
    engine, queue, seen = await engine_with([call_with_id("pick", "call_pick1"), "done"], pick)
    turn = asyncio.ensure_future(engine.send("pick"))
    confirm = await until(lambda: [e for e in seen if isinstance(e, ConfirmationRequested)])
    answered = await engine.bus.execute(AnswerQuestion(session_id=engine.session_id,
                                                       question_id=confirm[0].display_id, answer=True,
                                                       decided_by="ada"))
    assert answered.success
    choice = await until(lambda: [e for e in seen if isinstance(e, ChoiceRequested)])
    assert choice[0].options == ["red", "blue"] and choice[0].display_id
    await engine.bus.execute(AnswerQuestion(session_id=engine.session_id, question_id=choice[0].display_id,
                                            answer="blue", decided_by="bo"))
    await turn
    answers = [(e.answer, e.decided_by) for e in seen if isinstance(e, QuestionAnswered)]
    assert answers == [(True, "ada"), ("blue", "bo")]
    assert engine.history[-2].content == "blue"


async def test_an_approval_nobody_decides_expires_as_an_event_and_is_denied() -> None:
    engine, queue, seen = await engine_with(
        [ScriptedReply(tool_calls=[call_with_id("drop_table", "call_late1", table="users")]), "ok"], drop_table,
        timeout=0.05,
    )
    await engine.send("drop users")
    [expired] = [e for e in seen if isinstance(e, ApprovalExpired)]
    [decided] = [e for e in seen if isinstance(e, ApprovalDecided)]
    assert expired.display_id and not decided.approved and decided.source == "timeout" and ran == []


async def test_retry_is_a_command_and_front_ends_stamp_nothing() -> None:
    engine, _, seen = await engine_with([LLMAuthenticationError("refused (scripted)"), "second time"])
    assert (await engine.send("hello")).status == "failed"
    result = await engine.bus.execute(RetryTurn(session_id=engine.session_id))
    assert result.success and result.result.text == "second time"
    assert [m.content for m in engine.history] == ["hello", "second time"]
    with pytest.raises(TypeError, match="immutable"):
        seen[0].metadata["decided_by"] = "someone"

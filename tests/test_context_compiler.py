"""The context compiler: budgets, turns, tool-call groups, pinned messages, summaries, reports."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmgine_nb.chat import ChatMessage, ToolCall
from llmgine_nb.context import ContextCompiler, TokenCounter
from llmgine_nb.context.compiler import SUMMARY_PREFIX
from llmgine_nb.store import Store


def user(text, **kw):
    return ChatMessage(role="user", content=text, **kw)


def reply(text, **kw):
    return ChatMessage(role="assistant", content=text, **kw)


def turn_with_tools(i: int, n_calls: int = 2, result_size: int = 40) -> list[ChatMessage]:
    calls = [ToolCall.from_raw(f"t{i}-{k}", "lookup", f'{{"q": "{k}"}}') for k in range(n_calls)]
    return [
        user(f"question {i}"),
        ChatMessage(role="assistant", tool_calls=calls),
        *[ChatMessage(role="tool", tool_call_id=c.id, name="lookup", content="r" * result_size) for c in calls],
        reply(f"answer {i}"),
    ]


def check_tool_groups(messages: list[ChatMessage], history: list[ChatMessage] | None = None) -> None:
    """Each tool result directly follows its call (with its sibling results), and
    a call is sent with every result that the history has for it."""
    for i, m in enumerate(messages):
        if m.role == "tool":
            j = i - 1
            while j >= 0 and messages[j].role == "tool":
                j -= 1
            assert j >= 0 and m.tool_call_id in {c.id for c in messages[j].tool_calls}, (
                f"tool result {m.tool_call_id} sent without its call"
            )
    if history is None:
        return
    for i, m in enumerate(history):
        if m.role == "assistant" and m.tool_calls and m in messages:
            at = messages.index(m)
            k = i + 1
            while k < len(history) and history[k].role == "tool":
                at += 1
                assert at < len(messages) and messages[at] == history[k], "a call was sent without all its results"
                k += 1


def test_everything_fits_and_the_report_adds_up():
    history = turn_with_tools(0) + [user("and now?")]
    compiler = ContextCompiler(budget=8000)
    compiled = compiler.compile_sync(history, system="Be brief.", memory=["User likes tea"])
    assert compiled.messages[0].content == "Be brief."
    assert compiled.messages[1].content == "Things to remember:\n- User likes tea"
    assert compiled.messages[2:] == history
    report = compiled.report
    assert report.dropped == [] and report.summarised == [] and not report.over_budget
    count = compiler.counter.count
    assert report.tokens["system"] == count(compiled.messages[0])
    assert report.tokens["memory"] == count(compiled.messages[1])
    assert report.tokens["history"] == sum(count(m) for m in history)
    assert report.total == sum(count(m) for m in compiled.messages)
    assert "context:" in str(report) and report._repr_markdown_() == str(report)
    assert compiled.to_openai()[0] == {"role": "system", "content": "Be brief."}


def test_over_budget_drops_the_oldest_whole_turns():
    history = [m for i in range(30) for m in (user(f"q{i} " * 20), reply(f"a{i} " * 20))]
    compiler = ContextCompiler(budget=400)
    compiled = compiler.compile_sync(history, system="sys")
    sent = compiled.messages[1:]
    assert sent == history[-len(sent):]  # the newest, in order
    assert sent[0].role == "user"  # cut between turns
    assert compiled.report.dropped == [m.id for m in history[: len(history) - len(sent)]]
    assert compiled.report.total <= 400
    # Nothing more could have fitted: adding the previous turn would break the budget.
    previous_turn = history[len(history) - len(sent) - 2 : len(history) - len(sent)]
    assert compiled.report.total + sum(compiler.counter.count(m) for m in previous_turn) > 400


def test_a_cut_never_splits_a_turn_or_a_tool_call_from_its_results():
    # One long turn: three single calls, then one assistant message calling two
    # tools at once, then the reply.  A budget that ends inside the turn does not
    # cut it (no answer or tool result without the question that led to it):
    # the latest turn is sent whole and the report says it is over budget.
    history = [user("read the files")]
    for k in range(3):
        call = ToolCall.from_raw(f"c{k}", "read", "{}")
        history.append(ChatMessage(role="assistant", tool_calls=[call]))
        history.append(ChatMessage(role="tool", tool_call_id=call.id, name="read", content="x" * 200))
    multi = [ToolCall.from_raw("m1", "read", "{}"), ToolCall.from_raw("m2", "read", "{}")]
    history.append(ChatMessage(role="assistant", tool_calls=multi))
    history.extend(ChatMessage(role="tool", tool_call_id=c.id, name="read", content="y" * 200) for c in multi)
    history.append(reply("done"))

    counter = TokenCounter("scripted")
    tail = sum(counter.count(m) for m in history[-2:])  # the last result + the reply
    budget = tail + counter.count(history[-3]) // 2  # ends inside the multi-call group
    compiled = ContextCompiler(budget=budget, counter=counter).compile_sync(history)
    assert compiled.messages == history and compiled.report.over_budget
    assert "latest turn" in str(compiled.report)

    # With an older turn before it, the older turn goes whole, tool calls and all.
    older = turn_with_tools(0, result_size=400)
    both = older + history
    room = sum(counter.count(m) for m in history) + counter.priming + 5
    compiled = ContextCompiler(budget=room, counter=counter).compile_sync(both)
    assert compiled.messages == history and not compiled.report.over_budget
    assert compiled.report.dropped == [m.id for m in older]
    check_tool_groups(compiled.messages, both)


def test_a_summary_never_takes_the_question_of_a_kept_answer():
    # Tutorial 4's case: the budget fits only about one turn.  "Answer 8" must not
    # be sent while "Question 8" went into the summary: the latest turn stays whole.
    history = []
    for i in range(1, 9):
        history.append(user(f"Question {i}: tell me about day {i} of the trip."))
        history.append(reply(f"Answer {i}: day {i} is free."))
    summarised_batches = []

    def summarise(messages):
        summarised_batches.append([m.content for m in messages])
        return "Days 1 to 7 are free."

    for summariser in (None, summarise):
        compiled = ContextCompiler(budget=60, summariser=summariser).compile_sync(
            history, system="You are a travel assistant.", session_id="trip"
        )
        body = [m for m in compiled.messages if not m.id.startswith("llmgine-context-")]
        assert body == history[-2:]  # Question 8 and Answer 8, together
        assert any(m.role == "user" for m in compiled.messages)
    assert summarised_batches == [[m.content for m in history[:-2]]]
    assert "Question 8" not in " ".join(summarised_batches[0])


def test_a_stored_summary_ending_inside_a_turn_is_extended_to_the_turns_end():
    # Summaries stored by older versions could end inside a turn (after a question,
    # before its answer); reusing one as it is would send an answer without its question.
    history = [m for i in range(6) for m in (user(f"q{i} " * 5), reply(f"a{i} " * 5))]
    history[0] = user("q0 " * 20)  # long enough that the history after the summary fits but not all of it
    from llmgine_nb.context import InMemorySummaries

    summaries = InMemorySummaries()
    summaries.save_summary("s", history[2].id, "old summary up to q1", 3)  # q0 a0 q1: a1 left dangling
    batches = []
    compiler = ContextCompiler(budget=8000, summariser=lambda ms: batches.append(ms) or "longer summary",
                               summaries=summaries)
    # A budget just short of the whole history: everything after the stored summary
    # (a1 onwards) fits, so reusing the summary as it is would send a1 without q1.
    compiler.budget = sum(compiler.counter.count(m) for m in history) - 5
    compiled = compiler.compile_sync(history, session_id="s")
    body = [m for m in compiled.messages if not m.id.startswith("llmgine-context-")]
    assert body and body[0].role == "user"
    assert history[3] not in body  # a1 is not sent without q1
    assert batches and batches[0][0].id == "llmgine-context-summary" and batches[0][1] == history[3]


def test_pinned_messages_and_the_system_prompt_always_stay():
    history = [m for i in range(20) for m in (user(f"q{i} " * 30), reply(f"a{i} " * 30))]
    pinned = history[2].model_copy(update={"pinned": True})
    history[2] = pinned
    compiled = ContextCompiler(budget=300).compile_sync(history, system="S" * 40)
    assert compiled.messages[0].role == "system"
    assert pinned in compiled.messages
    assert compiled.messages[1] == pinned  # in its place in time: before the recent history
    assert pinned.id not in compiled.report.dropped
    assert compiled.report.tokens["pinned"] == ContextCompiler().counter.count(pinned)

    # A pinned tool call keeps its results with it.
    tools = turn_with_tools(0) + [m for i in range(10) for m in (user(f"q{i} " * 30), reply(f"a{i} " * 30))]
    tools[1] = tools[1].model_copy(update={"pinned": True})
    compiled = ContextCompiler(budget=250).compile_sync(tools)
    assert tools[1] in compiled.messages and tools[2] in compiled.messages and tools[3] in compiled.messages
    check_tool_groups(compiled.messages, tools)


def test_over_budget_is_reported_when_the_fixed_parts_do_not_fit():
    history = [user("hi"), reply("hello"), user("newest question")]
    compiled = ContextCompiler(budget=50).compile_sync(history, system="s" * 400)
    assert compiled.report.over_budget
    assert compiled.messages[0].role == "system" and compiled.messages[-1] == history[-1]
    assert "OVER BUDGET" in str(compiled.report)


def test_reserve_keeps_room_for_the_reply():
    history = [m for i in range(30) for m in (user(f"q{i} " * 20), reply(f"a{i} " * 20))]
    without = ContextCompiler(budget=1000).compile_sync(history)
    with_reserve = ContextCompiler(budget=1000, reserve=500).compile_sync(history)
    assert with_reserve.report.total <= 500 < without.report.total
    with pytest.raises(ValueError):
        ContextCompiler(budget=100, reserve=100)


async def test_summaries_replace_cut_history_and_are_stored_and_reused(tmp_path):
    store = Store(tmp_path / "ctx.db")
    session = store.create_session("long")
    seen: list[list[ChatMessage]] = []

    async def summarise(messages: list[ChatMessage]) -> str:
        seen.append(messages)
        return f"summary of {len(messages)} messages"

    history = [m for i in range(40) for m in (user(f"q{i} " * 20), reply(f"a{i} " * 20))]
    store.append_messages(session, history)
    compiler = ContextCompiler(budget=600, summariser=summarise, summaries=store)
    compiled = await compiler.compile(history, system="sys", session_id=session.id)
    report = compiled.report
    assert len(seen) == 1 and report.summary_created and not report.summary_reused
    assert compiled.messages[1].content == SUMMARY_PREFIX + f"summary of {len(seen[0])} messages"
    assert seen[0] == history[: len(seen[0])]  # the oldest messages, in order
    assert report.summarised == [m.id for m in seen[0]] and report.dropped == []
    assert compiled.messages[2:] == history[len(seen[0]) :]  # nothing lost between summary and recent history
    assert report.tokens["summary"] > 0 and report.total <= 600
    stored = store.latest_summary(session.id)
    assert stored.upto_message_id == seen[0][-1].id and stored.covered == len(seen[0])

    # Next turns reuse the stored summary while the history after it fits: no model call.
    for i in range(2):
        history += [user(f"follow-up {i}"), reply("ok")]
        again = await compiler.compile(history, system="sys", session_id=session.id)
        assert len(seen) == 1 and again.report.summary_reused
        assert again.messages[1].content == compiled.messages[1].content

    # A new compiler (a restarted kernel) finds the summary in the store.
    restarted = ContextCompiler(budget=600, summariser=summarise, summaries=Store(tmp_path / "ctx.db"))
    resumed = await restarted.compile(history, system="sys", session_id=session.id)
    assert len(seen) == 1 and resumed.report.summary_reused

    # When the history after the summary no longer fits, the summary is extended:
    # the summariser gets the previous summary first, then only the new stretch.
    history += [m for i in range(40, 60) for m in (user(f"q{i} " * 20), reply(f"a{i} " * 20))]
    extended = await compiler.compile(history, system="sys", session_id=session.id)
    assert len(seen) == 2 and extended.report.summary_created
    assert seen[1][0].role == "system" and seen[1][0].content.startswith(SUMMARY_PREFIX)
    assert seen[1][1] == history[len(seen[0])]  # continues right after the first summary
    assert store.latest_summary(session.id).covered == len(seen[0]) + len(seen[1]) - 1
    assert extended.report.total <= 600
    check_tool_groups(extended.messages, history)


def test_sync_compile_with_plain_and_async_summarisers():
    history = [m for i in range(30) for m in (user(f"q{i} " * 20), reply(f"a{i} " * 20))]
    compiled = ContextCompiler(budget=400, summariser=lambda ms: "short").compile_sync(history)
    assert compiled.report.summary_created

    async def asynchronous(ms):
        return "x"

    with pytest.raises(TypeError, match="await compiler.compile"):
        ContextCompiler(budget=400, summariser=asynchronous).compile_sync(history)
    with pytest.raises(ValueError, match="non-empty string"):
        ContextCompiler(budget=400, summariser=lambda ms: "  ").compile_sync(history)


def test_an_overlong_summary_makes_room_by_dropping_more():
    history = [m for i in range(30) for m in (user(f"q{i} " * 20), reply(f"a{i} " * 20))]
    compiled = ContextCompiler(budget=400, summariser=lambda ms: "very long summary " * 60).compile_sync(history)
    assert compiled.report.dropped  # what the summary crowded out is reported as dropped
    assert compiled.report.total <= 400
    assert compiled.messages[-1] == history[-1]


def test_second_turn_counts_only_what_is_new():
    history = [m for i in range(2000) for m in (user(f"q{i} " * 10), reply(f"a{i} " * 10))]
    compiler = ContextCompiler("scripted", budget=8000)
    compiler.compile_sync(history)
    first = compiler.counter.counted
    history += [user("new question")]
    compiler.compile_sync(history)
    assert compiler.counter.counted == first + 1


def test_real_model_budgets_use_litellm_counts():
    from llmgine_nb.llm._litellm import load_litellm

    token_counter = load_litellm().token_counter  # once litellm is loaded, its tokenizer counts

    history = [m for i in range(50) for m in (user(f"question {i} " * 10), reply(f"answer {i} " * 10))]
    compiled = ContextCompiler("gpt-4o-mini", budget=1000).compile_sync(history, system="Be brief.")
    sent = compiled.to_openai()
    assert compiled.report.total == token_counter(model="gpt-4o-mini", messages=sent)
    assert compiled.report.total <= 1000


# -- properties over random conversations ------------------------------------------------

@st.composite
def conversations(draw):
    history: list[ChatMessage] = []
    for i in range(draw(st.integers(1, 25))):
        history.append(user("u" * draw(st.integers(1, 120)), pinned=draw(st.booleans()) and draw(st.booleans())))
        for _ in range(draw(st.integers(0, 2))):
            calls = [ToolCall.from_raw(f"{i}-{len(history)}-{k}", "f", "{}") for k in range(draw(st.integers(1, 3)))]
            history.append(ChatMessage(role="assistant", tool_calls=calls, pinned=draw(st.booleans()) and draw(st.booleans())))
            answered = calls if draw(st.integers(0, 9)) else calls[:-1]  # sometimes still pending
            history.extend(ChatMessage(role="tool", tool_call_id=c.id, content="r" * draw(st.integers(0, 200))) for c in answered)
            if answered is not calls:
                break
        else:
            if draw(st.booleans()):
                history.append(reply("a" * draw(st.integers(1, 120))))
    return history


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=conversations(), budget=st.integers(20, 1500), summarise=st.booleans())
def test_compile_invariants(history, budget, summarise):
    compiler = ContextCompiler(budget=budget, summariser=(lambda ms: "summary") if summarise else None)
    compiled = compiler.compile_sync(history, system="system prompt")
    messages = compiled.messages
    assert messages[0].content == "system prompt"
    assert history[-1] in messages  # the newest message is always sent
    for m in history:
        if m.pinned:
            assert m in messages
    body = [m for m in messages if not m.id.startswith("llmgine-context-")]
    positions = [history.index(m) for m in body]
    assert positions == sorted(positions)  # history order is kept
    # No tool result without its call; a call's available results come with it.
    ids = {m.id for m in body}
    for i, m in enumerate(history):
        if m.role == "tool" and m.id in ids:
            caller = next(h for h in reversed(history[:i]) if h.role == "assistant" and h.tool_calls)
            assert caller.id in ids
        if m.role == "assistant" and m.tool_calls and m.id in ids:
            for r in history[i + 1 :]:
                if r.role != "tool":
                    break
                assert r.id in ids
    report = compiled.report
    assert report.total == sum(compiler.counter.count(m) for m in messages)
    if report.total > budget:
        # Only what is never cut may overflow: pinned units, the latest turn, the summary.
        pinned_units = compiler._pinned_units(history)
        newest = _latest_turn_start(history)
        assert all(history.index(m) in pinned_units or history.index(m) >= newest for m in body)
        assert report.over_budget
    left_out = set(report.dropped) | set(report.summarised)
    assert left_out.isdisjoint(ids)
    assert left_out | ids == {m.id for m in history}
    # Cuts fall at user messages: the latest user message is sent, the kept
    # (unpinned) history starts with a user message, and every turn is sent
    # whole or not at all (its pinned messages aside).
    check_whole_turns(history, body, compiler._pinned_units(history))


def _latest_turn_start(history):
    return max((i for i, m in enumerate(history) if m.role == "user"), default=0)


def check_whole_turns(history, body, pinned_units):
    ids = {m.id for m in body}
    assert history[_latest_turn_start(history)].id in ids
    kept = [i for i, m in enumerate(history) if i not in pinned_units and m.id in ids]
    if kept:  # the oldest kept message's question is sent too (as itself, or pinned)
        turn = max((i for i in range(kept[0] + 1) if history[i].role == "user"), default=None)
        assert turn is None or history[turn].id in ids, "kept history starts inside a turn"
    starts = [i for i, m in enumerate(history) if m.role == "user"]
    for a, b in zip(starts, starts[1:] + [len(history)]):
        sent = {history[k].id in ids for k in range(a, b) if k not in pinned_units}
        assert len(sent) <= 1, "a turn was split"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=conversations(), budget=st.integers(60, 800), summary_size=st.integers(1, 400))
def test_a_growing_conversation_keeps_every_message_accounted_for(history, budget, summary_size):
    calls = []

    def summarise(messages):
        calls.append(messages)
        return "s" * summary_size

    compiler = ContextCompiler(budget=budget, summariser=summarise)
    for n in range(1, len(history) + 1):
        prefix = history[:n]
        compiled = compiler.compile_sync(prefix, system="sys", session_id="conv")
        report = compiled.report
        body = [m for m in compiled.messages if not m.id.startswith("llmgine-context-")]
        sent = [m.id for m in body]
        assert len(sent) == len(set(sent))
        assert set(sent) | set(report.dropped) | set(report.summarised) == {m.id for m in prefix}
        assert set(sent).isdisjoint(report.summarised) and set(sent).isdisjoint(report.dropped)
        # A summary stands for the oldest (unpinned) messages: a prefix of history.
        unpinned_ids = [m.id for i, m in enumerate(prefix) if i not in compiler._pinned_units(prefix)]
        assert report.summarised == unpinned_ids[: len(report.summarised)]
        assert prefix[-1] in body
        check_tool_groups(body, prefix)
        check_whole_turns(prefix, body, compiler._pinned_units(prefix))
    # Summaries were extended, not redone from scratch: nobody is summarised twice
    # except through the previous summary passed first.
    for batch in calls[1:]:
        if batch[0].id == "llmgine-context-summary":
            batch = batch[1:]
        assert all(m.id != "llmgine-context-summary" for m in batch)
    summarised_ids = [m.id for batch in calls for m in batch if m.id != "llmgine-context-summary"]
    assert len(summarised_ids) == len(set(summarised_ids))

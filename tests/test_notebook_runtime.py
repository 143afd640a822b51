"""``NotebookRuntime``: the Python API every magic is made of, with real engines, store and tools.

The runtime runs without a kernel here (``shell`` is a namespace holder,
the "text" front end prints to stdout); the kernel and browser tests drive
the same runtime through the magics and widgets.
"""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import nbformat
import pytest
from pydantic import BaseModel

from llmgine_nb import ToolContext, tool
from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
from llmgine_nb.notebook import NotebookRuntime
from llmgine_nb.tools.commands import ChoiceRequest
from llmgine_nb.tools.pending import first_display_id

ran: list[str] = []


@tool(risk="destructive")
def remove(path: str) -> str:
    """Remove a file.

    Args:
        path: The file to remove.
    """
    ran.append(path)
    return f"removed {path}"


echoed: list[str] = []


@tool
def echo(text: str) -> str:
    """Say the text back."""
    echoed.append(text)
    return f"echo: {text}"


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@tool
async def pick_project(name: str, ctx: ToolContext) -> str:
    """Find a project by a loose name."""
    chosen = await ctx.choose(f"Which project did you mean by {name!r}?", ["Apollo", "Apogee", "Atlas"])
    return f"project {chosen}"


@pytest.fixture
def runtime(tmp_path):
    ran.clear()
    shell = SimpleNamespace(user_ns={"remove": remove, "add": add, "pick_project": pick_project})
    rt = NotebookRuntime(shell, db=tmp_path / "llmgine.db", user="ada", ui="text")
    yield rt
    rt.close()


def wait_for(condition, timeout=5.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


REMOVE = [ScriptedReply("Removing it.", [call("remove", path="a.txt")]), "Done."]


def test_ask_returns_at_once_and_wait_gives_the_result(runtime, capsys):
    runtime.use_llm(ScriptedLLM([" ".join(["word"] * 30)], delay_s=0.01))
    handle = runtime.ask("Say thirty words")
    assert not handle.done(), "the cell returns while the turn runs"
    result = handle.wait(10)
    assert result.status == "complete" and result.text.count("word") == 30
    assert handle.value == result.text
    printed = capsys.readouterr().out
    assert printed.startswith("word word") and "-- scripted · " in printed


def test_tool_runs_only_after_approve_and_the_decision_is_persisted_with_who(runtime):
    runtime.use_llm(ScriptedLLM(REMOVE))
    handle = runtime.ask("Please remove a.txt")
    request = wait_for(lambda: runtime.approvals.pending_approvals(), what="the approval request")[0]
    assert request.tool_name == "remove" and request.arguments == {"path": "a.txt"}
    time.sleep(0.1)
    assert ran == [] and not handle.done(), "nothing runs before the decision"
    with pytest.raises(LookupError, match="at least 6 characters"):
        runtime.approve(request.call_id[:6], decided_by="ada via test")  # "call_1": mostly the provider's prefix
    runtime.approve(request.display_id, decided_by="ada via test")  # the id on the card
    result = handle.wait(10)
    assert result.status == "complete" and ran == ["a.txt"]
    record = runtime.store.tool_calls(runtime.session_id)[0]
    assert record.status == "done" and record.approval.decision == "approved"
    assert record.approval.who == "ada via test"


def test_deny_with_a_reason_tells_the_model_and_the_tool_never_runs(runtime):
    llm = ScriptedLLM([call("remove", path="a.txt"), "OK, I kept it."])
    runtime.use_llm(llm)
    handle = runtime.ask("Please remove a.txt")
    request = wait_for(lambda: runtime.approvals.pending_approvals(), what="the approval request")[0]
    runtime.deny(request.call_id, "keep that file")
    assert handle.wait(10).status == "complete"
    assert ran == []
    told = llm.calls[1].messages[-1]
    assert told.role == "tool" and "keep that file" in told.content
    assert runtime.store.tool_calls(runtime.session_id)[0].approval.decision == "denied"


def test_edit_runs_the_tool_with_the_new_arguments(runtime):
    runtime.use_llm(ScriptedLLM(REMOVE))
    handle = runtime.ask("Please remove a.txt")
    request = wait_for(lambda: runtime.approvals.pending_approvals(), what="the approval request")[0]
    runtime.edit(request.call_id, {"path": "b.txt"})
    assert handle.wait(10).status == "complete"
    assert ran == ["b.txt"]
    assert runtime.store.tool_calls(runtime.session_id)[0].approval.edited_arguments == {"path": "b.txt"}


def test_always_allow_stops_asking_for_that_tool_in_the_session(runtime):
    runtime.use_llm(ScriptedLLM(REMOVE + [call("remove", path="c.txt"), "Done again."]))
    first = runtime.ask("Please remove a.txt")
    request = wait_for(lambda: runtime.approvals.pending_approvals(), what="the approval request")[0]
    runtime.always(request.call_id)
    first.wait(10)
    second = runtime.ask("And c.txt")
    assert second.wait(10).status == "complete"
    assert ran == ["a.txt", "c.txt"]


def test_a_tools_question_is_answered_by_number(runtime):
    runtime.use_llm(ScriptedLLM([call("pick_project", name="apo"), "Picked."]))
    handle = runtime.ask("Open project apo")
    question = wait_for(lambda: runtime.approvals.pending_questions(), what="the question")[0]
    assert isinstance(question, ChoiceRequest) and question.options == ["Apollo", "Apogee", "Atlas"]
    runtime.answer(question.id, "2")
    assert handle.wait(10).status == "complete"
    assert runtime.store.messages(runtime.session_id)[-2].content == "project Apogee"


def test_unknown_ids_get_a_sentence_listing_what_waits(runtime):
    runtime.use_llm(ScriptedLLM(REMOVE))
    handle = runtime.ask("Please remove a.txt")
    wait_for(lambda: runtime.approvals.pending_approvals(), what="the approval request")
    with pytest.raises(LookupError, match=rf"nothing is waiting for approval with id 'nope' \(waiting: {first_display_id('call_1_0')} \(remove\)\)"):
        runtime.approve("nope")
    # Shorter than 6 characters (the approval queue's rule) is no id, even when it fits one call.
    for short in ("", "c", "call_", "call_1"):  # "call_1": five of its six characters are the provider's prefix
        with pytest.raises(LookupError, match="nothing is waiting for approval"):
            runtime.approve(short)
    assert runtime.approvals.pending_approvals(), "nothing was approved"
    assert ran == []
    runtime.stop()
    assert handle.wait(10).status == "cancelled"


def test_a_question_is_not_answered_by_a_short_prefix(runtime):
    runtime.use_llm(ScriptedLLM([call("pick_project", name="apo"), "ok"]))
    handle = runtime.ask("open apo")
    question = wait_for(runtime.approvals.pending_questions, what="the question")[0]
    for short in ("", question.id[:5]):
        with pytest.raises(LookupError, match="a shortened id needs at least 6 characters|no question is waiting"):
            runtime.answer(short, 1)
    assert runtime.approvals.pending_questions()
    runtime.answer(question.id[:6], 2)
    assert handle.wait(10).status == "complete"
    assert "project Apogee" in handle.transcript.blocks[0].result


def test_stop_cancels_the_turn_and_keeps_the_partial_reply(runtime):
    reply = " ".join(f"w{i}" for i in range(400))
    runtime.use_llm(ScriptedLLM([reply], delay_s=0.005))
    handle = runtime.ask("Talk for a while")
    wait_for(lambda: handle.transcript.text, what="some streamed text")
    assert runtime.stop() == 1
    result = handle.wait(10)
    assert result.status == "cancelled" and 0 < len(result.text) < len(reply)
    stored = runtime.store.messages(runtime.session_id)[-1]
    assert stored.status == "interrupted" and stored.content == result.text
    assert runtime.stop() == 0


def test_a_second_question_waits_for_the_first(runtime):
    runtime.use_llm(ScriptedLLM(["one two three four five six", "second answer"], delay_s=0.01))
    first = runtime.ask("first")
    second = runtime.ask("second")
    assert second.transcript.status == "waiting"
    assert first.wait(10).text.startswith("one") and second.wait(10).text == "second answer"


def test_tools_come_from_the_notebook_namespace(runtime):
    assert runtime.refresh_tools() == ["add", "pick_project", "remove"]
    del runtime.shell.user_ns["add"]
    assert runtime.refresh_tools() == ["pick_project", "remove"]
    assert "add" not in runtime.tools
    report = runtime.list_tools()
    assert "remove" in report.text() and "destructive" in report.text() and "asks (by risk)" in report.text()
    assert "<table" in report.html() and "&quot;path&quot;" in report.html()


def test_sessions_new_resume_fork_history_and_search(runtime):
    runtime.use_llm(ScriptedLLM(lambda messages, tools: f"echo: {messages[-1].content}"))
    runtime.ask_sync("the first session talks about otters", timeout=10)
    first = runtime.session_id
    second = runtime.new_session("research")
    assert second != first and runtime.session_id == second
    runtime.ask_sync("the second one about herons", timeout=10)
    assert runtime.resume(first) == first
    assert "otters" in runtime.history().text() and "herons" not in runtime.history().text()
    assert runtime.resume("research") == second
    report = runtime.sessions()
    assert "research" in report.text() and "▶" in report.html()
    hits = runtime.search("herons")
    assert "research" in hits.text() and "<mark>" in hits.html()
    forked = runtime.fork(name="branch")
    assert forked not in (first, second) and runtime.session_id == forked
    assert "herons" in runtime.history().text()
    with pytest.raises(LookupError, match="there is no session 'nope'"):
        runtime.resume("nope")


def test_model_can_be_read_and_switched(runtime):
    runtime.use_llm(ScriptedLLM(["hi"]))
    assert runtime.model == "scripted"
    runtime.model = "scripted"
    assert runtime.model == "scripted"
    with pytest.raises(ValueError, match="give a model name"):
        runtime.set_model(" ")


class City(BaseModel):
    name: str
    population: int


def test_structured_output_and_out_variable(runtime):
    runtime.use_llm(ScriptedLLM(['{"name": "Lyon", "population": 522000}']))
    handle = runtime.ask("Largest city on the Rhône?", schema=City, out="city")
    handle.wait(10)
    assert handle.value == City(name="Lyon", population=522000)
    wait_for(lambda: "city" in runtime.shell.user_ns, what="the --out variable")
    assert runtime.shell.user_ns["city"] == City(name="Lyon", population=522000)
    with pytest.raises(ValueError, match="is not a pydantic model class"):
        runtime.ask("x", schema=dict)


def test_usage_and_log_reports(runtime):
    runtime.use_llm(ScriptedLLM(REMOVE))
    handle = runtime.ask("Please remove a.txt")
    runtime.approve(wait_for(lambda: runtime.approvals.pending_approvals())[0].call_id)
    handle.wait(10)
    usage = runtime.usage()
    assert "scripted" in usage.text() and 'class="llmgine-chart' in usage.html() and "Tokens over time" in usage.html()
    assert "<svg" not in usage.html(), "untrusted notebooks strip SVG: the charts are HTML"
    log = runtime.log()
    names = [type(e).__name__ for e in log.events]
    for expected in ("TurnStarted", "LLMCallFinished", "ApprovalRequested", "ApprovalDecided", "ToolFinished", "TurnFinished"):
        assert expected in names
    html = log.html()
    assert 'class="llmgine-chart' in html and "tool · remove" in html and "approval · remove" in html
    assert "approve by ada via Python" in log.text()
    assert [type(e).__name__ for e in log.filtered(kind="ToolFinished")] == ["ToolFinished"]
    approvals = runtime.log(types=["approval"])
    assert approvals.events and all("Approval" in type(e).__name__ for e in approvals.events)
    assert "turn 1" in approvals.html() and "tool · remove" in approvals.html(), "a filtered log keeps the timeline"
    with pytest.raises(LookupError, match=r"there is no event type like 'NoSuchType'; this session's log has .*TurnStarted"):
        runtime.log(types=["NoSuchType"])
    assert runtime.log(types=["turnfinished"]).events, "a known type is matched whatever its case"


def test_a_setting_of_the_wrong_kind_says_which_kind_in_words():
    from llmgine_nb.notebook.config import NotebookConfig

    config = NotebookConfig()
    with pytest.raises(ValueError, match="^max_steps must be an integer, not 'many'$"):
        config.set("max_steps", "many")


def test_config_keys_and_export_show_no_secrets(runtime, tmp_path, monkeypatch, capsys):
    secret = "sk-test-0123456789abcdefWXYZ"
    echoed.clear()  # the scenario also runs again on the wire (tests/test_wire_notebook.py)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("LLMGINE_API_BASE", "http://user:pw@127.0.0.1:9/v1?key=abc")
    runtime.redactor.refresh()
    # The key goes through the whole conversation: the prompt, a tool's arguments and result,
    # and the model's streamed answer.
    runtime.namespace["echo"] = echo
    runtime.use_llm(ScriptedLLM([call("echo", text=secret), f"hello, your key is {secret}."], delay_s=0.002))
    result = runtime.ask_sync(f"my key is {secret}; say it back", timeout=10)
    assert result.status == "complete" and echoed == [secret], "the tool got the real value"
    printed = capsys.readouterr().out
    assert "hello, your key is [REDACTED]." in printed and "[REDACTED]" in printed.split("hello")[0]
    assert secret not in printed, "the key reached the cell's output"
    history = runtime.history()
    assert secret not in history.text() + history.html()
    keys = runtime.keys()
    assert "sk-...WXYZ" in keys.text() and secret not in keys.text() + keys.html()
    settings = runtime.settings()
    shown = settings.text() + settings.html()
    assert "http://127.0.0.1:9/v1" in shown and "pw" not in shown and "key=abc" not in shown
    runtime.configure(format="json", updates_per_second=5)
    assert runtime.config.format == "json"
    with pytest.raises(ValueError, match="ui must be one of auto, widgets, markdown, text"):
        runtime.configure(ui="fancy")
    with pytest.raises(ValueError, match="there is no setting 'colour'"):
        runtime.configure(colour="red")
    md = runtime.export(tmp_path / "talk.md")
    assert "hello" in md.read_text() and secret not in md.read_text()
    nb = nbformat.read(str(runtime.export(tmp_path / "talk.ipynb")), as_version=4)
    assert any("hello" in cell.source for cell in nb.cells)
    assert secret not in (tmp_path / "talk.ipynb").read_text()
    with pytest.raises(ValueError, match=r"\*.ipynb or \*.md"):
        runtime.export(tmp_path / "talk.txt")


def test_bad_input_gets_a_sentence_saying_what_to_do(runtime):
    with pytest.raises(ValueError, match="there is no prompt"):
        runtime.ask("   ")
    with pytest.raises(ValueError, match="format must be one of markdown, text, code, json"):
        runtime.ask("hi", format="yaml")


def test_closing_takes_every_handler_off_the_bus(tmp_path):
    shell = SimpleNamespace(user_ns={})
    rt = NotebookRuntime(shell, db=tmp_path / "x.db", ui="text")
    rt.use_llm(ScriptedLLM(["hi"]))
    rt.ask_sync("hello", timeout=10)
    bus = rt.bus
    rt.close()
    assert not bus._command_handlers and not any(bus._subscriptions.values())
    with pytest.raises(RuntimeError, match="was closed"):
        rt.new_session()
    json.dumps(rt.config.__dict__)  # the settings stay readable


def test_the_runtime_function_is_not_shadowed_by_a_module():
    from llmgine_nb.notebook import NotebookRuntime as _loaded  # noqa: F401 - imports the module behind it
    from llmgine_nb.notebook import runtime

    assert callable(runtime) and runtime.__module__ == "llmgine_nb.notebook.extension"
    with pytest.raises(RuntimeError, match="there is no IPython shell here"):
        runtime()


def test_use_llm_while_a_turn_runs_cancels_it_and_the_runtime_keeps_working(runtime):
    runtime.use_llm(ScriptedLLM(REMOVE))
    handle = runtime.ask("remove a.txt")
    wait_for(runtime.pending, what="the approval request")
    switched = threading.Thread(target=runtime.use_llm, args=(ScriptedLLM(["other model here"]),), daemon=True)
    switched.start()
    switched.join(10)
    assert not switched.is_alive(), "use_llm hung while a turn was running"
    assert handle.wait(10).status == "cancelled" and ran == []
    assert runtime.pending() == []
    assert runtime.ask_sync("hi", timeout=10).text == "other model here"


def test_usage_never_shows_unpriced_calls_as_free(runtime):
    from llmgine_nb.chat import Usage
    from llmgine_nb.store import LLMCall

    sid = runtime.ask_sync("hello", timeout=10).session_id
    runtime.store.record_llm_call(LLMCall.from_usage("ollama/llama3", Usage(input_tokens=10, output_tokens=5)),
                                  session=sid)
    text = runtime.usage().text()
    row = next(line for line in text.splitlines() if line.startswith("ollama/llama3"))
    assert "cost unknown" in row and "$0.00" not in row
    assert "(+1 unpriced)" in text or "cost unknown" in text.splitlines()[-1]
    runtime.store.record_llm_call(LLMCall.from_usage("openai/gpt-4o-mini", Usage(input_tokens=10, output_tokens=5)),
                                  session=sid)
    runtime.store.record_llm_call(LLMCall.from_usage("openai/gpt-4o-mini", Usage(input_tokens=10, output_tokens=5),
                                                     cost=0.00004), session=sid)
    text = runtime.usage().text()
    row = next(line for line in text.splitlines() if line.startswith("openai/gpt-4o-mini"))
    assert ">= $0.00004 (+1 unpriced)" in row, "a tiny cost keeps its digits"
    assert "(+N unpriced): N model calls whose price is not known" in text, "the report explains what it shows"

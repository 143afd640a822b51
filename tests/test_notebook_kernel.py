"""``%llmgine`` in a real Jupyter kernel, driven as a notebook frontend drives it.

The offline scripted model asks for a tool defined in the notebook with an
approval policy; the test finds the approval card in the cell's outputs and
clicks its buttons by sending the comm messages the ipywidgets frontend
sends.  One kernel serves the module; each test starts its own session.
"""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from kernel_harness import WIDGET_MIME, KernelHarness, KernelRequest, offline_notebook

from llmgine_nb.tools.pending import first_display_id

# The id a card shows for the scripted model's first call (call_1_0) in a fresh session.
ID = first_display_id("call_1_0")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "llmgine.db"
    with offline_notebook(db, '''
            from llmgine_nb import tool, ToolContext
            from llmgine_nb.llm import ScriptedLLM, ScriptedReply, call
            from llmgine_nb.notebook import runtime
            rt = runtime()
            rt.configure(user="ada")
            ran = []

            @tool(risk="write", approval="always")
            def remove(path: str) -> str:
                """Remove a file.

                Args:
                    path: The file to remove.
                """
                ran.append(path)
                return f"removed {path}"

            @tool
            async def pick_project(name: str, ctx: ToolContext) -> str:
                """Find a project by a loose name."""
                chosen = await ctx.choose(f"Which project did you mean by {name!r}?", ["Apollo", "Apogee", "Atlas"])
                return f"opened {chosen}"

            def fresh(name, script, **options):
                """A new session with its own script."""
                ran.clear()
                rt.new_session(name)
                rt.use_llm(ScriptedLLM(script, **options))
    ''') as k:
        yield k


def run(kernel: KernelHarness, code: str, **kw) -> KernelRequest:
    return kernel.execute(textwrap.dedent(code), **kw)


def value(kernel: KernelHarness, expression: str):
    return json.loads(run(kernel, f"import json; print(json.dumps({expression}))").stdout)


def markdown(cell: KernelRequest) -> str:
    """The Markdown of the cell's turn output as the frontend shows it now."""
    return "".join(o["data"].get("text/markdown", "") for o in cell.outputs if "data" in o)


def turn_done(kernel: KernelHarness, cell: KernelRequest, timeout: float = 15) -> dict:
    """Wait until the turn's output is final (it carries the turn's metadata) and return it."""
    def final():
        for out in cell.outputs:
            if "llmgine" in out.get("metadata", {}):
                return out
        return None
    return kernel.wait_until(final, timeout=timeout, what="the turn's final output")


REMOVE = "[ScriptedReply('Removing it.', [call('remove', path='a.txt')]), 'Done: the file is gone.']"


def test_approve_click_runs_the_tool_only_after_the_click_while_the_kernel_stays_responsive(kernel):
    run(kernel, f"fresh('approve-click', {REMOVE})")
    cell = run(kernel, "%llmgine Please remove a.txt", timeout=10)
    assert cell.reply["status"] == "ok", "the cell returned while the turn waits"
    approve = kernel.wait_for_widget("ButtonModel", description="Approve", within=cell, timeout=10)
    assert kernel.find_widget("ButtonModel", description="Deny", within=cell)
    assert kernel.find_widget("ButtonModel", description="Edit arguments", within=cell)
    assert kernel.find_widget("ButtonModel", description="Always allow for this session", within=cell)
    card_text = " ".join(w.get("value", "") for w in kernel.find_widgets("HTMLModel", within=cell))
    assert "Approval needed" in card_text and "remove" in card_text and "write" in card_text
    assert "&quot;path&quot;: &quot;a.txt&quot;" in card_text, "the card shows the arguments"
    assert "Removing it." in json.dumps([w.outputs for w in kernel.find_widgets("OutputModel", within=cell)])

    # The kernel answers other cells while the turn waits; nothing ran yet.
    assert run(kernel, "6 * 7", timeout=5).outputs[-1]["data"]["text/plain"] == "42"
    assert value(kernel, "ran") == []

    kernel.click(approve).wait()
    final = turn_done(kernel, cell)
    assert value(kernel, "ran") == ["a.txt"]
    md = final["data"]["text/markdown"]
    assert "removed a.txt" in md and "Done: the file is gone." in md and "approved by ada via button" in md
    assert WIDGET_MIME not in final["data"], "the finished output is static Markdown"
    meta = final["metadata"]["llmgine"]
    assert meta["status"] == "complete" and meta["model"] == "scripted"
    assert meta["usage"]["input_tokens"] > 0 and meta["cost_usd"] == 0.0
    assert "-- scripted · " in final["data"]["text/plain"]
    status = [w.get("value") for w in kernel.find_widgets("HTMLModel", include_closed=True) if "Approved by ada via button" in w.get("value", "")]
    assert status, "the card showed what was decided and by whom"
    assert all(b.get("disabled") for b in kernel.find_widgets("ButtonModel", include_closed=True)
               if b.get("description") in ("Approve", "Deny") and b.model_id == approve.model_id)
    who = value(kernel, "rt.store.tool_calls(rt.session_id)[0].approval.who")
    assert who == "ada via button", "the decision is persisted with who made it"


def test_deny_click_with_a_reason(kernel):
    run(kernel, "fresh('deny-click', [call('remove', path='a.txt'), 'Understood, I kept it.'])")
    cell = run(kernel, "%llmgine Please remove a.txt")
    deny = kernel.wait_for_widget("ButtonModel", description="Deny", within=cell, timeout=10)
    reason = kernel.find_widget("TextModel", within=cell)
    kernel.set_value(reason, "it is the only copy").wait()
    kernel.click(deny).wait()
    final = turn_done(kernel, cell)
    assert value(kernel, "ran") == []
    md = final["data"]["text/markdown"]
    assert "Understood, I kept it." in md and "denied by ada via button" in md
    told = value(kernel, "rt.engine.history[-2].content")
    assert "it is the only copy" in told, "the reason went back to the model"


def test_edit_arguments_click(kernel):
    run(kernel, f"fresh('edit-click', {REMOVE})")
    cell = run(kernel, "%llmgine Please remove a.txt")
    kernel.click(kernel.wait_for_widget("ButtonModel", description="Edit arguments", within=cell, timeout=10)).wait()
    editor = kernel.find_widget("TextareaModel", within=cell)
    assert json.loads(editor.get("value")) == {"path": "a.txt"}
    kernel.set_value(editor, '{"path": "b.txt"}').wait()
    kernel.click(kernel.find_widget("ButtonModel", description="Run with these arguments", within=cell)).wait()
    final = turn_done(kernel, cell)
    assert value(kernel, "ran") == ["b.txt"]
    assert "removed b.txt" in final["data"]["text/markdown"]
    assert value(kernel, "rt.store.tool_calls(rt.session_id)[0].approval.edited_arguments") == {"path": "b.txt"}


def test_invalid_json_in_the_editor_is_explained_and_nothing_runs(kernel):
    run(kernel, f"fresh('edit-invalid', {REMOVE})")
    cell = run(kernel, "%llmgine Please remove a.txt")
    kernel.click(kernel.wait_for_widget("ButtonModel", description="Edit arguments", within=cell, timeout=10)).wait()
    kernel.set_value(kernel.find_widget("TextareaModel", within=cell), '{"path": ').wait()
    kernel.click(kernel.find_widget("ButtonModel", description="Run with these arguments", within=cell)).wait()
    errors = [w.get("value") for w in kernel.find_widgets("HTMLModel", within=cell) if "not valid JSON" in w.get("value", "")]
    assert errors and value(kernel, "ran") == []
    kernel.click(kernel.find_widget("ButtonModel", description="Deny", within=cell)).wait()
    turn_done(kernel, cell)


def test_always_allow_click_skips_the_next_approval(kernel):
    run(kernel, f"fresh('always-click', {REMOVE[:-1]}, call('remove', path='c.txt'), 'Also gone.'])")
    cell = run(kernel, "%llmgine Please remove a.txt")
    kernel.click(kernel.wait_for_widget("ButtonModel", description="Always allow for this session", within=cell, timeout=10)).wait()
    turn_done(kernel, cell)
    second = run(kernel, "%llmgine And c.txt")
    final = turn_done(kernel, second)
    assert value(kernel, "ran") == ["a.txt", "c.txt"]
    assert not kernel.find_widgets("ButtonModel", within=second), "no card the second time"
    assert "Also gone." in final["data"]["text/markdown"]


def test_choice_card_did_you_mean(kernel):
    run(kernel, "fresh('choice-click', [call('pick_project', name='apo'), 'Opened it.'])")
    cell = run(kernel, "%llmgine Open project apo")
    option = kernel.wait_for_widget("ButtonModel", description="2) Apogee", within=cell, timeout=10)
    assert kernel.find_widget("ButtonModel", description="None of these", within=cell)
    kernel.click(option).wait()
    final = turn_done(kernel, cell)
    assert "opened Apogee" in final["data"]["text/markdown"]


def test_approve_by_command_updates_the_card(kernel):
    run(kernel, f"fresh('approve-command', {REMOVE})")
    cell = run(kernel, "%llmgine Please remove a.txt")
    approve = kernel.wait_for_widget("ButtonModel", description="Approve", within=cell, timeout=10)
    answered = run(kernel, f"%llmgine approve {ID}")  # the id the card shows
    assert f"Approved remove ({ID})." in answered.stdout
    turn_done(kernel, cell)
    assert value(kernel, "ran") == ["a.txt"]
    kernel.wait_until(lambda: approve.get("disabled"), timeout=5, what="the card's buttons to be disabled")
    assert any("via %llmgine approve" in w.get("value", "") for w in kernel.find_widgets("HTMLModel", include_closed=True))


def test_stop_cancels_a_streaming_turn_and_keeps_the_partial_reply(kernel):
    run(kernel, "fresh('stop', [' '.join(f'w{i}' for i in range(300))], delay_s=0.02)")
    cell = run(kernel, "%llmgine Talk for a while")
    kernel.wait_until(lambda: "w5" in markdown(cell), timeout=10, what="some streamed text")
    stopped = run(kernel, "%llmgine stop")
    assert "Stopped the turn; the partial reply is kept" in stopped.stdout
    final = turn_done(kernel, cell)
    assert final["metadata"]["llmgine"]["status"] == "cancelled"
    md = final["data"]["text/markdown"]
    assert "w5" in md and "w299" not in md and "Stopped here - the reply above is partial." in md


def test_kernel_interrupt_during_wait_cancels_the_turn(kernel):
    run(kernel, "fresh('interrupt', [' '.join(f'w{i}' for i in range(300))], delay_s=0.02)")
    cell = kernel.submit("%llmgine --wait Talk for a while")
    kernel.wait_until(lambda: "w5" in markdown(cell), timeout=10, what="some streamed text")
    assert not cell.done, "--wait blocks the cell"
    kernel.km.interrupt_kernel()
    cell.wait(15)
    assert cell.error is None, "the interrupt cancels the turn instead of raising"
    final = turn_done(kernel, cell)
    assert final["metadata"]["llmgine"]["status"] == "cancelled"
    assert "Stopped here" in final["data"]["text/markdown"]
    assert value(kernel, "rt.last.result.status") == "cancelled"
    stored = value(kernel, "[m.status for m in rt.store.messages(rt.session_id)]")
    assert stored[-1] == "interrupted"


def test_streamed_output_updates_in_place_and_stays_within_the_rate(kernel):
    run(kernel, "fresh('stream', [' '.join(f'w{i}' for i in range(200))], delay_s=0.005)")
    started = time.monotonic()
    cell = run(kernel, "%llmgine Stream please")
    final = turn_done(kernel, cell)
    elapsed = time.monotonic() - started
    updates = [m for m in cell.messages if m["header"]["msg_type"] == "update_display_data"]
    displays = [o for o in cell.outputs if o["output_type"] == "display_data"]
    assert len(displays) == 1, "one output, updated in place"
    assert 2 <= len(updates) <= 20 * elapsed + 2
    assert "w0 w1" in final["data"]["text/markdown"] and "w199" in final["data"]["text/markdown"]


def test_wait_without_an_input_prompt_denies_instead_of_hanging(kernel):
    """A blocked cell cannot receive clicks; without stdin the approval fails closed at once."""
    run(kernel, "fresh('wait-no-stdin', [call('remove', path='a.txt'), 'Then I will leave it.'])")
    cell = run(kernel, "%llmgine --wait Please remove a.txt", timeout=20)
    final = turn_done(kernel, cell, timeout=1)
    assert value(kernel, "ran") == []
    md = final["data"]["text/markdown"]
    assert "denied by nobody (no input while waiting)" in md and "Then I will leave it." in md


def test_confirm_card_yes(kernel):
    run(kernel, '''
        @tool
        async def archive(name: str, ctx: ToolContext) -> str:
            """Archive a project."""
            if await ctx.confirm(f"Archive {name}? It disappears from the board."):
                return f"archived {name}"
            return "kept"
        fresh('confirm', [call('archive', name='Atlas'), 'All set.'])
    ''')
    cell = run(kernel, "%llmgine Archive Atlas")
    yes = kernel.wait_for_widget("ButtonModel", description="Yes", within=cell, timeout=10)
    assert kernel.find_widget("ButtonModel", description="No", within=cell)
    kernel.click(yes).wait()
    final = turn_done(kernel, cell)
    assert "archived Atlas" in final["data"]["text/markdown"]


def test_without_widgets_the_output_says_which_command_answers(kernel):
    """ui=markdown: for frontends that update outputs but render no widgets."""
    run(kernel, f"fresh('markdown-ui', {REMOVE}); rt.configure(ui='markdown')")
    try:
        cell = run(kernel, "%llmgine Please remove a.txt")
        kernel.wait_until(lambda: f"%llmgine approve {ID}" in markdown(cell), timeout=10,
                          what="the approve command in the output")
        assert not kernel.find_widgets("ButtonModel", within=cell)
        assert f"answer: %llmgine approve {ID}" in cell.outputs[0]["data"]["text/plain"]
        run(kernel, "%llmgine approve call_1_0")
        final = turn_done(kernel, cell)
        assert "removed a.txt" in final["data"]["text/markdown"]
    finally:
        run(kernel, "rt.configure(ui='auto')")


def test_kernel_interrupt_between_cells_stops_a_background_turn(kernel):
    """The ■ button while the kernel is idle and a turn streams in the background."""
    run(kernel, "fresh('interrupt-idle', [' '.join(f'w{i}' for i in range(300))], delay_s=0.02)")
    cell = run(kernel, "%llmgine Talk for a while")
    kernel.wait_until(lambda: "w5" in markdown(cell), timeout=10, what="some streamed text")
    kernel.km.interrupt_kernel()
    final = turn_done(kernel, cell)
    assert final["metadata"]["llmgine"]["status"] == "cancelled"
    assert "Stopped here" in final["data"]["text/markdown"] and "w299" not in final["data"]["text/markdown"]
    # The kernel is fine afterwards, and an interrupt with no turn running does nothing.
    assert run(kernel, "1 + 1").outputs[-1]["data"]["text/plain"] == "2"
    kernel.km.interrupt_kernel()
    time.sleep(0.3)
    assert run(kernel, "2 + 2").outputs[-1]["data"]["text/plain"] == "4"


SECRET = "sk-kernelSECRET0123456789abcdef"


def test_a_key_from_the_environment_never_reaches_an_output_or_a_widget(kernel):
    """The model is given the key as a tool argument, the tool returns it, the model repeats it
    (streamed word by word): the card, the live updates, the final output and every widget's
    state show [REDACTED] instead."""
    run(kernel, f'''
        import os
        os.environ["OPENAI_API_KEY"] = "{SECRET}"
        rt.redactor.refresh()
        fresh('secret', [ScriptedReply('Removing it.', [call('remove', path="{SECRET}")]),
                         "Your key is {SECRET} - and again {SECRET}."], delay_s=0.01)
    ''')
    try:
        cell = run(kernel, "%llmgine Please remove the key file")
        approve = kernel.wait_for_widget("ButtonModel", description="Approve", within=cell, timeout=10)
        card_text = " ".join(w.get("value", "") for w in kernel.find_widgets("HTMLModel", within=cell))
        assert "[REDACTED]" in card_text, "the card shows the argument, redacted"
        pending = run(kernel, "%llmgine pending").stdout
        assert "[REDACTED]" in pending and SECRET not in pending
        kernel.click(approve).wait()
        final = turn_done(kernel, cell)
        assert value(kernel, "ran") == [SECRET], "the tool itself got the real value"
        md = final["data"]["text/markdown"]
        assert "Your key is [REDACTED] - and again [REDACTED]." in md and "removed [REDACTED]" in md
        # Every output and widget message the kernel sent (the test's own code and prints aside).
        shown = ("display_data", "update_display_data", "execute_result", "comm_open", "comm_msg", "error")
        messages = [m["content"] for m in [m for r in kernel.requests.values() for m in r.messages] + kernel.unparented
                    if m["header"]["msg_type"] in shown] + [m["content"] for m in cell.messages]
        sent = json.dumps(messages, default=str) + json.dumps([w.state for w in kernel.widgets.values()], default=str)
        sent += json.dumps([w.captured_outputs for w in kernel.widgets.values()], default=str)
        for mime in ("text/plain", "text/markdown", "text/html", "application/vnd.jupyter.widget-view+json"):
            assert mime in sent or mime == "text/html"
        assert SECRET not in sent, "the key reached an output or a widget"
    finally:
        run(kernel, 'os.environ["OPENAI_API_KEY"] = ""; rt.redactor.refresh()')

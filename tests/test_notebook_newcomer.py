"""What a newcomer meets first, in a real kernel with no model and no key configured.

The README's examples run as written (``--model fast`` is the offline model and
says so; ``%llmgine model`` lists the aliases and how to set them), and the
offline model calls a tool the prompt writes out, so the approval card appears
with no key.  One kernel serves the module; each test starts its own session.
"""

from __future__ import annotations

import html
import json
import re
import textwrap
from pathlib import Path

import pytest
from kernel_harness import KernelHarness, KernelRequest

NO_MODEL = {"LLMGINE_MODEL": "", "LLMGINE_FAST_MODEL": "", "LLMGINE_SMART_MODEL": "", "OPENAI_API_KEY": "",
            "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "", "GOOGLE_API_KEY": "", "MISTRAL_API_KEY": "",
            "DEEPSEEK_API_KEY": ""}


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "llmgine.db"
    cwd = tmp_path_factory.mktemp("cwd")  # no .env here
    with KernelHarness(cwd=str(cwd), env={"LLMGINE_DB": str(db), **NO_MODEL}) as k:
        k.execute("%load_ext llmgine_nb")
        run(k, '''
            from llmgine_nb.notebook import runtime
            rt = runtime()
            rt.configure(user="ada")
            removed = []
        ''')
        yield k


def run(kernel: KernelHarness, code: str, **kw) -> KernelRequest:
    return kernel.execute(textwrap.dedent(code), **kw)


def value(kernel: KernelHarness, expression: str):
    return json.loads(run(kernel, f"import json; print(json.dumps({expression}))").stdout)


def define_remove(kernel: KernelHarness) -> None:
    """The README's example tool, recording what it removed (the README's own cell replaces it)."""
    run(kernel, '''
        from llmgine_nb import tool

        @tool(risk="write")
        def remove(path: str) -> str:
            """Remove a file."""
            removed.append(path)
            return f"removed {path}"
    ''')


def final_output(kernel: KernelHarness, cell: KernelRequest, timeout: float = 20) -> dict:
    def final():
        return next((o for o in cell.outputs if "llmgine" in o.get("metadata", {})), None)
    return kernel.wait_until(final, timeout=timeout, what="the turn's final output")


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_notebook_cells() -> list[str]:
    """The code cells of the README's "In a notebook" section, in order."""
    text = README.read_text()
    section = text[text.index("## In a notebook"):text.index("### Secrets")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_notebook_examples_run_as_written_with_no_key(kernel):
    cells = readme_notebook_cells()
    assert any("--model fast" in c for c in cells) and any("remove(path=" in c for c in cells)
    run(kernel, "rt.new_session('readme')")
    turns = []
    for code in cells:
        cell = run(kernel, code, timeout=30)
        assert cell.error is None, f"the README cell {code!r} failed: {cell.text}"
        if code.lstrip().startswith("%llmgine") or code.startswith("%%llmgine"):
            if "remove(path=" in code:  # the offline model calls the tool: approve it on its card
                kernel.click(kernel.wait_for_widget("ButtonModel", description="Approve", within=cell, timeout=15)).wait()
            turns.append(final_output(kernel, cell))
    assert [t["metadata"]["llmgine"]["status"] for t in turns] == ["complete"] * 4
    assert all(t["metadata"]["llmgine"]["model"] == "scripted" for t in turns)
    capital, summary, tidy, plot = (t["data"]["text/plain"] for t in turns)
    assert "It received 1 image: fig (PNG " in plot, "the figure reached the model as an image"
    assert 'You said: "What is the capital of Western Australia?"' in capital
    assert "No model is configured for the alias 'fast', so the offline model 'scripted' answers" in summary
    assert "LLMGINE_FAST_MODEL" in summary and "Perth" in summary, "the DataFrame reached the prompt"
    assert 'The tool answered: remove returned "removed notes.txt".' in tidy


def test_llmgine_model_lists_the_aliases_and_how_to_set_them(kernel):
    text = run(kernel, "%llmgine model").text
    assert "fast" in text and "smart" in text and "scripted" in text
    assert "LLMGINE_FAST_MODEL" in text and "LLMGINE_SMART_MODEL" in text
    assert "the offline model (nothing configured)" in text


def test_the_offline_model_calls_a_tool_only_after_the_card_is_approved(kernel):
    define_remove(kernel)
    run(kernel, "rt.new_session('offline-tool'); removed.clear()")
    cell = run(kernel, '%llmgine Tidy up: remove(path="notes.txt")', timeout=10)
    approve = kernel.wait_for_widget("ButtonModel", description="Approve", within=cell, timeout=15)
    card = " ".join(w.get("value", "") for w in kernel.find_widgets("HTMLModel", within=cell))
    assert "Approval needed" in card and "notes.txt" in card
    assert value(kernel, "removed") == []
    kernel.click(approve).wait()
    out = final_output(kernel, cell)
    assert value(kernel, "removed") == ["notes.txt"]
    md = out["data"]["text/markdown"]
    assert "Calling <code>remove" in md or "Calling `remove(path=\"notes.txt\")`" in md
    assert 'remove returned "removed notes.txt"' in md


# -- item 5: what errors, costs and stops say ---------------------------------------------------


def fresh(kernel: KernelHarness, name: str, script: str, **options: str) -> None:
    extra = "".join(f", {k}={v}" for k, v in options.items())
    run(kernel, f"""
        from llmgine_nb.llm import ScriptedLLM, ScriptedReply, call, LLMServerError, LLMRateLimitError
        from llmgine_nb.llm.errors import MissingAPIKeyError
        rt.new_session({name!r}); rt.use_llm(ScriptedLLM({script}{extra}))
    """)


@pytest.mark.parametrize(("error", "heading"), [
    ("LLMRateLimitError('slow down', status_code=429)", "Rate limited: the model provider is limiting requests"),
    ("LLMServerError('boom', status_code=500)", "Server error: the model's server failed on its side."),
    ("MissingAPIKeyError('No API key was found for openai: set OPENAI_API_KEY in the environment or a .env file')",
     "No API key is set for this model's provider."),
])
def test_a_failed_turn_is_headed_by_what_failed_and_its_markdown_renders(kernel, error, heading):
    fresh(kernel, f"fail-{heading[:5]}", f"[{error}]")
    out = final_output(kernel, run(kernel, "%llmgine --wait hello"))
    md = html.unescape(out["data"]["text/markdown"])
    assert heading in md and "The turn failed." not in md
    assert "<code>%llmgine retry</code>" in md and "`" not in md.split("</div>")[1], "backticks render as code"
    assert "cost unknown" not in out["data"]["text/plain"] and "$0.00" in out["data"]["text/plain"]


def test_stopping_before_anything_arrived_says_nothing_is_kept_and_the_offline_model_stays_free(kernel):
    fresh(kernel, "stop-early", "['a' * 50 + ' ' + 'word ' * 300]", delay_s="3")
    cell = run(kernel, "%llmgine Talk for a while")
    stopped = run(kernel, "%llmgine stop", timeout=20)
    assert "nothing had arrived, so nothing is kept" in stopped.stdout and "is kept, marked" not in stopped.stdout
    text = final_output(kernel, cell)["data"]["text/plain"]
    assert "-- stopped · scripted" in text and "cost unknown" not in text and "$0.00" in text
    assert value(kernel, "rt.last.result.reason").endswith("nothing had arrived, so nothing is kept.")
    sessions = run(kernel, "%llmgine sessions").text
    assert "stop-early" in sessions and "cost unknown" not in sessions


def test_stopping_mid_reply_is_free_on_the_offline_model_and_counts_the_tokens(kernel):
    fresh(kernel, "stop-late", "[' '.join(f'w{i}' for i in range(300))]", delay_s="0.02")
    cell = run(kernel, "%llmgine Talk for a while")
    kernel.wait_until(lambda: "w5" in "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
                      or "w5" in json.dumps([w.outputs for w in kernel.find_widgets("OutputModel", within=cell)]),
                      timeout=10, what="some streamed text")
    assert "the partial reply is kept" in run(kernel, "%llmgine stop", timeout=20).stdout
    text = final_output(kernel, cell)["data"]["text/plain"]
    assert "cost unknown" not in text and "0 in / 0 out" not in text and "$0.00" in text
    assert "cost unknown" not in run(kernel, "%llmgine sessions").text


def test_an_unknown_variable_in_a_prompt_warns(kernel):
    fresh(kernel, "missing-var", "")
    out = final_output(kernel, run(kernel, "%llmgine --wait Summarise {no_such_table} please"))
    text = out["data"]["text/plain"]
    assert "`{no_such_table}` is not a variable in this notebook, so it was sent as typed" in text
    assert "{{no_such_table}}" in text and 'You said: "Summarise {no_such_table} please"' in text
    quiet = final_output(kernel, run(kernel, "%llmgine --wait Braces {{like_this}} are literal"))
    assert "is not a variable" not in quiet["data"]["text/plain"]


def test_out_on_a_failed_turn_leaves_the_variable_undefined_and_says_so(kernel):
    fresh(kernel, "out-fail", "['first answer', LLMServerError('boom', status_code=500)]")
    final_output(kernel, run(kernel, "%llmgine --wait -o ans first"))
    assert value(kernel, "ans") == "first answer"
    out = final_output(kernel, run(kernel, "%llmgine --wait -o ans second"))
    assert "`ans` was not set: the turn failed" in out["data"]["text/plain"]
    assert value(kernel, "'ans' in globals()") is False, "no '' and no stale answer"


def test_an_approval_with_edited_arguments_says_approved_with_edits(kernel):
    define_remove(kernel)
    fresh(kernel, "edited", "")
    cell = run(kernel, '%llmgine remove(path="a.txt")')
    kernel.wait_for_widget("ButtonModel", description="Approve", within=cell, timeout=15)
    pending = value(kernel, "rt.pending()[0].display_id")
    run(kernel, f'%llmgine edit {pending} {{"path": "b.txt"}}')
    md = html.unescape(final_output(kernel, cell)["data"]["text/markdown"])
    assert "approved with edits by ada" in md and "Approved with edits by ada via %llmgine edit" in md
    assert value(kernel, "removed")[-1] == "b.txt"

"""What a newcomer meets first, in a real kernel with no model and no key configured.

The README's examples run as written (``--model fast`` is the offline model and
says so; ``%llmgine model`` lists the aliases and how to set them), and the
offline model calls a tool the prompt writes out, so the approval card appears
with no key.  One kernel serves the module; each test starts its own session.
"""

from __future__ import annotations

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
    run(kernel, '''
        @tool(risk="write")
        def remove(path: str) -> str:
            """Remove a file."""
            removed.append(path)
            return f"removed {path}"
        rt.new_session('offline-tool'); removed.clear()
    ''')
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

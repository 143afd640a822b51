"""Notebooks with ``%llmgine --wait`` cells pass nbval, which the tutorials run under.

nbval records the outputs a cell sends and ignores later updates, so a
blocking turn ends with its answer as an output of its own.  The notebook is
executed once with nbclient (as saving it from JupyterLab would), then
checked with ``pytest --nbval`` in a fresh process - and a changed answer
must make that check fail.
"""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from llmgine_nb.notebook.render import NBVAL_SANITIZE

SETUP = '''\
from llmgine_nb import tool
from llmgine_nb.llm import ScriptedLLM, ScriptedReply, call
from llmgine_nb.notebook import runtime

@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b

runtime().use_llm(ScriptedLLM([
    ScriptedReply("Let me add them.", [call("add", a=2, b=2)]),
    "**2 + 2 = 4**",
    '{"colours": ["red", "green", "blue"]}',
]))
'''

CELLS = [
    "%load_ext llmgine_nb",
    SETUP,
    "%%llmgine --wait\nWhat is 2 + 2? Use the tool.",
    "%llmgine --wait --format json List three colours as JSON",
]


def run_nbval(path, tmp_path) -> subprocess.CompletedProcess:
    sanitize = tmp_path / "sanitize.cfg"
    sanitize.write_text(NBVAL_SANITIZE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, LLMGINE_DB=str(tmp_path / "check.db"), LLMGINE_MODEL="", OPENAI_API_KEY="")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(sanitize), str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )


def test_wait_cells_pass_nbval_and_a_changed_answer_fails_it(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    monkeypatch.setenv("LLMGINE_DB", str(tmp_path / "reference.db"))
    monkeypatch.setenv("LLMGINE_MODEL", "")
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    answer = [o for o in nb.cells[2].outputs if o.get("data")]
    assert len(answer) == 1, "one output with data: the answer (the live output ended empty)"
    assert "**2 + 2 = 4**" in answer[0]["data"]["text/markdown"]
    assert '[tool] add(a=2, b=2) - ok' in answer[0]["data"]["text/plain"]
    assert answer[0]["metadata"]["llmgine"]["status"] == "complete"
    colours = [o for o in nb.cells[3].outputs if o.get("data")][0]["data"]
    assert colours["application/json"] == {"colours": ["red", "green", "blue"]}

    path = tmp_path / "turns.ipynb"
    nbformat.write(nb, str(path))
    checked = run_nbval(path, tmp_path)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert "4 passed" in checked.stdout

    answer[0]["data"]["text/plain"] = answer[0]["data"]["text/plain"].replace("ok", "failed")
    nbformat.write(nb, str(path))
    changed = run_nbval(path, tmp_path)
    assert changed.returncode != 0 and "1 failed" in changed.stdout

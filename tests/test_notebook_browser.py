"""The approval card in a real JupyterLab, clicked with the mouse in Debian's chromium.

Needs chromium, playwright and jupyterlab (``.ci/install-browser.sh``); the
screenshots are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import re

from browser_harness import ChromiumBrowser, JupyterLabServer, browser_marks, write_notebook

pytestmark = browser_marks()

SETUP = '''\
from llmgine_nb import tool
from llmgine_nb.llm import ScriptedLLM, ScriptedReply, call
from llmgine_nb.notebook import runtime

removed = []

@tool(risk="destructive")
def remove_file(path: str) -> str:
    """Remove a file from the project folder.

    Args:
        path: The file to remove, relative to the project.
    """
    removed.append(path)
    return f"removed {path}"

rt = runtime()
rt.configure(user="ada")
rt.use_llm(ScriptedLLM([
    ScriptedReply("I found the old draft. Removing **drafts/old.md** needs your approval:",
                  [call("remove_file", path="drafts/old.md")]),
    "Done: the old draft is gone. The other drafts are untouched.",
], delay_s=0.08))
'''


RUN_LAST_CELL = """
async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  panel.content.activeCellIndex = panel.content.widgets.length - 1;
  await app.commands.execute('notebook:run-cell');
}
"""


def test_approve_button_in_jupyterlab_runs_the_tool_and_shows_the_result(tmp_path):
    write_notebook(tmp_path, "approval.ipynb", [
        "%load_ext llmgine_nb",
        SETUP,
        "%llmgine Please clean up the old draft",
        "print('removed so far:', removed)",
    ])
    env = {"LLMGINE_DB": str(tmp_path / "llmgine.db"), "LLMGINE_MODEL": "", "OPENAI_API_KEY": ""}
    with JupyterLabServer(tmp_path, env=env) as server, ChromiumBrowser(viewport=(1280, 1000)) as browser:
        nb = browser.open_notebook(server, "approval.ipynb")
        nb.page.evaluate("async () => { await window.jupyterapp.commands.execute('application:toggle-left-area'); }")
        nb.run_all_cells()
        nb.wait_for_text("removed so far: []")  # every cell ran; the turn waits for the click
        nb.button("Approve").wait_for(state="visible")
        nb.page.locator(".llmgine-card").scroll_into_view_if_needed()
        waiting = nb.screenshot("notebook-approval-card")

        nb.click_button("Approve")
        decided = nb.page.locator(".llmgine-card").get_by_text(re.compile(r"Approved by ada via button at"))
        decided.wait_for(state="visible")
        assert nb.button("Approve").is_disabled() and nb.button("Deny").is_disabled()
        nb.screenshot("notebook-approval-decided")
        nb.wait_for_text("Done: the old draft is gone. The other drafts are untouched.")
        page_text = nb.page.locator(".jp-OutputArea").all_inner_texts()
        joined = "\n".join(page_text)
        assert "approved by ada via button" in joined
        assert "remove_file(path=\"drafts/old.md\")" in joined
        done = nb.screenshot("notebook-approval-done")

        # The kernel saw the click: the tool ran exactly once.  Run the last cell again.
        nb.page.evaluate(RUN_LAST_CELL)
        nb.wait_for_text("removed so far: ['drafts/old.md']", timeout_ms=30_000)
    assert waiting.stat().st_size > 10_000 and done.stat().st_size > 10_000

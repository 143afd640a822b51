"""The wire test for the notebook runtime: its scenarios again, every message crossing as JSON.

tests/test_notebook_runtime.py runs unchanged, except that the runtime's bus
(and any bus a test makes) is a ``WireBus`` (tests/wire.py): asking,
retrying, approving and answering from Python and from cards, questions,
cancelling, structured output into a variable, sessions and reports - all
through messages rebuilt from their JSON text before anyone sees them.
"""

from __future__ import annotations

import pytest
import test_notebook_runtime
from test_notebook_runtime import *  # noqa: F403 - the scenarios, collected again in this module
from wire import rerun_on_the_wire


@pytest.fixture(autouse=True)
def on_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    rerun_on_the_wire(test_notebook_runtime, monkeypatch)


def test_a_runtime_turn_with_an_approval_really_crosses_the_wire(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
    from llmgine_nb.notebook import NotebookRuntime
    from llmgine_nb.tools import tool

    made = rerun_on_the_wire(test_notebook_runtime, monkeypatch)
    removed: list[str] = []

    @tool(risk="destructive")
    def remove(path: str) -> str:
        """Remove a file."""
        removed.append(path)
        return f"removed {path}"

    runtime = NotebookRuntime(db=tmp_path / "w.db", ui="text")
    try:
        runtime.tools.register(remove)
        runtime.use_llm(ScriptedLLM([ScriptedReply("Removing.", [call("remove", path="a.txt")]), "Done."]))
        handle = runtime.ask("remove a.txt", display=False)
        request = test_notebook_runtime.wait_for(lambda: runtime.approvals.pending_approvals(), what="approval")[0]
        runtime.approve(request.display_id, decided_by="ada")
        assert handle.wait(10).text == "Done." and removed == ["a.txt"]
        [bus] = made
        for kind in ("SendMessage", "RequestApproval", "DecideApproval", "ApprovalRequested", "ApprovalDecided",
                     "TurnFinished", "CommandResult"):
            assert bus.crossed[kind] > 0, kind
        record = runtime.store.tool_calls(runtime.session_id)[-1]
        assert record.approval.who == "ada"
    finally:
        runtime.close()

"""run_python in the kernel (the explicit in_kernel=True opt-in): only approved code runs, in the namespace chosen.

The default, a separate worker process, is tested in test_tools_python_worker.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmgine_nb import MessageBus
from llmgine_nb.chat import ToolCall
from llmgine_nb.tools import ApprovalDecided, ApprovalDecision, AutoApproval, RequestApproval, ToolManager, python_tool, run_code
from llmgine_nb.tools.python import IN_KERNEL_WARNING, code_card


def code_call(code: str, id: str = "p1") -> ToolCall:
    return ToolCall.from_raw(id, "run_python", json.dumps({"code": code}))


def setup(answer, namespace=None, approval_timeout=5.0, **tool_options):
    bus = MessageBus()
    requests: list[RequestApproval] = []

    async def front_end(request):
        requests.append(request)
        value = answer(request) if callable(answer) else answer
        if value == "sleep":
            await asyncio.sleep(10)
        if value == "raise":
            raise RuntimeError("no front end")
        return value

    bus.register_command_handler(RequestApproval, front_end)
    tool = python_tool(namespace, in_kernel=True, **tool_options)
    manager = ToolManager([tool], bus=bus, approval_timeout=approval_timeout)
    return manager, tool, requests


# -- what comes back -------------------------------------------------------------------


async def test_stdout_and_the_last_expression_come_back_and_the_namespace_is_the_users():
    user_ns = {"prices": [3, 4]}
    manager, tool, requests = setup(ApprovalDecision.approve(), user_ns)
    result = await manager.execute_one(code_call("total = sum(prices)\nprint('adding', len(prices))\ntotal * 10"))
    assert (result.status, result.content) == ("ok", "stdout:\nadding 2\nresult: 70")
    assert result.value == {"stdout": "adding 2\n", "stderr": "", "result": "70", "error": None}
    assert user_ns["total"] == 7 and tool.namespace is user_ns  # the notebook sees what the code made


async def test_a_fresh_namespace_is_kept_between_calls():
    manager, tool, requests = setup("approve")
    await manager.execute_one(code_call("x = 41", "p1"))
    result = await manager.execute_one(code_call("x + 1", "p2"))
    assert result.content == "result: 42" and tool.namespace["x"] == 41
    assert "prices" not in tool.namespace


async def test_exceptions_come_back_with_type_message_and_a_short_traceback():
    manager, tool, requests = setup("approve")
    result = await manager.execute_one(code_call("print('before')\ndef f(n):\n    return 10 / n\nf(0)"))
    assert result.status == "error" and result.is_error
    error = result.value["error"]
    assert (error["type"], error["message"]) == ("ZeroDivisionError", "division by zero")
    assert result.value["stdout"] == "before\n"
    trace = error["traceback"]
    assert trace.startswith("Traceback (most recent call last):")
    assert "line 4, in <module>" in trace and "line 3, in f" in trace and "return 10 / n" in trace
    assert "llmgine_nb" not in trace  # only the model's own frames
    assert result.content.startswith("stdout:\nbefore\nTraceback")


async def test_syntax_errors_and_exit_are_reported_not_raised():
    manager, tool, requests = setup("approve")
    bad = await manager.execute_one(code_call("def (:", "p1"))
    assert bad.value["error"]["type"] == "SyntaxError"
    leave = await manager.execute_one(code_call("raise SystemExit(3)", "p2"))
    assert leave.value["error"]["type"] == "SystemExit"


async def test_a_timeout_stops_waiting():
    release = threading.Event()
    manager, tool, requests = setup("approve", {"release": release}, timeout=0.05)
    result = await manager.execute_one(code_call("release.wait(5)"))
    assert result.status == "timeout"
    release.set()  # let the abandoned thread end, and wait until it has put sys.stdout back
    for _ in range(500):
        if not type(sys.stdout).__name__.startswith("_ThreadRouter"):
            break
        await asyncio.sleep(0.01)
    manager.close()


def test_output_of_concurrent_runs_and_other_threads_stays_apart(capsys):
    results = {}
    go = threading.Barrier(3, timeout=5)

    def runner(tag):
        go.wait()
        results[tag] = run_code(f"for i in range(200):\n    print('{tag}', end='')", {})

    threads = [threading.Thread(target=runner, args=(tag,)) for tag in "ab"]
    for t in threads:
        t.start()
    go.wait()
    print("kernel output")  # another thread, not capturing
    for t in threads:
        t.join()
    assert results["a"]["stdout"] == "a" * 200 and results["b"]["stdout"] == "b" * 200
    assert "kernel output" in capsys.readouterr().out
    assert not type(sys.stdout).__name__.startswith("_ThreadRouter")


# -- approval is always asked and shows the code -------------------------------------------


async def test_the_approval_request_shows_the_code():
    manager, tool, requests = setup("approve")
    code = "import os\nos.listdir('.')"
    await manager.execute_one(code_call(code))
    [request] = requests
    assert request.preview == code_card(code, IN_KERNEL_WARNING) and request.arguments == {"code": code}
    assert request.preview.startswith("IN THE KERNEL") and "can change anything" in request.preview
    assert request.preview.endswith("1 | import os\n2 | os.listdir('.')")
    assert (request.risk, request.allow_always) == ("destructive", False)
    assert manager["run_python"].concurrent is False


def test_its_approval_rules_cannot_be_loosened():
    manager = ToolManager()
    with pytest.raises(ValueError, match="does not allow changing approval"):
        manager.register(python_tool(), approval="never")
    with pytest.raises(ValueError, match="does not allow changing"):
        python_tool().with_options(remember_approval=True)


def test_its_card_and_running_alone_cannot_be_changed_either():
    manager = ToolManager()
    with pytest.raises(ValueError, match="does not allow changing preview"):
        manager.register(python_tool(), preview=lambda arguments: "prints hello")
    with pytest.raises(ValueError, match="does not allow changing concurrent"):
        manager.register(python_tool(), concurrent=True)
    with pytest.raises(ValueError, match="does not allow changing concurrent, preview"):
        python_tool().with_options(concurrent=True, preview=str)
    assert manager.names == []
    kept = manager.register(python_tool(), concurrent=False, timeout=5)  # restating a rule is fine
    assert (kept.concurrent, kept.timeout) == (False, 5) and kept.preview({"code": "1 + 1"}).endswith("\n1 | 1 + 1")


def test_its_permissions_are_a_collection_of_strings():
    assert python_tool(permissions={"code:run"}).permissions == frozenset({"code:run"})
    with pytest.raises(TypeError, match="not one string"):
        python_tool(permissions="code:run")  # not split into {'c', 'o', 'd', ...}


@pytest.mark.parametrize(
    "answer",
    [ApprovalDecision.deny(), ApprovalDecision.deny("no shell"), "sleep", "raise", True, "yes", None, {"kind": "edit"},
     ApprovalDecision.edit({"code": 5})],
    ids=["deny", "deny-message", "timeout", "handler-error", "true", "yes", "none", "edit-no-code", "edit-invalid"],
)
async def test_unapproved_code_never_runs(answer):
    ns: dict = {}
    manager, tool, requests = setup(answer, ns, approval_timeout=0.05)
    result = await manager.execute_one(code_call("ran = True"))
    assert "ran" not in ns and result.status in ("denied", "invalid") and "not run" in result.content


async def test_no_front_end_means_the_code_does_not_run():
    ns: dict = {}
    manager = ToolManager([python_tool(ns, in_kernel=True)], bus=MessageBus())
    result = await manager.execute_one(code_call("ran = True"))
    assert "ran" not in ns and result.status == "denied"
    manager = ToolManager([python_tool(ns, in_kernel=True)])  # no bus at all
    await manager.execute_one(code_call("ran = True"))
    assert "ran" not in ns


async def test_always_approves_only_the_code_shown():
    ns: dict = {"hits": []}
    answers = iter([ApprovalDecision.always(), ApprovalDecision.deny()])
    manager, tool, requests = setup(lambda r: next(answers), ns)
    await manager.execute_one(code_call("hits.append(1)", "p1"))
    second = await manager.execute_one(code_call("hits.append(2)", "p2"))
    assert ns["hits"] == [1] and second.status == "denied" and len(requests) == 2


async def test_edited_code_is_what_runs():
    ns: dict = {}
    manager, tool, requests = setup(ApprovalDecision.edit({"code": "answer = 'edited'"}), ns)
    result = await manager.execute_one(code_call("answer = 'original'"))
    assert ns["answer"] == "edited" and result.status == "ok"


ANSWERS = {
    "approve": ApprovalDecision.approve(),
    "always": ApprovalDecision.always(),
    "deny": ApprovalDecision.deny(),
    "sleep": "sleep",
    "raise": "raise",
    "true": True,
    "word": "ok",
}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(ANSWERS)), min_size=1, max_size=8))
def test_run_python_runs_exactly_the_approved_pieces_of_code(answers):
    async def scenario():
        ns: dict = {"hits": []}
        plan = iter(answers)
        manager, tool, requests = setup(lambda r: ANSWERS[next(plan)], ns, approval_timeout=0.05)
        decided: dict[str, ApprovalDecided] = {}
        manager.bus.subscribe(ApprovalDecided, lambda e: decided.__setitem__(e.call_id, e))
        for i in range(len(answers)):
            await manager.execute_one(code_call(f"hits.append({i})", f"p{i}"))
        assert len(requests) == len(answers)  # asked every time, "always" included
        approving = [i for i, a in enumerate(answers) if a in ("approve", "always")]
        # exactly the code whose approval went through ran; only approving answers approve ...
        assert ns["hits"] == [i for i in range(len(answers)) if decided[f"p{i}"].approved]
        assert set(ns["hits"]) <= set(approving)
        # ... and each of them does, unless the machine stalled it past the approval timeout
        assert all(decided[f"p{i}"].approved or decided[f"p{i}"].source == "timeout" for i in approving)

    asyncio.run(scenario())


async def test_an_auto_policy_can_approve_it_for_scripts():
    bus = MessageBus()
    AutoApproval(lambda request: "import" not in request.preview).attach(bus)
    ns: dict = {}
    manager = ToolManager([python_tool(ns, in_kernel=True)], bus=bus)
    ok, refused = await manager.execute([code_call("a = 1", "p1"), code_call("import os", "p2")])
    assert (ok.status, refused.status) == ("ok", "denied") and ns["a"] == 1 and "os" not in ns

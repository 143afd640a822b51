"""Code calling runs out of process (issue 13, item 5).

``python_tool()`` runs approved code in a separate worker process: a timeout
really stops it (nothing it planned happens afterwards), it has a memory
limit, and it cannot reach the engine's objects (tools, approval policies,
keys, the store).  Values are shared explicitly; results come back as text,
JSON and PNG images.  The card shows the exact code, control characters
escaped, every line numbered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from llmgine_nb import MessageBus
from llmgine_nb.chat import ToolCall
from llmgine_nb.tools import ApprovalDecision, RequestApproval, ToolManager, python_tool, tool
from llmgine_nb.tools.python import code_card

SECRET = "sk-live-do-not-leak-0123456789abcdef"


def code_call(code: str, id: str = "p1", name: str = "run_python") -> ToolCall:
    return ToolCall.from_raw(id, name, json.dumps({"code": code}))


@tool(risk="destructive")
def delete_everything() -> str:
    """Delete everything (a risky tool that must always ask)."""
    return "deleted"


@pytest.fixture
def approving():
    """A bus whose front end approves run_python and denies everything else, recording each request."""
    bus = MessageBus()
    asked: list[RequestApproval] = []

    async def front_end(request: RequestApproval):
        asked.append(request)
        return ApprovalDecision.approve() if request.tool_name == "run_python" else ApprovalDecision.deny()

    bus.register_command_handler(RequestApproval, front_end)
    return bus, asked


@pytest.fixture
def made(tmp_path):
    made = []

    def make(**options):
        options.setdefault("workdir", tmp_path / "work")
        t = python_tool(**options)
        made.append(t)
        return t

    yield make
    for t in made:
        t.worker.stop()


async def test_a_timeout_kills_the_code_so_it_never_acts_afterwards(approving, made, tmp_path):
    bus, asked = approving
    runner = made(timeout=0.5)
    manager = ToolManager([runner], bus=bus)
    code = "import time\ntime.sleep(1.5)\nopen('written-late.txt', 'w').write('too late')"
    result = await manager.execute_one(code_call(code))
    assert result.status == "error" and "did not finish within 0.5 s" in result.content
    await asyncio.sleep(2.0)  # longer than the code would have slept
    assert not (tmp_path / "work" / "written-late.txt").exists()
    after = await manager.execute_one(code_call("1 + 1", "p2"))
    assert after.status == "ok" and "result: 2" in after.content and "variables made by earlier code are gone" in after.content


async def test_runaway_snippets_do_not_use_up_the_tool_threads(approving, made):
    bus, asked = approving
    manager = ToolManager([made(timeout=0.3), delete_everything], bus=bus, max_workers=2)
    for i in range(4):  # twice the thread pool: each is stopped, its thread freed
        result = await manager.execute_one(code_call("while True:\n    pass", f"p{i}"))
        assert "did not finish" in result.content
    result = await manager.execute_one(code_call("'still fine'", "p9"))
    assert "result: 'still fine'" in result.content


async def test_approved_code_cannot_loosen_other_tools_approval(approving, made):
    bus, asked = approving
    manager = ToolManager([made(), delete_everything], bus=bus)
    # In the kernel this finds the ToolManager and approves the risky tool for good.
    sneaky = (
        "import gc\n"
        "found = [o for o in gc.get_objects() if type(o).__name__ == 'ToolManager']\n"
        "for m in found:\n"
        "    m.allow_always(None, 'delete_everything')\n"
        "len(found)"
    )
    ran = await manager.execute_one(code_call(sneaky))
    assert ran.status == "ok" and "result: 0" in ran.content  # no engine objects over there
    risky = await manager.execute_one(ToolCall.from_raw("r1", "delete_everything", "{}"))
    assert risky.status == "denied"  # still asked (and the front end said no)
    assert [r.tool_name for r in asked] == ["run_python", "delete_everything"]


async def test_the_code_sees_no_credentials_in_its_environment(approving, made, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LLMGINE_DB", "/somewhere/llmgine.db")
    bus, asked = approving
    manager = ToolManager([made()], bus=bus)
    result = await manager.execute_one(code_call("import os\ndict(os.environ)"))
    assert result.status == "ok"
    environment = result.value["json"]
    assert SECRET not in json.dumps(environment) and "OPENAI_API_KEY" not in environment
    assert "LLMGINE_DB" not in environment


async def test_memory_is_limited(approving, made):
    bus, asked = approving
    manager = ToolManager([made(memory_mb=400)], bus=bus)
    result = await manager.execute_one(code_call("block = bytearray(1024 * 1024 * 1024)"))
    assert result.status == "error" and result.value["error"]["type"] == "MemoryError"
    after = await manager.execute_one(code_call("small = bytearray(1024)\nlen(small)", "p2"))
    assert "result: 1024" in after.content


async def test_shared_values_in_json_and_a_figure_out(approving, made):
    pandas = pytest.importorskip("pandas")
    bus, asked = approving
    frame = pandas.DataFrame({"amount": [12.5, 48.8]})
    runner = made(share={"expenses": frame})
    runner.share(rate=2)
    manager = ToolManager([runner], bus=bus)
    total = await manager.execute_one(code_call("{'total': float(expenses['amount'].sum()) * rate}"))
    assert total.value["json"] == {"total": 122.6}
    assert frame["amount"].tolist() == [12.5, 48.8]  # a copy travelled; ours is untouched
    drawn = await manager.execute_one(code_call("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nNone", "p2"))
    assert drawn.status == "ok" and "1 PNG figure" in drawn.content
    (png,) = drawn.value["images"]
    assert base64.b64decode(png).startswith(b"\x89PNG")


async def test_the_card_shows_the_exact_code_with_hidden_characters_escaped(approving, made):
    bus, asked = approving
    manager = ToolManager([made()], bus=bus)
    # A right-to-left override makes the end of the line read backwards; a zero-width space hides in a name.
    code = 'x = 1  # \u202e"ok"\u202c\nprint(x\u200b)\n' + "\n".join(f"y{i} = {i}" for i in range(60))
    await manager.execute_one(code_call(code))
    (request,) = asked
    card = request.preview
    assert card == code_card(code, card.splitlines()[0].rsplit(" (", 1)[0])
    assert "separate process" in card.splitlines()[0]
    assert "\\u202e" in card and "\\u202c" in card and "\\u200b" in card
    assert "\u202e" not in card and "\u200b" not in card
    assert "3 invisible or control characters" in card
    assert card.rstrip().endswith("62 | y59 = 59")  # every line is there, numbered
    assert request.arguments == {"code": code}  # what runs is what was approved, byte for byte


async def test_cancelling_the_turn_stops_the_code(made, tmp_path):
    runner = made(timeout=30)
    started = time.monotonic()
    task = asyncio.ensure_future(
        runner.run({"code": "import time\ntime.sleep(20)\nopen('after.txt', 'w').write('x')"}, None, None)  # type: ignore[arg-type]
    )
    for _ in range(200):
        if runner.worker.pid is not None:
            break
        await asyncio.sleep(0.02)
    pid = runner.worker.pid
    assert pid is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runner.worker.pid is None and time.monotonic() - started < 15
    assert not (tmp_path / "work" / "after.txt").exists()


def test_a_kernel_namespace_needs_the_explicit_in_kernel_opt_in():
    with pytest.raises(TypeError, match="in_kernel=True"):
        python_tool(namespace={"a": 1})
    kernel = python_tool(namespace={"a": 1}, in_kernel=True)
    assert kernel.preview({"code": "a"}).startswith("IN THE KERNEL")

"""``%llmgine mcp`` in a plain IPython shell (a subprocess), with the demo server over stdio."""

from __future__ import annotations

import sys
from pathlib import Path

from shell_harness import run_shell, section

DEMO = str(Path(__file__).with_name("mcp_demo_server.py"))


def test_add_start_use_restart_and_remove_a_server_from_cells(tmp_path):
    out = run_shell(f'''
        cell("%llmgine mcp")
        cell("%llmgine mcp add demo --risk read -- {sys.executable} {DEMO}")
        cell("%llmgine mcp add lonely")
        cell("%llmgine mcp start demo")
        cell("%llmgine mcp")
        cell("from llmgine_nb.llm import ScriptedLLM, call; from llmgine_nb.notebook import runtime")
        cell("runtime().use_llm(ScriptedLLM([call('add', a=1, b=2), 'It is 3.']))")
        cell("%llmgine what is 1 + 2?")
        until(lambda: runtime().last is not None and runtime().last.done())
        cell("%llmgine mcp restart demo")
        cell("%llmgine mcp remove demo")
        cell("print('add' in runtime().tools)")
        cell("%llmgine mcp nonsense")
    ''', tmp_path)
    assert "No MCP servers." in section(out, "%llmgine mcp\n")
    added = section(out, "%llmgine mcp add demo")
    assert "Added 'demo' (stdio:" in added and "it starts on the first turn" in added
    assert "UsageError: use %llmgine mcp add NAME -- COMMAND ARGS..." in out  # (stderr comes after stdout)
    started = section(out, "%llmgine mcp start demo")
    assert "Started; tools now: add, chart, crash, delete_note" in started
    listing = out.split("### %llmgine mcp\n")[2]
    assert "demo [running] stdio:" in listing and "tools: add, chart" in listing
    asked = section(out, "%llmgine what is 1 + 2?")
    assert "It is 3." in asked and "add(" in asked and "3" in asked
    assert "Restarted 'demo'; its tools: add" in section(out, "%llmgine mcp restart demo")
    assert "Removed 'demo'." in section(out, "%llmgine mcp remove demo")
    assert "False" in section(out, "print('add' in runtime().tools)")
    assert "UsageError: unknown `%llmgine mcp nonsense`" in out
    assert "Traceback" not in out


async def test_an_image_an_mcp_tool_returns_is_shown_in_the_cell():
    from mcp_demo_server import make_server

    from llmgine_nb import MessageBus, ToolManager
    from llmgine_nb.chat import ToolCall
    from llmgine_nb.notebook.blocks import ToolBlock
    from llmgine_nb.notebook.render import tool_box_html
    from llmgine_nb.notebook.transcript import Transcript
    from llmgine_nb.tools import ToolFinished

    bus = MessageBus()
    finished: list[ToolFinished] = []
    bus.subscribe(ToolFinished, finished.append)
    tools = ToolManager(bus=bus)
    try:
        tools.add_mcp("demo", server=make_server())
        await tools.mcp.a_start()
        await tools.execute_one(ToolCall(id="i1", name="chart", arguments={}))
    finally:
        tools.close()
    transcript = Transcript("draw")
    transcript.apply(finished[0])
    block = transcript.blocks[0]
    assert isinstance(block, ToolBlock) and block.images[0]["mimeType"] == "image/png"
    shown = tool_box_html(block)
    assert '<img src="data:image/png;base64,iVBOR' in shown and "one pixel" in shown
    block.images = [{"mimeType": "image/svg+xml", "data": "PHN2Zz4="}]  # SVG can carry script: never inlined
    assert "<img" not in tool_box_html(block)

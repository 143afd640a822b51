"""Our MCP server used by the SDK's own client: approvals decided on our side while the call waits."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import mcp_served_tools as served
import pytest
from mcp import Client, StdioServerParameters
from mcp import types as mcp_types
from mcp_helpers import free_port, until

from llmgine_nb import Event, MessageBus, ToolManager
from llmgine_nb.chat import ToolCall
from llmgine_nb.tools import ApprovalDecided, ApprovalQueue, ToolStarted
from llmgine_nb.tools.mcp.server import ToolServer

TESTS = str(Path(__file__).parent)


@pytest.fixture
def tools():
    served.notes.clear()
    bus = MessageBus()
    manager = ToolManager(
        [served.count_notes, served.add_note, served.clear_notes, served.secret_report], bus=bus, approval_timeout=20
    )
    yield manager
    manager.close()
    bus.close()


def events_of(bus: MessageBus, kind: type) -> list:
    seen: list[Event] = []
    bus.subscribe(kind, seen.append)
    return seen


async def test_the_listing_carries_schemas_and_risk_hints(tools):
    async with Client(ToolServer(tools).server) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    assert set(listed) == {"count_notes", "add_note", "clear_notes", "secret_report"}
    assert listed["count_notes"].annotations.read_only_hint is True
    add = listed["add_note"]
    assert add.annotations.read_only_hint is False and add.annotations.destructive_hint is False
    assert add.input_schema["properties"]["text"]["description"] == "What to remember."
    assert listed["clear_notes"].annotations.destructive_hint is True


async def test_a_read_tool_runs_and_a_missing_permission_is_an_error(tools):
    served.notes.extend(["a", "b"])
    async with Client(ToolServer(tools).server) as client:
        counted = await client.call_tool("count_notes", {})
        denied = await client.call_tool("secret_report", {})
        invalid = await client.call_tool("add_note", {"txt": "typo"})
    assert not counted.is_error and counted.content[0].text == "2"
    assert denied.is_error and "Permission denied" in denied.content[0].text and "'admin'" in denied.content[0].text
    assert invalid.is_error and "text" in invalid.content[0].text


async def test_the_client_approves_by_elicitation_while_the_call_waits(tools):
    asked: list[str] = []
    decide = asyncio.Event()
    started = events_of(tools.bus, ToolStarted)

    async def elicitation(ctx, params):
        asked.append(params.message)
        await decide.wait()  # the call waits on our side until the person answers
        return mcp_types.ElicitResult(action="accept", content={"approve": True})

    # Handshake-era connections carry elicitation back to the client.
    async with Client(ToolServer(tools).server, mode="legacy", elicitation_callback=elicitation) as client:
        call = asyncio.ensure_future(client.call_tool("add_note", {"text": "milk"}))
        await until(lambda: asked)
        await asyncio.sleep(0.1)
        assert not call.done() and served.notes == [] and not started  # waiting: nothing ran
        assert "Approve this call of 'add_note' (write)" in asked[0] and '"text": "milk"' in asked[0]
        decide.set()
        result = await call
    assert not result.is_error and result.structured_content == {"saved": "milk", "count": 1}
    assert served.notes == ["milk"]


async def test_the_client_declines_by_elicitation(tools):
    async def elicitation(ctx, params):
        return mcp_types.ElicitResult(action="accept", content={"approve": False, "reason": "not on Fridays"})

    async with Client(ToolServer(tools).server, mode="legacy", elicitation_callback=elicitation) as client:
        result = await client.call_tool("clear_notes", {})
    assert result.is_error and "not on Fridays" in result.content[0].text and "not run" in result.content[0].text


async def test_a_session_on_the_same_bus_approves_while_the_call_waits(tools):
    queue = ApprovalQueue()
    queue.attach(tools.bus)  # what a notebook or server session does
    decided = events_of(tools.bus, ApprovalDecided)
    # The default (2026-07-28) connection has no channel back to the client: the bus decides.
    async with Client(ToolServer(tools).server) as client:
        call = asyncio.ensure_future(client.call_tool("clear_notes", {}))
        await until(lambda: queue.pending())
        request = queue.pending_approvals()[0]
        assert request.tool_name == "clear_notes" and request.risk == "destructive"
        await asyncio.sleep(0.1)
        assert not call.done()
        queue.approve(request.call_id)
        result = await call
    assert not result.is_error and result.content[0].text == "cleared"
    assert decided[-1].approved and decided[-1].source == "handler"


async def test_with_nothing_to_ask_risky_calls_are_refused_saying_how_to_allow_them(tools):
    async with Client(ToolServer(tools).server) as client:
        refused = await client.call_tool("add_note", {"text": "x"})
        still_reads = await client.call_tool("count_notes", {})
    text = refused.content[0].text
    assert refused.is_error and "nobody can give it here" in text
    assert "--allow add_note" in text and "approval queue" in text
    assert served.notes == [] and still_reads.content[0].text == "0"


async def test_allow_is_a_policy_that_approves_without_asking(tools):
    decided = events_of(tools.bus, ApprovalDecided)
    async with Client(ToolServer(tools, allow={"add_note"}).server) as client:
        ok = await client.call_tool("add_note", {"text": "allowed"})
        not_allowed = await client.call_tool("clear_notes", {})
    assert not ok.is_error and served.notes == ["allowed"]
    assert "allowed by the MCP server's policy" in (decided[0].message or "")
    assert not_allowed.is_error


# -- the console script, used by the SDK's client and by our own MCP client ----------------------------


def _env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(Path(TESTS).parent), TESTS]), "PYTHONUNBUFFERED": "1"}


async def test_mcp_serve_over_stdio_with_the_sdk_client():
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "llmgine_nb", "mcp-serve", "mcp_served_tools:tools", "--allow", "add_note"],
        env=_env(), cwd=TESTS,
    )
    async with Client(params) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        added = await client.call_tool("add_note", {"text": "over stdio"})
        refused = await client.call_tool("clear_notes", {})
    assert names == ["add_note", "clear_notes", "count_notes", "secret_report"]
    assert added.structured_content == {"saved": "over stdio", "count": 1}
    assert refused.is_error and "--allow clear_notes" in refused.content[0].text


async def test_mcp_serve_over_http_reached_by_our_own_mcp_client():
    import subprocess

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llmgine_nb", "mcp-serve", "mcp_served_tools", "--http", str(port), "--allow", "*"],
        cwd=TESTS, env={**os.environ, **_env()}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    bus = MessageBus()
    queue = ApprovalQueue()
    queue.attach(bus)
    tools = ToolManager(bus=bus, approval_timeout=20)
    try:
        tools.add_mcp("notes", url=f"http://127.0.0.1:{port}/mcp", prefix="remote_", start_timeout=30)
        for _ in range(100):  # until the server listens
            try:
                await tools.mcp.a_start("notes")
                break
            except Exception:  # noqa: BLE001
                await asyncio.sleep(0.2)
        assert tools["remote_add_note"].risk == "write" and tools["remote_count_notes"].risk == "read"
        # Approval on both sides: ours (the client's session) first, then the server's policy.
        call = asyncio.ensure_future(tools.execute_one(ToolCall(id="r1", name="remote_add_note", arguments={"text": "hi"})))
        await until(lambda: queue.pending())
        queue.approve("r1")
        result = await call
        assert result.status == "ok" and result.value["structured"] == {"saved": "hi", "count": 1}
    finally:
        tools.close()
        bus.close()
        process.kill()
        process.wait(timeout=10)


async def test_a_kernel_serves_its_tools_and_the_notebook_approves(tmp_path):
    from types import SimpleNamespace

    from llmgine_nb.notebook.kernel_runtime import NotebookRuntime

    served.notes.clear()
    shell = SimpleNamespace(user_ns={"add_note": served.add_note, "count_notes": served.count_notes})
    rt = NotebookRuntime(shell, db=tmp_path / "llmgine.db", user="ada", ui="text")
    try:
        assert sorted(rt.refresh_tools()) == ["add_note", "count_notes"]
        async with Client(ToolServer(rt.tools).server) as client:
            call = asyncio.ensure_future(client.call_tool("add_note", {"text": "from another app"}))
            await until(lambda: rt.pending())
            request = rt.pending()[0]
            assert request.tool_name == "add_note" and served.notes == []
            rt.approve(request.call_id)  # what `%llmgine approve ID` does
            result = await call
        assert not result.is_error and served.notes == ["from another app"]
    finally:
        rt.close()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_clients_are_told_when_the_served_tools_change(tools, mode):
    notified: list[str] = []

    async def on_message(message):
        if type(message).__name__ == "ToolListChangedNotification":
            notified.append(type(message).__name__)

    server = ToolServer(tools)
    async with Client(server.server, mode=mode, message_handler=on_message) as client:
        if mode == "auto":  # 2026-07-28: change events come on a subscriptions/listen stream
            listening = client.listen(tools_list_changed=True)
            await listening.__aenter__()
        assert "shout" not in [t.name for t in (await client.list_tools()).tools]

        @tools.tool
        def shout(text: str) -> str:
            """Say it loudly."""
            return text.upper()

        await client.call_tool("count_notes", {})  # the server notices the change and says so
        await until(lambda: notified)
        assert "shout" in [t.name for t in (await client.list_tools()).tools]
        assert (await client.call_tool("shout", {"text": "hi"})).content[0].text == "HI"
        if mode == "auto":
            await listening.__aexit__(None, None, None)

"""The MCP client: servers in process (the SDK's in-memory transport), over stdio and over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import pytest
from mcp_demo_server import make_server
from mcp_helpers import DEMO_SERVER, http_demo_server, until

from llmgine_nb import Event, MessageBus, ToolManager
from llmgine_nb.chat import ToolCall
from llmgine_nb.engine import ChatEngine
from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
from llmgine_nb.store import Store
from llmgine_nb.tools import ApprovalQueue, ToolStarted
from llmgine_nb.tools.mcp import (
    MCPConfigError,
    MCPServerConfig,
    MCPServerFailed,
    MCPServerStarted,
    MCPToolsChanged,
    load_config,
    risk_from_hints,
)


class Recorder:
    def __init__(self, bus: MessageBus) -> None:
        self.events: list[Event] = []
        bus.subscribe(Event, self.events.append)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def bus_and_tools():
    bus = MessageBus()
    tools = ToolManager(bus=bus, approval_timeout=20)
    yield bus, tools
    tools.close()
    bus.close()


# -- risk mapping --------------------------------------------------------------------------------


def test_risk_follows_the_protocol_defaults_and_overrides_win():
    assert risk_from_hints({"readOnlyHint": True}) == "read"
    assert risk_from_hints({"readOnlyHint": True, "destructiveHint": True}) == "read"
    assert risk_from_hints({"destructiveHint": False}) == "write"
    assert risk_from_hints({"readOnlyHint": False, "destructiveHint": True}) == "destructive"
    assert risk_from_hints(None) == "destructive"  # no annotations: asks before it runs
    assert risk_from_hints({}) == "destructive"
    assert risk_from_hints({"readOnlyHint": True}, override="write") == "write"


# -- in process (the SDK's in-memory transport) -----------------------------------------------------


async def test_in_memory_listing_risks_and_structured_results(bus_and_tools):
    bus, tools = bus_and_tools
    rec = Recorder(bus)
    threads = []
    # inline: runs on the thread that publishes (plain subscribers would run on the bus's worker threads)
    bus.subscribe(MCPServerStarted, lambda e: threads.append(threading.current_thread()), inline=True)
    connection = tools.add_mcp("demo", server=make_server(), tool_risk={"slow": "write"})
    assert connection.state == "stopped" and "add" not in tools  # lazy: nothing started yet
    names = await tools.mcp.a_start()
    assert {"add", "weather", "save_note", "delete_note", "chart", "grow", "slow"} <= set(names)
    assert tools["add"].risk == "read" and tools["weather"].risk == "read"
    assert tools["save_note"].risk == "write"  # destructiveHint false
    assert tools["delete_note"].risk == "destructive"  # no annotations: the defaults
    assert tools["slow"].risk == "write"  # the per-tool override beats readOnlyHint
    assert tools["add"].parameters["required"] == ["a", "b"]
    await until(lambda: rec.of(MCPServerStarted))
    assert rec.of(MCPServerStarted)[0].server == "demo"
    assert threads == [threading.current_thread()]  # delivered where the engine runs, not on the MCP thread
    assert "running" in repr(connection) and "demo" in repr(tools.mcp)

    add, weather, chart, missing = await tools.execute([
        ToolCall(id="c1", name="add", arguments={"a": 2, "b": 40}),
        ToolCall(id="c2", name="weather", arguments={"city": "Perth"}),
        ToolCall(id="c3", name="chart", arguments={}),
        ToolCall(id="c4", name="add", arguments={"a": "two"}),
    ])
    assert (add.status, add.content, add.value["structured"]) == ("ok", "42", {"result": 42})
    assert weather.value["structured"] == {"city": "Perth", "celsius": 21.5}
    assert json.loads(weather.content) == {"city": "Perth", "celsius": 21.5}
    assert chart.status == "ok" and "one pixel" in chart.content and "[image: image/png" in chart.content
    assert chart.value["images"][0]["mimeType"] == "image/png" and chart.value["images"][0]["data"].startswith("iVBOR")
    assert missing.status == "invalid" and "b" in missing.content  # our schema check, before the server


async def test_an_error_result_is_an_error(bus_and_tools):
    _, tools = bus_and_tools
    tools.add_mcp("demo", server=make_server(), risk="read")  # a server-wide override: no approval needed
    await tools.mcp.a_start()
    result = await tools.execute_one(ToolCall(id="e1", name="delete_note", arguments={"note_id": 99}))
    assert result.status == "error" and result.is_error
    assert "MCP server 'demo' reported an error from 'delete_note'" in result.content and "no note 99" in result.content


async def test_a_destructive_tool_waits_for_approval_then_runs(bus_and_tools):
    bus, tools = bus_and_tools
    rec = Recorder(bus)
    queue = ApprovalQueue()
    queue.attach(bus)
    tools.add_mcp("demo", server=make_server())
    await tools.mcp.a_start()
    call_ = asyncio.ensure_future(tools.execute_one(ToolCall(id="d1", name="delete_note", arguments={"note_id": 1})))
    await until(lambda: queue.pending())
    request = queue.pending_approvals()[0]
    assert request.risk == "destructive" and request.arguments == {"note_id": 1}
    await asyncio.sleep(0.2)
    assert not call_.done() and not rec.of(ToolStarted)  # waiting: nothing ran
    queue.approve("d1")
    result = await call_
    assert result.status == "ok" and result.content == "deleted note 1"

    denied = asyncio.ensure_future(tools.execute_one(ToolCall(id="d2", name="save_note", arguments={"text": "x"})))
    await until(lambda: queue.pending())
    queue.deny("d2", "not today")
    result = await denied
    assert result.status == "denied" and "not today" in result.content


async def test_a_tool_list_that_changes_updates_the_session(bus_and_tools):
    bus, tools = bus_and_tools
    rec = Recorder(bus)
    tools.add_mcp("demo", server=make_server(), risk="read")
    await tools.mcp.a_start()
    assert "newbie" not in tools
    result = await tools.execute_one(ToolCall(id="g1", name="grow", arguments={"name": "newbie"}))
    assert result.status == "ok"
    await until(lambda: "newbie" in tools)
    assert (await tools.execute_one(ToolCall(id="g2", name="newbie", arguments={}))).content == "I am newbie"
    await until(lambda: rec.of(MCPToolsChanged))
    assert rec.of(MCPToolsChanged)[0].added == ["newbie"]


async def test_prefix_keeps_two_servers_with_the_same_tools_apart(bus_and_tools):
    _, tools = bus_and_tools
    tools.add_mcp("one", server=make_server())
    tools.add_mcp("two", server=make_server(), prefix="two_")
    await tools.mcp.a_start()
    assert "add" in tools and "two_add" in tools
    assert tools.mcp.server_of("two_add") == ("two", "add")
    result = await tools.execute_one(ToolCall(id="p1", name="two_add", arguments={"a": 1, "b": 1}))
    assert result.content == "2"
    tools.mcp.remove("two")
    assert "two_add" not in tools and "add" in tools


async def test_a_server_starts_on_the_first_turn_and_the_model_uses_its_tools():
    bus = MessageBus()
    tools = ToolManager(bus=bus, approval_timeout=5)
    tools.add_mcp("demo", server=make_server())
    llm = ScriptedLLM([ScriptedReply(tool_calls=[call("add", a=20, b=22)]), "It is 42."], bus=bus)
    engine = await ChatEngine(bus, store=Store(":memory:"), tools=tools, llm=llm).start()
    try:
        assert "add" not in tools
        result = await engine.send("what is 20 + 22?")
        assert result.text == "It is 42."
        sent = [t["function"]["name"] for t in llm.calls[0].tools or []]
        assert "add" in sent and "delete_note" in sent  # the model saw the server's tools on the first turn
        assert engine.store.tool_calls(engine.session_id)[0].status == "done"
    finally:
        await engine.close()
        tools.close()


# -- stdio: the real mcp-server-time package, and the demo server -------------------------------------


async def test_the_real_time_server_over_stdio(bus_and_tools):
    _, tools = bus_and_tools
    tools.add_mcp("time", sys.executable, ["-m", "mcp_server_time", "--local-timezone", "UTC"])
    names = await tools.mcp.a_start()
    assert names == ["convert_time", "get_current_time"]
    assert tools["get_current_time"].risk == "read"  # the server says readOnlyHint
    result = await tools.execute_one(
        ToolCall(id="t1", name="convert_time",
                 arguments={"source_timezone": "UTC", "time": "12:00", "target_timezone": "Australia/Perth"})
    )
    assert result.status == "ok", result.content
    assert result.value["structured"]["target"]["datetime"].endswith("20:00:00+08:00")
    bad = await tools.execute_one(ToolCall(id="t2", name="get_current_time", arguments={"timezone": "Mars/Olympus"}))
    assert bad.status == "error" and "MCP server 'time'" in bad.content and "Mars/Olympus" in bad.content
    status = tools.mcp.status()[0]
    assert status["state"] == "running" and status["transport"] == "stdio"


async def test_a_server_that_crashes_mid_call_fails_that_call_and_the_turn_goes_on():
    bus = MessageBus()
    tools = ToolManager(bus=bus, approval_timeout=5)
    tools.add_mcp("demo", sys.executable, [DEMO_SERVER])
    script = [
        ScriptedReply(tool_calls=[call("crash")]),
        ScriptedReply(tool_calls=[call("add", a=1, b=2)]),
        "The server fell over once, then 1 + 2 = 3.",
    ]
    llm = ScriptedLLM(script, bus=bus)
    engine = await ChatEngine(bus, store=Store(":memory:"), tools=tools, llm=llm).start()
    try:
        result = await engine.send("crash, then add")
        assert result.status == "complete" and result.text.endswith("1 + 2 = 3.")
        crashed, added = engine.store.tool_calls(engine.session_id)
        assert crashed.status == "error"
        tool_message = [m for m in llm.calls[1].messages if m.role == "tool"][0].content
        assert "MCP server 'demo' stopped while 'crash' was running" in tool_message
        assert "started again on the next call" in tool_message
        assert added.status == "done"  # the next call started the server again
        assert tools.mcp["demo"].starts == 2
    finally:
        await engine.close()
        tools.close()


async def test_a_server_that_exits_while_idle_is_started_again_by_the_next_call(bus_and_tools):
    _, tools = bus_and_tools
    tools.add_mcp("demo", sys.executable, [DEMO_SERVER])
    await tools.mcp.a_start()
    assert (await tools.execute_one(ToolCall(id="x1", name="exit_soon", arguments={}))).content == "bye"
    await until(lambda: tools.mcp["demo"].state == "crashed")  # noticed when its stream ended
    assert "MCP server 'demo' stopped" in tools.mcp.status()[0]["error"]
    result = await tools.execute_one(ToolCall(id="x2", name="add", arguments={"a": 2, "b": 2}))
    assert result.status == "ok" and result.content == "4"
    assert tools.mcp["demo"].starts == 2


async def test_every_call_has_a_timeout(bus_and_tools):
    _, tools = bus_and_tools
    tools.add_mcp("demo", sys.executable, [DEMO_SERVER], timeout=1)
    await tools.mcp.a_start()
    result = await tools.execute_one(ToolCall(id="s1", name="slow", arguments={"seconds": 5}))
    assert result.status == "error"
    assert "MCP server 'demo' did not answer 'slow' within 1 s" in result.content


async def test_a_server_that_never_answers_times_out_with_what_it_wrote(bus_and_tools):
    _, tools = bus_and_tools
    mute = "import sys, time; sys.stderr.write('warming up forever\\n'); sys.stderr.flush(); time.sleep(60)"
    tools.add_mcp("mute", sys.executable, ["-c", mute], start_timeout=2)
    with pytest.raises(Exception, match=r"MCP server 'mute' did not start within 2 s .*warming up forever"):
        await tools.mcp.a_start("mute")
    assert tools.mcp.status()[0]["state"] == "failed"


async def test_a_server_that_cannot_start_says_so_by_name(bus_and_tools):
    bus, tools = bus_and_tools
    rec = Recorder(bus)
    tools.add_mcp("nothing", sys.executable, ["-c", "import sys; sys.stderr.write('no such module\\n'); sys.exit(2)"],
                  start_timeout=10)
    await tools.mcp.a_start()  # reported, not raised: the other servers and the turn go on
    await until(lambda: rec.of(MCPServerFailed))
    error = rec.of(MCPServerFailed)[0].error
    assert error.startswith("MCP server 'nothing'") and "no such module" in error
    assert tools.mcp.status()[0]["state"] == "failed"
    with pytest.raises(Exception, match="MCP server 'nothing'"):
        await tools.mcp._on_loop(tools.mcp["nothing"].start())


# -- streamable HTTP on 127.0.0.1 ---------------------------------------------------------------------


async def test_streamable_http_list_call_approve_change_and_crash(bus_and_tools):
    bus, tools = bus_and_tools
    queue = ApprovalQueue()
    queue.attach(bus)
    with http_demo_server() as (url, process):
        tools.add_mcp("web", url=url)
        names = await tools.mcp.a_start()
        assert "weather" in names and tools.mcp.status()[0]["transport"] == "http"
        ok = await tools.execute_one(ToolCall(id="h1", name="weather", arguments={"city": "Oslo"}))
        assert ok.value["structured"]["city"] == "Oslo"

        waiting = asyncio.ensure_future(
            tools.execute_one(ToolCall(id="h2", name="delete_note", arguments={"note_id": 1}))
        )
        await until(lambda: queue.pending())
        assert not waiting.done()
        queue.approve("h2")
        assert (await waiting).content == "deleted note 1"

        queue_answer = asyncio.ensure_future(
            tools.execute_one(ToolCall(id="h3", name="grow", arguments={"name": "fresh"}))
        )
        await until(lambda: queue.pending())
        queue.approve("h3")
        assert (await queue_answer).status == "ok"
        await until(lambda: "fresh" in tools)  # the list-changed notification arrived over HTTP

        crash = await tools.execute_one(ToolCall(id="h4", name="crash", arguments={}))
        assert crash.status == "error" and "MCP server 'web'" in crash.content
        process.wait(timeout=10)
    # The server is gone for good: the next call says so by name.
    gone = await tools.execute_one(ToolCall(id="h5", name="add", arguments={"a": 1, "b": 1}))
    assert gone.status == "error" and "MCP server 'web'" in gone.content


# -- configuration --------------------------------------------------------------------------------------


def test_an_mcp_servers_file_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_TOKEN", "s3cret-value")
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time"], "env": {"TZ": "UTC"}},
        "web": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer ${DEMO_TOKEN}"},
                "risk": "read", "toolRisk": {"delete": "destructive"}, "timeout": 5, "disabled": True},
    }}))
    time_cfg, web_cfg = load_config(path)
    assert time_cfg.transport == "stdio" and time_cfg.args == ("-m", "mcp_server_time")
    assert web_cfg.transport == "http" and web_cfg.risk == "read" and web_cfg.tool_risk == {"delete": "destructive"}
    assert web_cfg.disabled and web_cfg.timeout == 5
    assert "s3cret" not in web_cfg.target and "Bearer" not in web_cfg.target
    from llmgine_nb.tools.mcp.config import expand

    assert expand(web_cfg.headers) == {"Authorization": "Bearer s3cret-value"}


@pytest.mark.parametrize("entry, says", [
    ({"args": ["x"]}, "exactly one of 'command'"),
    ({"command": "x", "url": "http://h/mcp"}, "exactly one of 'command'"),
    ({"url": "ftp://h"}, "must start with http"),
    ({"command": "x", "risk": "scary"}, "risk must be one of read, write, destructive"),
    ({"command": "x", "args": "-m server"}, "'args' must be a list"),
    ({"command": "x", "bogus": 1}, "keys this host does not know: bogus"),
    ({"command": "x", "timeout": 0}, "timeout must be a positive number"),
])
def test_a_bad_config_says_what_to_change(entry, says):
    with pytest.raises(MCPConfigError, match=says):
        load_config({"mcpServers": {"s": entry}})


def test_a_missing_variable_and_a_missing_file_are_sentences(tmp_path):
    from llmgine_nb.tools.mcp.config import expand

    with pytest.raises(MCPConfigError, match=r"\$\{NOT_SET_ANYWHERE\} is used .* NOT_SET_ANYWHERE is not set"):
        expand({"X": "${NOT_SET_ANYWHERE}"}, environ={})
    with pytest.raises(MCPConfigError, match="no MCP config file"):
        load_config(tmp_path / "absent.json")
    with pytest.raises(MCPConfigError, match="not valid JSON"):
        load_config('{"mcpServers": ')
    assert MCPServerConfig(name="x", command="y").target == "y"

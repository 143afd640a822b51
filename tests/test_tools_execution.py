"""Running tool calls: results, errors, timeouts, concurrency, the context, sync callers."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import threading
import time
from datetime import date

import pytest
from pydantic import BaseModel

from llmgine_nb import MessageBus
from llmgine_nb.chat import ToolCall
from llmgine_nb.messages import Message
from llmgine_nb.tools import (
    ChoiceRequest,
    ConfirmRequest,
    ToolContext,
    ToolError,
    ToolEvent,
    ToolFinished,
    ToolManager,
    ToolOutput,
    tool,
)


def call(name: str, raw: str = "{}", id: str | None = None) -> ToolCall:
    return ToolCall.from_raw(id or f"call_{name}", name, raw)


class Task(BaseModel):
    id: int
    title: str


@dataclasses.dataclass
class Pair:
    left: int
    right: str


class Level(enum.Enum):
    LOW = "low"


# -- results -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "content", "structured"),
    [
        ("plain text", "plain text", "plain text"),
        (42, "42", 42),
        (None, "null", None),
        ({"a": [1, 2]}, '{"a":[1,2]}', {"a": [1, 2]}),
        ([Task(id=1, title="Tea")], '[{"id":1,"title":"Tea"}]', [{"id": 1, "title": "Tea"}]),
        (Pair(1, "x"), '{"left":1,"right":"x"}', {"left": 1, "right": "x"}),
        ({"when": date(2025, 1, 2), "level": Level.LOW}, '{"when":"2025-01-02","level":"low"}', {"when": "2025-01-02", "level": "low"}),
        (ToolOutput("3 tasks", [1, 2, 3]), "3 tasks", [1, 2, 3]),
        (b"caf\xc3\xa9", '"café"', "café"),
        (
            {"raw": b"\xff\x00\x01", "n": 1},
            '{"raw":"<3 bytes of binary data, not UTF-8 text: ff 00 01>","n":1}',
            {"raw": "<3 bytes of binary data, not UTF-8 text: ff 00 01>", "n": 1},
        ),
        (
            ToolOutput("saved", [bytearray(b"\x80" * 20)]),
            "saved",
            ["<20 bytes of binary data, not UTF-8 text: 80 80 80 80 80 80 80 80 80 80 80 80 80 80 80 80...>"],
        ),
    ],
    ids=["str", "int", "none", "dict", "models", "dataclass", "date-enum", "tooloutput", "utf8-bytes", "binary",
         "binary-value"],
)
async def test_return_values_are_serialised(value, content, structured):
    def give():
        """Give."""
        return value

    manager = ToolManager([give])
    result = await manager.execute_one(call("give"))
    assert (result.status, result.content, result.value, result.is_error) == ("ok", content, structured, False)


async def test_a_tool_that_returns_binary_bytes_succeeded_and_its_events_are_json():
    ran = []

    def raw() -> bytes:
        """Raw."""
        ran.append(1)
        return b"\xff\x00\x01"

    bus = MessageBus()
    finished: list[ToolFinished] = []
    bus.subscribe(ToolFinished, finished.append)
    manager = ToolManager([raw], bus=bus)
    result = await manager.execute_one(call("raw"))
    assert (result.status, result.is_error, len(ran)) == ("ok", False, 1)
    assert result.content == '"<3 bytes of binary data, not UTF-8 text: ff 00 01>"'
    assert Message.from_json(finished[-1].to_json()).result == result


async def test_long_results_are_truncated_with_a_note():
    def big() -> str:
        """Big."""
        return "x" * 100

    manager = ToolManager([big], max_result_chars=30)
    result = await manager.execute_one(call("big"))
    assert result.content.startswith("x" * 30 + "\n[... truncated: 70 of 100 characters were cut.")
    assert result.truncated_chars == 70
    manager.register(big, max_result_chars=200, replace=True)
    assert (await manager.execute_one(call("big"))).truncated_chars == 0


async def test_exceptions_become_error_results():
    def broken(x: int) -> int:
        """Broken."""
        raise ValueError(f"cannot use {x}")

    async def polite() -> str:
        """Polite."""
        raise ToolError("No task 7 exists; list_tasks shows the ids.", value={"known": [1, 2]})

    manager = ToolManager([broken, polite])
    r1, r2 = await manager.execute([call("broken", '{"x": 3}'), call("polite")])
    assert (r1.status, r1.is_error, r1.content) == ("error", True, "Error: ValueError: cannot use 3")
    assert (r2.status, r2.content, r2.value) == ("error", "No task 7 exists; list_tasks shows the ids.", {"known": [1, 2]})


async def test_invalid_calls_come_back_as_results_for_the_model():
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    manager = ToolManager([add])
    bad_json, unknown, wrong, ok = await manager.execute(
        [call("add", "{not json", "c1"), call("sub", "{}", "c2"), call("add", '{"a": "x"}', "c3"), call("add", '{"a": "1", "b": 2}', "c4")]
    )
    assert bad_json.status == "invalid" and "not a valid JSON object: {not json" in bad_json.content
    assert unknown.status == "invalid" and unknown.content == "Unknown tool 'sub'. Available tools: add."
    assert wrong.status == "invalid" and "- a: Input should be a valid integer" in wrong.content and "- b: missing" in wrong.content
    assert (ok.status, ok.value) == ("ok", 3)
    assert [r.call_id for r in (bad_json, unknown, wrong, ok)] == ["c1", "c2", "c3", "c4"]
    assert not any(r.ran for r in (bad_json, unknown, wrong))


async def test_timeouts_for_async_and_sync_tools():
    @tool(timeout=0.05)
    async def slow_async() -> str:
        """Slow."""
        await asyncio.sleep(10)
        return "never"

    @tool(timeout=0.05)
    def slow_sync() -> str:
        """Slow in a thread."""
        time.sleep(0.3)
        return "late"

    manager = ToolManager([slow_async, slow_sync])
    results = await manager.execute([call("slow_async"), call("slow_sync")])
    assert [r.status for r in results] == ["timeout", "timeout"]
    assert results[0].content == "'slow_async' did not finish within 0.05 s; it was abandoned and has no result."
    manager.close()


async def test_default_timeout_applies_to_tools_without_one():
    async def wait() -> None:
        """Wait."""
        await asyncio.sleep(10)

    manager = ToolManager([wait], default_timeout=0.05)
    assert (await manager.execute_one(call("wait"))).status == "timeout"


# -- concurrency -------------------------------------------------------------------


async def test_sync_calls_of_one_reply_run_at_the_same_time_in_threads():
    barrier = threading.Barrier(4, timeout=5)  # passes only if all four wait at once
    threads = set()

    def meet(n: int) -> int:
        """Meet."""
        threads.add(threading.current_thread().name)
        barrier.wait()
        return n

    manager = ToolManager([meet])
    results = await manager.execute([call("meet", f'{{"n": {i}}}', f"c{i}") for i in range(4)])
    assert [r.value for r in results] == [0, 1, 2, 3]
    assert all(r.status == "ok" for r in results), [r.content for r in results]
    assert len(threads) == 4 and all(name.startswith("llmgine-tool") for name in threads)
    manager.close()


async def test_async_calls_of_one_reply_overlap():
    arrived = 0
    all_here = asyncio.Event()

    async def gather_up() -> str:
        """Wait for the others."""
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            all_here.set()
        await asyncio.wait_for(all_here.wait(), 5)
        return "met"

    manager = ToolManager([gather_up])
    results = await manager.execute([call("gather_up", id=f"c{i}") for i in range(3)])
    assert [r.content for r in results] == ["met"] * 3


async def test_a_tool_marked_to_run_alone_never_overlaps_the_others():
    log: list[tuple[str, str]] = []
    both_started = asyncio.Event()
    started = 0

    async def shared(tag: str) -> str:
        """Shared."""
        nonlocal started
        log.append(("start", tag))
        if tag in ("a", "b"):  # a and b must overlap each other
            started += 1
            if started == 2:
                both_started.set()
            await asyncio.wait_for(both_started.wait(), 5)
        await asyncio.sleep(0.01)
        log.append(("end", tag))
        return tag

    @tool(concurrent=False)
    def alone() -> str:
        """Alone."""
        log.append(("start", "alone"))
        time.sleep(0.02)
        log.append(("end", "alone"))
        return "alone"

    manager = ToolManager([shared, alone])
    calls = [
        call("shared", '{"tag": "a"}', "c1"),
        call("shared", '{"tag": "b"}', "c2"),
        call("alone", "{}", "c3"),
        call("shared", '{"tag": "c"}', "c4"),
        call("shared", '{"tag": "d"}', "c5"),
    ]
    results = await manager.execute(calls)
    assert [r.content for r in results] == ["a", "b", "alone", "c", "d"]
    i_start, i_end = log.index(("start", "alone")), log.index(("end", "alone"))
    assert i_end == i_start + 1  # nothing happened while it ran
    assert {("end", "a"), ("end", "b")} <= set(log[:i_start])
    assert {("start", "c"), ("start", "d")} <= set(log[i_end:])
    manager.close()


# -- the context -----------------------------------------------------------------------


async def test_context_gives_session_user_grants_and_per_session_state():
    seen = []

    def remember(item: str, ctx: ToolContext) -> list:
        """Remember an item for this session."""
        seen.append((ctx.session_id, ctx.user, ctx.has_permission("notes:write"), ctx.call_id, ctx.tool_name))
        ctx.state.setdefault("items", []).append(item)
        return ctx.state["items"]

    bus = MessageBus()
    manager = ToolManager([remember], bus=bus, user="ann", grants={"notes:*"})
    async with bus.session("one") as one:
        await manager.execute_one(call("remember", '{"item": "a"}', "c1"))
        r = await manager.execute_one(call("remember", '{"item": "b"}', "c2"))
    assert r.value == ["a", "b"]
    async with bus.session("two") as two:
        r = await manager.execute_one(call("remember", '{"item": "z"}', "c3"), user="bob", grants=[])
    assert r.value == ["z"]
    assert seen == [
        (one.id, "ann", True, "c1", "remember"),
        (one.id, "ann", True, "c2", "remember"),
        (two.id, "bob", False, "c3", "remember"),
    ]
    assert manager.state_for(one.id) == {"items": ["a", "b"]}


async def test_state_hook_supplies_the_mapping():
    stores: dict = {}

    def count(ctx: ToolContext) -> int:
        """Count calls."""
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        return ctx.state["n"]

    manager = ToolManager([count], state=lambda sid: stores.setdefault(sid, {}))
    await manager.execute_one(call("count"), session_id="s1")
    assert (await manager.execute_one(call("count"), session_id="s1")).value == 2
    assert stores == {"s1": {"n": 2}}


async def confirm_tool(ctx: ToolContext) -> str:
    """Ask before going on."""
    return "yes" if await ctx.confirm("Go on?") else "no"


async def choose_tool(ctx: ToolContext) -> str | None:
    """Did you mean ...?"""
    return await ctx.choose("Which task did you mean?", ["Buy milk", "Buy bread", "Bake bread"])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(True, "yes"), (False, "no"), ("yes", "no"), (1, "no"), (None, "no")],
    ids=["true", "false", "string-yes", "one", "none"],
)
async def test_confirm_is_true_only_for_a_literal_true(answer, expected):
    bus = MessageBus()
    asked = []
    bus.register_command_handler(ConfirmRequest, lambda c: asked.append(c) or answer)
    manager = ToolManager([confirm_tool], bus=bus)
    result = await manager.execute_one(call("confirm_tool", id="c9"))
    assert result.value == expected
    assert asked[0].question == "Go on?" and asked[0].call_id == "c9" and asked[0].tool_name == "confirm_tool"


async def test_confirm_fails_closed_without_handler_on_error_and_on_timeout():
    manager = ToolManager([confirm_tool])  # no bus at all
    assert (await manager.execute_one(call("confirm_tool"))).value == "no"

    bus = MessageBus()
    manager = ToolManager([confirm_tool], bus=bus, question_timeout=0.05)
    assert (await manager.execute_one(call("confirm_tool"))).value == "no"  # bus without handler

    def boom(c):
        raise RuntimeError("widget gone")

    reg = bus.register_command_handler(ConfirmRequest, boom)
    assert (await manager.execute_one(call("confirm_tool"))).value == "no"
    reg.unregister()

    async def never(c):
        await asyncio.sleep(10)
        return True

    bus.register_command_handler(ConfirmRequest, never)
    assert (await manager.execute_one(call("confirm_tool"))).value == "no"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("Buy bread", "Buy bread"), (None, None), ("Buy cheese", None), (1, None), (["Buy milk"], None)],
    ids=["option", "none", "not-an-option", "index", "list"],
)
async def test_choose_returns_only_one_of_the_options(answer, expected):
    bus = MessageBus()
    asked = []
    bus.register_command_handler(ChoiceRequest, lambda c: asked.append(c) or answer)
    manager = ToolManager([choose_tool], bus=bus)
    result = await manager.execute_one(call("choose_tool"))
    assert result.value == expected
    assert asked[0].options == ["Buy milk", "Buy bread", "Bake bread"]


async def test_choose_fails_closed_on_timeout():
    bus = MessageBus()

    async def slow(c):
        await asyncio.sleep(10)

    bus.register_command_handler(ChoiceRequest, slow)
    manager = ToolManager([choose_tool], bus=bus, question_timeout=0.05)
    assert (await manager.execute_one(call("choose_tool"))).value is None


async def test_sync_tools_ask_with_confirm_sync():
    def careful(ctx: ToolContext) -> str:
        """Careful, in a thread."""
        return "done" if ctx.confirm_sync("Sure?") else "skipped"

    bus = MessageBus()
    bus.register_command_handler(ConfirmRequest, lambda c: True)
    manager = ToolManager([careful], bus=bus)
    assert (await manager.execute_one(call("careful"))).content == "done"
    manager.close()


async def test_confirm_sync_inside_the_event_loop_is_an_error_result():
    async def wrong(ctx: ToolContext) -> bool:
        """Uses the blocking form in async code."""
        return ctx.confirm_sync("Sure?")

    result = await ToolManager([wrong], bus=MessageBus()).execute_one(call("wrong"))
    assert result.status == "error" and "use `await ctx.confirm(...)`" in result.content


# -- a question belongs to its call: abandoned calls cannot act on late answers ------------


async def test_an_abandoned_context_answers_no_without_asking():
    bus = MessageBus()
    asked = []
    bus.register_command_handler(ConfirmRequest, lambda c: asked.append(c) or True)
    bus.register_command_handler(ChoiceRequest, lambda c: asked.append(c) or "a")
    ctx = ToolContext(call=call("t"), tool_name="t", bus=bus, loop=asyncio.get_running_loop())
    assert await ctx.confirm("first?") is True  # asked while the call is alive
    ctx.abandon("the turn was cancelled")
    ctx.abandon("again")  # a second abandon changes nothing
    assert ctx.abandoned
    assert await ctx.confirm("Go on?") is False
    assert await ctx.choose("Which?", ["a", "b"]) is None
    assert await asyncio.to_thread(ctx.confirm_sync, "Go on?") is False
    assert await asyncio.to_thread(ctx.choose_sync, "Which?", ["a", "b"]) is None
    assert [c.question for c in asked] == ["first?"]


async def test_abandon_withdraws_an_open_question_and_releases_the_asker():
    bus = MessageBus()
    started = asyncio.Event()

    async def never_answers(command):
        started.set()
        await asyncio.sleep(30)
        return True

    bus.register_command_handler(ConfirmRequest, never_answers)
    ctx = ToolContext(call=call("t"), tool_name="t", bus=bus, loop=asyncio.get_running_loop())
    asking = asyncio.ensure_future(ctx.confirm("Delete everything?"))
    await started.wait()
    ctx.abandon()
    assert await asyncio.wait_for(asking, 2) is False


async def test_a_sync_question_is_bounded_by_its_timeout_even_if_the_front_end_ignores_cancelling():
    release = False
    answers: list = []

    async def stubborn(command):
        # A broken front end that swallows the cancellation of its timeout.
        while not release:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass
        return True

    def careful(ctx: ToolContext) -> str:
        """Ask, in a thread."""
        answers.append(ctx.confirm_sync("Sure?", timeout=0.05))
        return "asked"

    bus = MessageBus()
    bus.register_command_handler(ConfirmRequest, stubborn)
    manager = ToolManager([careful], bus=bus)
    running = asyncio.ensure_future(manager.execute_one(call("careful")))
    try:
        deadline = time.monotonic() + 4
        while not answers and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert answers == [False]  # the worker thread was not left hanging
        assert (await asyncio.wait_for(running, 2)).content == "asked"
    finally:
        release = True  # lets the front end (and, without the bound, the thread) finish
        await asyncio.sleep(0.05)
        manager.close()


# -- per-session state --------------------------------------------------------------------


async def test_each_application_gives_its_own_sessions_their_own_state():
    def count(ctx: ToolContext) -> int:
        """Count calls."""
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        return ctx.state["n"]

    hooked: dict = {}
    manager = ToolManager([count], state=lambda sid: hooked.setdefault(sid, {}))
    engine_one: dict = {}  # two engines sharing one manager, each keeping its sessions' state
    engine_two: dict = {"n": 10}
    manager.set_state("s1", engine_one)
    manager.set_state("s2", engine_two)
    await manager.execute_one(call("count"), session_id="s1")
    assert (await manager.execute_one(call("count"), session_id="s1")).value == 2
    assert (await manager.execute_one(call("count"), session_id="s2")).value == 11
    assert (await manager.execute_one(call("count"), session_id="s3")).value == 1  # no mapping set: the hook
    assert (engine_one, engine_two, hooked) == ({"n": 2}, {"n": 11}, {"s3": {"n": 1}})
    assert manager.state_for("s1") is engine_one and manager.state_for("s2") is engine_two
    manager.forget_session("s1")
    assert manager.state_for("s1") == {} and manager.state_for("s1") is not engine_one
    with pytest.raises(TypeError, match="mutable mapping"):
        manager.set_state("s1", [("n", 1)])


def test_the_state_hook_can_be_read_and_replaced():
    manager = ToolManager()
    assert manager.state_hook is None
    assert manager.state_for("s") == {}
    given: dict = {"from": "hook"}
    manager.state_hook = lambda sid: given
    assert manager.state_for("s") is given
    with pytest.raises(TypeError, match="state_hook must be a function"):
        manager.state_hook = {"not": "callable"}


def test_grants_and_permissions_must_be_collections_of_strings():
    with pytest.raises(TypeError, match="grants must be a collection of strings.*not one string"):
        ToolManager(grants="tasks:write")
    with pytest.raises(TypeError, match="grants must be a collection of strings.*these are not: 3"):
        ToolManager(grants=["tasks:read", 3])
    with pytest.raises(TypeError, match="permissions must be a collection of strings"):
        tool(permissions=["tasks:read", None])
    with pytest.raises(TypeError, match="grants must be"):
        ToolManager().set_access("s", grants="tasks:write")


# -- registration --------------------------------------------------------------------------


def test_registering_a_different_tool_under_a_taken_name_needs_replace():
    def first() -> int:
        """First."""
        return 1

    def second() -> int:
        """Second."""
        return 2

    manager = ToolManager([first])
    with pytest.raises(ValueError, match="already registered"):
        manager.register(second, name="first")
    manager.register(second, name="first", replace=True)
    assert manager["first"].fn is second


def test_redefining_the_same_function_replaces_it_like_a_rerun_notebook_cell():
    manager = ToolManager()
    for value in (1, 2):

        def probe() -> int:
            """Probe."""
            return value  # noqa: B023 - late binding is the point: both cells define one probe

        manager.register(probe)
    assert len(manager) == 1 and manager["probe"]() == 2


async def test_manager_decorator_and_bound_methods():
    manager = ToolManager()

    @manager.tool(timeout=1)
    def hello(name: str) -> str:
        """Say hello."""
        return f"hello {name}"

    class Greeter:
        prefix = "hi"

        def greet(self, name: str) -> str:
            """Greet."""
            return f"{self.prefix} {name}"

    manager.register(Greeter().greet)
    r1, r2 = await manager.execute([call("hello", '{"name": "Ann"}'), call("greet", '{"name": "Bo"}')])
    assert (r1.content, r2.content) == ("hello Ann", "hi Bo")
    assert manager.names == ["hello", "greet"] and hello("x") == "hello x"  # still a plain function


async def test_schema_tools_run_their_handler_with_the_arguments():
    seen = []

    async def call_mcp(name, arguments):
        seen.append((name, arguments))
        return {"ok": True}

    manager = ToolManager()
    manager.register_mcp(
        {"name": "lookup", "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
         "annotations": {"readOnlyHint": True}},
        call_mcp,
    )
    ok, bad = await manager.execute([call("lookup", '{"q": "tea"}', "c1"), call("lookup", '{"q": 1}', "c2")])
    assert (ok.status, ok.value) == ("ok", {"ok": True})
    assert bad.status == "invalid" and "1 is not of type 'string'" in bad.content
    assert seen == [("lookup", {"q": "tea"})]


# -- synchronous callers and the record of events --------------------------------------------


def test_execute_sync_without_and_with_a_bus():
    def double(x: int) -> int:
        """Double."""
        return 2 * x

    manager = ToolManager([double])
    assert [r.value for r in manager.execute_sync([call("double", '{"x": 4}')])] == [8]
    manager.close()

    bus = MessageBus()
    events = []
    bus.subscribe(ToolFinished, events.append)
    manager = ToolManager([double], bus=bus)
    with bus.session("sync") as session:
        [result] = manager.execute_sync([call("double", '{"x": 5}')])
    assert result.value == 10 and events[0].session_id == session.id
    manager.close()
    bus.close()


async def test_tool_events_survive_a_json_round_trip():
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    bus = MessageBus()
    events = []
    bus.subscribe(ToolEvent, events.append)
    manager = ToolManager([add], bus=bus)
    await manager.execute([call("add", '{"a": 1, "b": 2}'), call("add", '{"a": "no"}', "c2")])
    assert len(events) == 6 + 3  # a call that runs: six events; an invalid one: three
    for event in events:
        again = Message.from_json(event.to_json())
        assert type(again) is type(event) and again == event
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert sorted(f.result.status for f in finished) == ["invalid", "ok"]


def test_result_becomes_a_tool_message():
    from llmgine_nb.tools import ToolResult

    msg = ToolResult(call_id="c1", tool_name="add", content="3", value=3).to_chat_message()
    assert msg.to_openai() == {"role": "tool", "content": "3", "tool_call_id": "c1", "name": "add"}


async def test_a_call_whose_start_is_refused_stops_its_running_siblings():
    """A subscriber that records a tool's start refusing it (``StopPublishing``: the store's ``Fenced``)
    stops the whole batch: that tool does not start, and the calls running beside it are cancelled."""
    from llmgine_nb.messages import StopPublishing
    from llmgine_nb.tools import ToolStarted

    finished: list[str] = []

    async def slow(tag: str) -> str:
        """Slow."""
        await asyncio.sleep(0.5)
        finished.append(tag)
        return tag

    async def refused() -> str:
        """Refused."""
        finished.append("refused")
        return "ran"

    class Refused(StopPublishing):
        pass

    def record_start(event: ToolStarted) -> None:
        if event.tool_name == "refused":
            raise Refused("the start could not be recorded")

    bus = MessageBus()
    bus.subscribe(ToolStarted, record_start, inline=True)
    manager = ToolManager([slow, refused], bus=bus)
    running = asyncio.ensure_future(manager.execute([call("slow", '{"tag": "a"}', "c1"), call("refused", "{}", "c2")]))
    with pytest.raises(Refused):
        await running
    await asyncio.sleep(0.7)
    assert finished == []  # neither the refused tool nor its sibling ran to the end
    manager.close()

"""No tool can kill the engine (issue 13, item 1).

A tool that raises ``SystemExit`` (argparse does on bad input),
``KeyboardInterrupt`` or any other ``BaseException`` ends as a failed tool
result; the background loop that runs every session keeps running.  If that
loop does die, the next use says so and starts a new one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import pytest

from llmgine_nb import BackgroundLoop, MessageBus
from llmgine_nb.chat import ToolCall
from llmgine_nb.engine import ChatEngine
from llmgine_nb.llm import ScriptedLLM
from llmgine_nb.llm.scripted import call
from llmgine_nb.store import Store
from llmgine_nb.tools import ToolManager


class CustomBase(BaseException):
    """Neither an Exception nor one of the well-known ones."""


def _parse_cli(args: str) -> str:
    """Parse a command line the way a script would (argparse exits on bad input)."""
    parser = argparse.ArgumentParser(prog="report", add_help=False)
    parser.add_argument("--days", type=int, required=True)
    return str(parser.parse_args(args.split()).days)


def _exit_tool() -> str:
    """Exit."""
    raise SystemExit(3)


def _interrupt_tool() -> str:
    """Interrupt."""
    raise KeyboardInterrupt


async def _async_exit_tool() -> str:
    """Exit, asynchronously."""
    raise SystemExit("bye")


async def _async_custom_tool() -> str:
    """Raise a custom BaseException."""
    raise CustomBase("odd")


def _ok_tool() -> str:
    """Fine."""
    return "fine"


@pytest.mark.parametrize(
    ("fn", "raw", "shown"),
    [
        (_exit_tool, "{}", "SystemExit(3)"),
        (_interrupt_tool, "{}", "KeyboardInterrupt"),
        (_async_exit_tool, "{}", "SystemExit(bye)"),
        (_async_custom_tool, "{}", "CustomBase(odd)"),
        (_parse_cli, '{"args": "--days soon"}', "SystemExit(2)"),
    ],
    ids=["sync-exit", "sync-interrupt", "async-exit", "async-custom", "argparse"],
)
def test_a_base_exception_from_a_tool_is_a_failed_result_and_the_loop_lives_on(fn, raw, shown):
    bus = MessageBus()
    manager = ToolManager([fn, _ok_tool], bus=bus)
    try:
        (result,) = manager.execute_sync([ToolCall.from_raw("c1", fn.__name__, raw)], timeout=10)
        assert (result.status, result.is_error) == ("error", True)
        assert shown in result.content
        # The same loop still runs the next call: nothing hangs, nothing was restarted.
        (after,) = manager.execute_sync([ToolCall.from_raw("c2", "_ok_tool", "{}")], timeout=10)
        assert after.content == "fine"
        assert bus.background.restarts == 0
    finally:
        bus.close()


def test_a_turn_whose_tool_exits_fails_that_call_only_and_the_next_turn_runs():
    bus = MessageBus()
    llm = ScriptedLLM([call("_exit_tool"), "The tool failed.", "Second turn."], bus=bus)
    manager = ToolManager([_exit_tool], bus=bus)

    async def make() -> ChatEngine:
        return await ChatEngine(bus, store=Store(":memory:"), llm=llm, tools=manager).start()

    try:
        engine = bus.background.run(make(), timeout=10)
        first = bus.background.run(engine.send("run it"), timeout=10)
        assert first.status == "complete" and first.text == "The tool failed."
        tool_message = next(m for m in engine.history if m.role == "tool")
        assert "SystemExit(3)" in (tool_message.content or "")
        second = bus.background.run(engine.send("again"), timeout=10)
        assert second.text == "Second turn."
        assert bus.background.restarts == 0
    finally:
        bus.close()


def test_a_dead_loop_is_noticed_reported_in_one_sentence_and_replaced(caplog):
    background = BackgroundLoop("test-dies")

    async def die() -> None:
        raise SystemExit(1)

    async def answer() -> int:
        return 42

    try:
        with pytest.raises(RuntimeError, match="SystemExit"):
            background.run(die(), timeout=5)
        with caplog.at_level(logging.WARNING, logger="llmgine_nb.loop"):
            assert background.run(answer(), timeout=5) == 42
        assert background.restarts == 1
        (record,) = [r for r in caplog.records if r.name == "llmgine_nb.loop"]
        message = record.getMessage()
        assert "SystemExit" in message and "new one was started" in message
        assert message.count(". ") == 0  # one sentence
    finally:
        background.stop()


def test_work_waiting_on_a_loop_that_dies_is_released_not_left_hanging():
    background = BackgroundLoop("test-dies-while-waiting")
    gate = asyncio.Event()

    async def wait_for_ever() -> None:
        await gate.wait()

    async def die() -> None:
        await asyncio.sleep(0.05)
        raise KeyboardInterrupt

    try:
        waiting = background.submit(wait_for_ever())
        background.submit(die())
        with pytest.raises(BaseException) as caught:  # noqa: B017 - cancelled, whichever class it is
            waiting.result(timeout=5)
        assert "Cancelled" in type(caught.value).__name__
    finally:
        background.stop()

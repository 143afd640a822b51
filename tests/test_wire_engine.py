"""The wire test for the engine: every engine scenario again, on a bus that turns each message into JSON.

The scenario set is tests/test_engine_turns.py (plain turns, streaming,
parallel tools, approve / deny with a reason / edit / always, choices and
confirmations, budgets that ask, cancel, the step limit, structured output,
reset and fork), tests/test_engine_drafts.py (drafts, resume after a
restart) and tests/test_tools_approval.py (every approval path of the tool
layer).  Each test module's ``MessageBus`` is replaced by ``WireBus``
(tests/wire.py): every command, result and event a handler or subscriber
sees was rebuilt from its JSON text.  The original tests run unchanged;
passing here is the proof that the engine passes information only through
message fields.
"""

from __future__ import annotations

import pytest
import test_engine_drafts
import test_engine_turns
import test_tools_approval
from test_engine_drafts import *  # noqa: F403 - the scenarios, collected again in this module
from test_engine_turns import *  # noqa: F403
from test_tools_approval import *  # noqa: F403
from wire import WireBus, rerun_on_the_wire

_SCENARIOS = (test_engine_turns, test_engine_drafts, test_tools_approval)


@pytest.fixture(autouse=True)
def on_the_wire(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Run the scenario on WireBus; afterwards, check that messages really crossed it."""
    made = []
    for module in _SCENARIOS:
        made = rerun_on_the_wire(module, monkeypatch) or made
    yield
    uses_a_bus = any(name in request.function.__code__.co_names for name in ("MessageBus", "make", "setup"))
    if uses_a_bus and made:
        crossed = sum(sum(bus.crossed.values()) for bus in made)
        assert crossed > 0, "the scenario made a WireBus but nothing crossed it"


def test_the_wire_bus_rebuilds_every_message() -> None:
    """A subscriber and a handler on WireBus never see the object that was sent."""
    import asyncio

    from llmgine_nb.engine import TurnFinished
    from llmgine_nb.messages import Command

    class Echo(Command):
        text: str

    async def scenario() -> None:
        bus = WireBus()
        sent_event = TurnFinished(turn_id="t", text="hi", model="m")
        seen: list[object] = []
        bus.subscribe(TurnFinished, seen.append)
        command = Echo(text="x")
        handled: list[object] = []

        def handler(c: Echo) -> dict:
            handled.append(c)
            return {"echo": c.text}

        bus.register_command_handler(Echo, handler)
        await bus.publish(sent_event)
        result = await bus.execute(command)
        assert seen[0] is not sent_event and seen[0] == sent_event
        assert handled[0] is not command and handled[0] == command
        assert result.result == {"echo": "x"} and bus.crossed["Echo"] == 1 and bus.crossed["CommandResult"] == 1

    asyncio.run(scenario())

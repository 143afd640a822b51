"""Realistic event sequences, published as the real event classes on a real MessageBus.

The other ``test_observe_*`` files import these scenarios; the tests here
check that the scenarios themselves are what they claim (so a test built on
them cannot pass on an empty or malformed sequence).

Turn 1 (session "alpha"): a streamed model call asks for two tools, which
run in parallel (interleaved on the bus); a second model call fails once
with a rate limit, is retried and answers.  Turn 2: the model asks for a
risky tool, approval is denied, the model is told; the next call fails for
good with an authentication error that echoes the API key; the turn fails.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from llmgine_nb.bus import MessageBus
from llmgine_nb.chat import ToolCall, Usage
from llmgine_nb.engine.events import TurnFailed, TurnFinished, TurnStarted
from llmgine_nb.llm.events import (
    LLMCallFailed,
    LLMCallFinished,
    LLMCallStarted,
    LLMRetry,
    LLMTextDelta,
    LLMToolCallDelta,
)
from llmgine_nb.messages import Event
from llmgine_nb.tools.events import (
    ApprovalDecided,
    ApprovalRequested,
    ToolArgumentsValidated,
    ToolCallRequested,
    ToolFinished,
    ToolImpactAssessed,
    ToolPermissionChecked,
    ToolStarted,
)
from llmgine_nb.tools.results import ToolResult

FAKE_OPENAI_KEY = "sk-test-OPENAI-0123456789abcdefghijklmnop"
FAKE_ANTHROPIC_KEY = "sk-ant-test-ABCDEFGHIJ0123456789xyz"
FAKE_CONFIGURED_SECRET = "db-password-Zq9!x\"quote\\slash"

MODEL = "openai/gpt-4o-mini"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def at(ms: float) -> datetime:
    """A fixed moment ``ms`` milliseconds after T0, so span times can be checked exactly."""
    return T0 + timedelta(milliseconds=ms)


@dataclass
class Scenario:
    """What ``run_scenario`` published; ids are prefixed with the session's name."""

    name: str = "alpha"
    session_id: str = ""
    published: list[Event] = field(default_factory=list)

    @property
    def turn1(self) -> str:
        return f"{self.name}-turn-1"

    @property
    def turn2(self) -> str:
        return f"{self.name}-turn-2"

    def call(self, n: int) -> str:
        """The model call id of call ``n`` (1-4)."""
        return f"{self.name}-c{n}"


class Recorder:
    """Publishes on the bus and keeps what it published."""

    def __init__(self, bus: MessageBus, scenario: Scenario, stamp_turn_id: bool) -> None:
        self.bus = bus
        self.scenario = scenario
        self.stamp = stamp_turn_id
        self.turn_id: str | None = None

    async def __call__(self, event: Event) -> None:
        if self.stamp and self.turn_id is not None:
            # Messages are immutable: the turn id goes on a copy, as the engine's use_metadata would set it.
            event = event.model_copy(update={"metadata": {**event.metadata, "turn_id": self.turn_id}})
        self.scenario.published.append(event)
        await self.bus.publish(event)


async def _tool(pub: Recorder, call_id: str, name: str, args: dict[str, Any], start_ms: float,
                run_ms: float, value: Any) -> None:
    base = {"call_id": call_id, "tool_name": name}
    await pub(ToolCallRequested(raw_arguments=str(args).replace("'", '"'), timestamp=at(start_ms), **base))
    await pub(ToolArgumentsValidated(arguments=args, timestamp=at(start_ms + 1), **base))
    await pub(ToolPermissionChecked(timestamp=at(start_ms + 1), **base))
    await pub(ToolImpactAssessed(risk="read", policy="auto", requires_approval=False, timestamp=at(start_ms + 1),
                                 **base))
    await pub(ToolStarted(arguments=args, timestamp=at(start_ms + 2), **base))
    await asyncio.sleep(0)  # let the other call interleave, as parallel calls do
    result = ToolResult(call_id=call_id, tool_name=name, content=str(value), value=value,
                        duration=run_ms / 1000, arguments=args)
    await pub(ToolFinished(result=result, timestamp=at(start_ms + 2 + run_ms), **base))


async def run_scenario(bus: MessageBus, *, stamp_turn_id: bool = True, session_name: str = "alpha") -> Scenario:
    """Publish both turns (see the module docstring) and return what was published."""
    scenario = Scenario(name=session_name)
    c1, c2, c3, c4 = (scenario.call(n) for n in range(1, 5))
    async with bus.session(session_name) as session:
        scenario.session_id = session.id
        pub = Recorder(bus, scenario, stamp_turn_id)

        # -- turn 1 ------------------------------------------------------------
        pub.turn_id = scenario.turn1
        await pub(TurnStarted(turn_id=scenario.turn1, text="What is 2+3 and 4*5?", model=MODEL,
                              user_message_id="u1", timestamp=at(0)))
        await pub(LLMCallStarted(call_id=c1, model=MODEL, provider="openai",
                                 settings={"temperature": 0.2, "max_tokens": 256}, message_count=2,
                                 tool_names=["add", "multiply"], stream=True, timestamp=at(10)))
        await pub(LLMTextDelta(call_id=c1, model=MODEL, text="Let me ", timestamp=at(60)))
        await pub(LLMTextDelta(call_id=c1, model=MODEL, text="compute.", timestamp=at(70)))
        await pub(LLMToolCallDelta(call_id=c1, model=MODEL, index=0, tool_call_id="tc-add", name="add",
                                   arguments_delta='{"a": 2,', timestamp=at(80)))
        await pub(LLMToolCallDelta(call_id=c1, model=MODEL, index=1, tool_call_id="tc-mul", name="multiply",
                                   arguments_delta='{"a": 4,', timestamp=at(81)))
        await pub(LLMToolCallDelta(call_id=c1, model=MODEL, index=0, arguments_delta=' "b": 3}',
                                   timestamp=at(82)))
        await pub(LLMToolCallDelta(call_id=c1, model=MODEL, index=1, arguments_delta=' "b": 5}',
                                   timestamp=at(83)))
        await pub(LLMCallFinished(
            call_id=c1, model=MODEL, provider="openai", finish_reason="tool_calls", text="Let me compute.",
            tool_calls=[ToolCall.from_raw("tc-add", "add", '{"a": 2, "b": 3}'),
                        ToolCall.from_raw("tc-mul", "multiply", '{"a": 4, "b": 5}')],
            usage=Usage(input_tokens=100, output_tokens=20, cached_tokens=40), cost_usd=0.0010,
            latency_s=0.100, ttft_s=0.050, timestamp=at(110)))
        await asyncio.gather(
            _tool(pub, "tc-add", "add", {"a": 2, "b": 3}, 120, 30, 5),
            _tool(pub, "tc-mul", "multiply", {"a": 4, "b": 5}, 120, 50, 20),
        )
        await pub(LLMCallStarted(call_id=c2, model=MODEL, provider="openai", settings={"temperature": 0.2},
                                 message_count=5, stream=True, timestamp=at(200)))
        await pub(LLMCallFailed(call_id=c2, model=MODEL, error_kind="rate_limit",
                                error_type="RateLimitError", message="Rate limited; slow down.",
                                will_retry=True, attempt=1, status_code=429, timestamp=at(220)))
        await pub(LLMRetry(call_id=c2, model=MODEL, attempt=2, error_kind="rate_limit",
                           message="Rate limited; slow down.", timestamp=at(221)))
        await pub(LLMTextDelta(call_id=c2, model=MODEL, text="2+3=5 and 4*5=20.", timestamp=at(290)))
        await pub(LLMCallFinished(
            call_id=c2, model=MODEL, provider="openai", finish_reason="stop", text="2+3=5 and 4*5=20.",
            usage=Usage(input_tokens=150, output_tokens=10), cost_usd=0.0020, latency_s=0.300, ttft_s=0.090,
            timestamp=at(500)))
        await pub(TurnFinished(turn_id=scenario.turn1, text="2+3=5 and 4*5=20.", model=MODEL, steps=2,
                               usage=Usage(input_tokens=250, output_tokens=30, cached_tokens=40),
                               cost_usd=0.0030, latency_s=0.51, timestamp=at(510)))

        # -- turn 2 ------------------------------------------------------------
        pub.turn_id = scenario.turn2
        await pub(TurnStarted(turn_id=scenario.turn2, text="Delete my notes.", model=MODEL, user_message_id="u2",
                              timestamp=at(1000)))
        await pub(LLMCallStarted(call_id=c3, model=MODEL, provider="openai", stream=False, timestamp=at(1010)))
        delete_args = {"path": "notes.txt", "note": FAKE_OPENAI_KEY}
        await pub(LLMCallFinished(
            call_id=c3, model=MODEL, provider="openai", finish_reason="tool_calls",
            tool_calls=[ToolCall(id="tc-del", name="delete_file", raw_arguments=str(delete_args).replace("'", '"'),
                                 arguments=delete_args)],
            usage=Usage(input_tokens=80, output_tokens=15), cost_usd=None, latency_s=0.200, ttft_s=None,
            timestamp=at(1210)))
        base = {"call_id": "tc-del", "tool_name": "delete_file"}
        await pub(ToolCallRequested(raw_arguments=str(delete_args), timestamp=at(1220), **base))
        await pub(ToolImpactAssessed(risk="destructive", policy="ask", requires_approval=True,
                                     timestamp=at(1221), **base))
        await pub(ApprovalRequested(arguments=delete_args, risk="destructive", request_id="r1", timestamp=at(1222),
                                    **base))
        await pub(ApprovalDecided(decision="deny", approved=False, message="Not my notes!", timestamp=at(1500),
                                  **base))
        await pub(ToolFinished(result=ToolResult(call_id="tc-del", tool_name="delete_file", status="denied",
                                                 is_error=True, content="The user denied this call: Not my notes!"),
                               timestamp=at(1501), **base))
        await pub(LLMCallStarted(call_id=c4, model="anthropic/claude-haiku-4-5", provider="anthropic",
                                 stream=True, timestamp=at(1510)))
        await pub(LLMCallFailed(
            call_id=c4, model="anthropic/claude-haiku-4-5", error_kind="authentication",
            error_type="AuthenticationError",
            message=f"Incorrect API key provided: {FAKE_ANTHROPIC_KEY}. Check ANTHROPIC_API_KEY.",
            will_retry=False, attempt=1, status_code=401, timestamp=at(1600)))
        await pub(TurnFailed(turn_id=scenario.turn2, kind="authentication",
                             reason=f"The provider refused the key {FAKE_ANTHROPIC_KEY}; set a valid ANTHROPIC_API_KEY.",
                             error=f"AuthenticationError: bad key {FAKE_ANTHROPIC_KEY}", timestamp=at(1610)))
    return scenario


# -- the scenario is what it claims to be -----------------------------------------------


async def test_scenario_publishes_both_turns_with_parallel_tools() -> None:
    bus = MessageBus()
    seen: list[Event] = []
    bus.subscribe(Event, seen.append)
    scenario = await run_scenario(bus)
    types = [type(e).__name__ for e in scenario.published]
    assert types.count("TurnStarted") == 2 and types.count("LLMCallStarted") == 4
    assert types.count("ToolFinished") == 3 and types.count("LLMRetry") == 1
    # The two tool calls of turn 1 interleave on the bus (they ran in parallel).
    tool_ids = [e.call_id for e in scenario.published if isinstance(e, (ToolStarted, ToolFinished))
                and e.call_id in ("tc-add", "tc-mul")]
    assert tool_ids[:2] == ["tc-add", "tc-mul"], tool_ids
    # Everything published reached subscribers, plus the session start and end.
    assert [e.id for e in seen if e in scenario.published] == [e.id for e in scenario.published]
    assert all(e.session_id == scenario.session_id for e in scenario.published)
    assert all(e.metadata.get("turn_id") in (scenario.turn1, scenario.turn2) for e in scenario.published)


async def test_scenario_without_turn_stamp_leaves_metadata_empty() -> None:
    scenario = await run_scenario(MessageBus(), stamp_turn_id=False)
    assert all("turn_id" not in e.metadata for e in scenario.published)

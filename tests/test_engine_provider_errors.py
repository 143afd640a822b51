"""Provider errors end a turn with a clear sentence, keep the user's message, and can be retried.

The engine talks to a real OpenAI-compatible HTTP server on 127.0.0.1 through litellm.
"""

from __future__ import annotations

import pytest
from fake_openai import (  # noqa: F401 - fake_openai is a fixture
    FAKE_API_KEY,
    Delay,
    Malformed,
    Reply,
    ToolCallSpec,
    content_filtered,
    context_too_long,
    fake_openai,
    rate_limited,
    unauthorized,
)

from llmgine_nb import Event, MessageBus, ToolManager, tool
from llmgine_nb.engine import ChatEngine, TurnFailed
from llmgine_nb.llm import RetryPolicy, get_llm


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value-of-{key}"


async def engine_on(server, **llm_options) -> tuple[ChatEngine, list[Event]]:
    bus = MessageBus()
    events: list[Event] = []
    bus.subscribe(Event, events.append)
    llm = get_llm("openai/gpt-4o-mini", bus=bus, api_base=server.base_url, api_key=FAKE_API_KEY, **llm_options)
    engine = await ChatEngine(bus, llm=llm, tools=ToolManager([lookup], bus=bus)).start()
    return engine, events


@pytest.mark.parametrize(
    ("behaviour", "kind", "words"),
    [
        (unauthorized(), "authentication", "key"),
        (rate_limited(), "rate_limit", "rate"),
        (context_too_long(), "context_too_long", "context"),
        (content_filtered(), "content_filter", "filter"),
        (Malformed(), "bad_response", ""),
    ],
    ids=["authentication", "rate_limit", "context_too_long", "content_filter", "malformed"],
)
async def test_provider_error_ends_the_turn_clearly_and_retry_works(fake_openai, behaviour, kind, words):
    engine, events = await engine_on(fake_openai, retry=RetryPolicy(tries=1))  # the error itself, not retries
    fake_openai.add(behaviour)
    result = await engine.send("hello there")
    assert result.status == "failed" and result.error_kind == kind
    assert words.lower() in result.reason.lower()
    assert "message is kept" in result.reason.lower() and "%llmgine" not in result.reason
    failed = [e for e in events if isinstance(e, TurnFailed)]
    assert len(failed) == 1 and failed[0].kind == kind
    assert "Traceback" not in failed[0].reason
    # The user's message is kept, nothing half-written follows it.
    assert [(m.role, m.content) for m in engine.store.messages(engine.session_id)] == [("user", "hello there")]
    # The provider recovers: the same turn is retried and completes.
    fake_openai.add(Reply("Hi!"))
    retried = await engine.retry()
    assert retried.status == "complete" and retried.text == "Hi!"
    assert [m.content for m in engine.history] == ["hello there", "Hi!"]


async def test_timeout_ends_the_turn_with_what_to_do(fake_openai):
    engine, events = await engine_on(fake_openai, timeout=0.5)
    fake_openai.add(Delay(3, Reply("too late")))
    result = await engine.send("are you there?")
    assert result.status == "failed" and result.error_kind == "timeout"
    assert "message is kept" in result.reason.lower() and "%llmgine" not in result.reason


async def test_a_real_wire_turn_with_a_streamed_tool_call(fake_openai):
    engine, events = await engine_on(fake_openai)
    fake_openai.add(
        Reply(tool_calls=[ToolCallSpec("lookup", {"key": "a"}), ToolCallSpec("lookup", {"key": "b"})]),
        Reply("a and b found"),
    )
    result = await engine.send("look up a and b")
    assert result.status == "complete" and result.text == "a and b found"
    assert sorted(m.content for m in engine.history if m.role == "tool") == ["value-of-a", "value-of-b"]
    second = fake_openai.requests[1].body
    assert second["stream"] is True
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool", "tool"]
    assert result.usage.input_tokens == 22 and result.usage.output_tokens == 14
    assert result.cost_usd is not None and result.cost_usd > 0  # gpt-4o-mini is priced in litellm's map

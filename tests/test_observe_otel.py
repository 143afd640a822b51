"""OpenTelemetry spans from bus events, checked with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from test_observe_scenarios import MODEL, Scenario, at, run_scenario

from llmgine_nb.bus import MessageBus
from llmgine_nb.engine.events import (
    BudgetExceeded,
    ContextCompiled,
    StepLimitReached,
    TurnCancelled,
    TurnFinished,
    TurnStarted,
)
from llmgine_nb.llm.events import LLMCallStarted, LLMTextDelta
from llmgine_nb.observe import Redactor, observe
from llmgine_nb.observe.otel import OTEL_MISSING, OTelObserver, _ns

CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments",
                "gen_ai.tool.call.result"}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def chat_span(spans: tuple[ReadableSpan, ...], call_id: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.attributes.get("llmgine.call_id") == call_id]
    return found


def tool_span(spans: tuple[ReadableSpan, ...], call_id: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.attributes.get("gen_ai.tool.call.id") == call_id]
    return found


def turn_span(spans: tuple[ReadableSpan, ...], turn_id: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.attributes.get("llmgine.turn_id") == turn_id]
    return found


def all_strings(span: ReadableSpan) -> list[str]:
    """Every string value of a span: name, attributes, event attributes, status."""
    values: list[Any] = [span.name, span.status.description or ""]
    values.extend(span.attributes.values())
    for event in span.events:
        values.append(event.name)
        values.extend(event.attributes.values())
    out: list[str] = []
    for value in values:
        out.extend(value if isinstance(value, tuple) else [value])
    return [v for v in out if isinstance(v, str)]


async def traced(provider: TracerProvider, **options: Any) -> tuple[OTelObserver, Scenario]:
    bus = MessageBus()
    observer = OTelObserver(tracer_provider=provider, redactor=Redactor(from_environment=False), **options)
    observer.attach(bus)
    scenario = await run_scenario(bus)
    return observer, scenario


async def test_span_names_kinds_and_parents(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    observer, sc = await traced(provider)
    spans = exporter.get_finished_spans()
    assert observer.open_spans == 0
    assert len(spans) == 2 + 4 + 3

    turns = by_name(spans, "invoke_agent llmgine")
    assert len(turns) == 2 and all(s.kind is SpanKind.INTERNAL and s.parent is None for s in turns)
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert sorted(s.name for s in chats) == ["chat anthropic/claude-haiku-4-5"] + [f"chat {MODEL}"] * 3
    assert all(s.kind is SpanKind.CLIENT for s in chats)
    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    assert sorted(s.name for s in tools) == ["execute_tool add", "execute_tool delete_file", "execute_tool multiply"]
    assert all(s.kind is SpanKind.INTERNAL for s in tools)

    t1, t2 = turn_span(spans, sc.turn1), turn_span(spans, sc.turn2)
    for child, parent in [
        (chat_span(spans, sc.call(1)), t1), (chat_span(spans, sc.call(2)), t1),
        (tool_span(spans, "tc-add"), t1), (tool_span(spans, "tc-mul"), t1),
        (chat_span(spans, sc.call(3)), t2), (chat_span(spans, sc.call(4)), t2),
        (tool_span(spans, "tc-del"), t2),
    ]:
        assert child.parent is not None and child.parent.span_id == parent.context.span_id, child.name
        assert child.context.trace_id == parent.context.trace_id
    assert t1.context.trace_id != t2.context.trace_id


async def test_gen_ai_attributes(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _, sc = await traced(provider)
    spans = exporter.get_finished_spans()

    c1 = chat_span(spans, sc.call(1))
    assert c1.attributes["gen_ai.operation.name"] == "chat"
    assert c1.attributes["gen_ai.provider.name"] == "openai"
    assert c1.attributes["gen_ai.system"] == "openai"
    assert c1.attributes["gen_ai.request.model"] == MODEL
    assert c1.attributes["gen_ai.response.model"] == MODEL
    assert c1.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert c1.attributes["gen_ai.usage.input_tokens"] == 100
    assert c1.attributes["gen_ai.usage.output_tokens"] == 20
    assert c1.attributes["llmgine.usage.cached_tokens"] == 40
    assert c1.attributes["gen_ai.request.temperature"] == 0.2
    assert c1.attributes["gen_ai.request.max_tokens"] == 256
    assert c1.attributes["gen_ai.conversation.id"] == sc.session_id
    assert c1.attributes["llmgine.cost_usd"] == pytest.approx(0.001)
    assert c1.attributes["llmgine.ttft_s"] == pytest.approx(0.05)
    assert c1.status.status_code is StatusCode.UNSET

    # Unknown price: no cost attribute at all (not a misleading 0).
    assert "llmgine.cost_usd" not in chat_span(spans, sc.call(3)).attributes

    add = tool_span(spans, "tc-add")
    assert add.attributes["gen_ai.operation.name"] == "execute_tool"
    assert add.attributes["gen_ai.tool.name"] == "add"
    assert add.attributes["gen_ai.tool.call.id"] == "tc-add"
    assert add.attributes["gen_ai.tool.type"] == "function"
    assert add.attributes["llmgine.tool.status"] == "ok"
    assert add.attributes["llmgine.tool.duration_s"] == pytest.approx(0.030)
    assert [e.name for e in add.events] == ["llmgine.tool_started"]

    t1 = turn_span(spans, sc.turn1)
    assert t1.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert t1.attributes["gen_ai.agent.name"] == "llmgine"
    assert t1.attributes["gen_ai.request.model"] == MODEL
    assert t1.attributes["gen_ai.usage.input_tokens"] == 250
    assert t1.attributes["gen_ai.usage.output_tokens"] == 30
    assert t1.attributes["llmgine.cost_usd"] == pytest.approx(0.003)
    assert t1.attributes["llmgine.turn.status"] == "complete"


async def test_retry_and_errors(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _, sc = await traced(provider)
    spans = exporter.get_finished_spans()

    # One span for the call, covering its retry; the failed attempt is an event.
    c2 = chat_span(spans, sc.call(2))
    assert [e.name for e in c2.events] == ["llmgine.attempt_failed", "llmgine.retry"]
    assert c2.events[0].attributes["error.type"] == "rate_limit"
    assert c2.events[0].attributes["http.response.status_code"] == 429
    assert c2.events[1].attributes["llmgine.attempt"] == 2
    assert c2.status.status_code is StatusCode.UNSET and "error.type" not in c2.attributes
    assert (c2.start_time, c2.end_time) == (_ns(at(200)), _ns(at(500)))

    c4 = chat_span(spans, sc.call(4))
    assert c4.status.status_code is StatusCode.ERROR
    assert c4.attributes["error.type"] == "authentication"
    assert c4.attributes["gen_ai.provider.name"] == "anthropic"
    assert "Incorrect API key" in (c4.status.description or "")

    denied = tool_span(spans, "tc-del")
    assert denied.status.status_code is StatusCode.ERROR
    assert denied.attributes["error.type"] == "denied"
    assert denied.attributes["llmgine.approval.decision"] == "deny"
    assert denied.attributes["llmgine.approval.approved"] is False
    assert [e.name for e in denied.events] == ["llmgine.approval_requested", "llmgine.approval_decided"]

    t2 = turn_span(spans, sc.turn2)
    assert t2.status.status_code is StatusCode.ERROR
    assert t2.attributes["error.type"] == "authentication"
    assert t2.attributes["llmgine.turn.status"] == "failed"


async def test_span_times_come_from_the_events(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _, sc = await traced(provider)
    spans = exporter.get_finished_spans()
    t1 = turn_span(spans, sc.turn1)
    assert (t1.start_time, t1.end_time) == (_ns(at(0)), _ns(at(510)))
    add, mul = tool_span(spans, "tc-add"), tool_span(spans, "tc-mul")
    assert (add.start_time, add.end_time) == (_ns(at(120)), _ns(at(152)))
    assert (mul.start_time, mul.end_time) == (_ns(at(120)), _ns(at(172)))
    assert add.events[0].timestamp == _ns(at(122))
    denied = tool_span(spans, "tc-del")
    assert (denied.start_time, denied.end_time) == (_ns(at(1220)), _ns(at(1501)))


async def test_content_is_absent_by_default(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    await traced(provider)
    spans = exporter.get_finished_spans()
    for span in spans:
        assert not CONTENT_KEYS & set(span.attributes), span.name
        text = " ".join(all_strings(span))
        for said in ("What is 2+3", "Let me compute", "2+3=5", "notes.txt", "Not my notes", '"a": 2'):
            assert said not in text, (span.name, said)


async def test_content_is_recorded_on_opt_in(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _, sc = await traced(provider, capture_content=True)
    spans = exporter.get_finished_spans()
    t1 = turn_span(spans, sc.turn1)
    assert "What is 2+3 and 4*5?" in t1.attributes["gen_ai.input.messages"]
    assert "2+3=5 and 4*5=20." in t1.attributes["gen_ai.output.messages"]
    c1 = chat_span(spans, sc.call(1))
    output = c1.attributes["gen_ai.output.messages"]
    assert '"type": "tool_call"' in output and '"name": "multiply"' in output and "Let me compute." in output
    add = tool_span(spans, "tc-add")
    assert add.attributes["gen_ai.tool.call.arguments"] == '{"a": 2, "b": 3}'
    assert add.attributes["gen_ai.tool.call.result"] == "5"
    denied = tool_span(spans, "tc-del")
    assert "gen_ai.tool.call.result" not in denied.attributes  # only for calls that succeeded
    assert "Not my notes!" in (denied.status.description or "")


async def test_session_correlation_without_turn_ids(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    bus = MessageBus()
    OTelObserver(tracer_provider=provider, redactor=Redactor(from_environment=False)).attach(bus)
    # Two sessions run at once, interleaving their events; nothing carries a turn id.
    a, b = await asyncio.gather(
        run_scenario(bus, stamp_turn_id=False, session_name="alpha"),
        run_scenario(bus, stamp_turn_id=False, session_name="beta"),
    )
    spans = exporter.get_finished_spans()
    assert len(spans) == 2 * 9
    for sc in (a, b):
        t1 = turn_span(spans, sc.turn1)
        for call in (sc.call(1), sc.call(2)):
            assert chat_span(spans, call).parent.span_id == t1.context.span_id
        # Same tool-call ids in both sessions, each under its own turn.
        mine = [s for s in spans if s.attributes.get("gen_ai.tool.call.id") == "tc-add"
                and s.attributes.get("gen_ai.conversation.id") == sc.session_id]
        assert len(mine) == 1 and mine[0].parent.span_id == t1.context.span_id


async def test_cancelled_turn_ends_its_open_call(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    bus = MessageBus()
    observer = OTelObserver(tracer_provider=provider, redactor=Redactor(from_environment=False)).attach(bus)
    async with bus.session("s"):
        await bus.publish(TurnStarted(turn_id="t", text="hi", model="scripted", user_message_id="u", timestamp=at(0)))
        await bus.publish(LLMCallStarted(call_id="c", model="scripted", stream=True, timestamp=at(1)))
        await bus.publish(LLMTextDelta(call_id="c", model="scripted", text="Hel", timestamp=at(2)))
        await bus.publish(TurnCancelled(turn_id="t", partial_text="Hel", reason="cancelled", timestamp=at(9)))
    spans = exporter.get_finished_spans()
    chat, turn = chat_span(spans, "c"), turn_span(spans, "t")
    assert chat.attributes["llmgine.interrupted"] is True and chat.end_time == _ns(at(9))
    assert chat.attributes["gen_ai.provider.name"] == "scripted"
    assert turn.attributes["llmgine.turn.status"] == "cancelled"
    assert turn.status.status_code is StatusCode.UNSET
    assert observer.open_spans == 0


async def test_turn_level_happenings_are_span_events(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    bus = MessageBus()
    OTelObserver(tracer_provider=provider, redactor=Redactor(from_environment=False)).attach(bus)
    await bus.publish(TurnStarted(turn_id="t", text="hi", model="scripted", user_message_id="u", timestamp=at(0)))
    await bus.publish(ContextCompiled(turn_id="t", total_tokens=120, budget_tokens=1000, dropped_messages=2,
                                      timestamp=at(1)))
    await bus.publish(BudgetExceeded(turn_id="t", limit="turn_tokens", used=900, allowed=500, approved=True,
                                     timestamp=at(2)))
    await bus.publish(StepLimitReached(turn_id="t", steps=3, timestamp=at(3)))
    await bus.publish(TurnFinished(turn_id="t", text="x", model="scripted", status="step_limit", timestamp=at(4)))
    (turn,) = exporter.get_finished_spans()
    assert [(e.name, e.timestamp) for e in turn.events] == [
        ("llmgine.context_compiled", _ns(at(1))), ("llmgine.budget_exceeded", _ns(at(2))),
        ("llmgine.step_limit_reached", _ns(at(3))),
    ]
    assert turn.events[0].attributes["llmgine.context.dropped_messages"] == 2
    assert turn.events[1].attributes["llmgine.budget.limit"] == "turn_tokens"
    assert turn.attributes["llmgine.turn.status"] == "step_limit"


async def test_detach_ends_open_spans(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    bus = MessageBus()
    observer = OTelObserver(tracer_provider=provider, redactor=Redactor(from_environment=False)).attach(bus)
    await bus.publish(TurnStarted(turn_id="t", text="hi", model="scripted", user_message_id="u"))
    assert observer.open_spans == 1 and not exporter.get_finished_spans()
    observer.detach()
    (span,) = exporter.get_finished_spans()
    assert span.attributes["llmgine.interrupted"] is True
    await bus.publish(TurnStarted(turn_id="t2", text="hi", model="scripted", user_message_id="u"))
    assert observer.open_spans == 0  # detached: no longer listening


async def test_observe_with_a_provider(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    bus = MessageBus()
    watch = observe(bus, otel=provider)
    await run_scenario(bus)
    assert len(exporter.get_finished_spans()) == 9
    assert watch.metrics is not None and watch.metrics.snapshot().model(MODEL).calls == 3
    watch.detach()


def test_missing_opentelemetry_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes "import opentelemetry" raise ImportError.
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError) as caught:
        OTelObserver()
    assert "pip install 'llmgine-nb[otel]'" in str(caught.value)
    assert str(caught.value) == OTEL_MISSING
    with pytest.raises(ImportError, match=r"llmgine-nb\[otel\]"):
        observe(MessageBus(), otel=True)

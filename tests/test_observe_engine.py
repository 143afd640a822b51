"""A real engine turn with the offline model, observed: spans, metrics and the event log agree with it."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llmgine_nb import MessageBus, ToolManager, tool
from llmgine_nb.engine import ChatEngine, TurnFinished, TurnStarted
from llmgine_nb.llm.events import LLMCallFinished
from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
from llmgine_nb.observe import Redactor, export_jsonl, observe, read_jsonl
from llmgine_nb.store import Store
from llmgine_nb.tools import AutoApproval
from llmgine_nb.tools.events import ToolFinished


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@tool(risk="write")
def save_note(text: str) -> str:
    """Save a note."""
    return "saved"


async def test_observed_engine_turns(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = Store(tmp_path / "engine.db")
    bus = MessageBus()
    watch = observe(bus, store, otel=provider, redactor=Redactor(from_environment=False))
    script = [
        ScriptedReply(tool_calls=[call("add", a=2, b=3), call("add", a=4, b=5)]),
        "5 and 9.",
        ScriptedReply(tool_calls=[call("save_note", text="plan")]),
        "Not saved, as you wish.",
    ]
    llm = ScriptedLLM(script, bus=bus)
    engine = await ChatEngine(bus, store=store, llm=llm, tools=ToolManager([add, save_note], bus=bus)).start()
    AutoApproval.deny_all("no notes today").attach(bus)

    first = await engine.send("add 2+3 and 4+5")
    second = await engine.send("save my plan")
    assert (first.text, second.text) == ("5 and 9.", "Not saved, as you wish.")
    watch.flush()

    # -- spans ------------------------------------------------------------------
    spans = exporter.get_finished_spans()
    turns = {s.attributes["llmgine.turn_id"]: s for s in spans if s.name == "invoke_agent llmgine"}
    assert set(turns) == {first.turn_id, second.turn_id}
    t1 = turns[first.turn_id]
    children = [s for s in spans if s.parent is not None and s.parent.span_id == t1.context.span_id]
    assert sorted(s.name for s in children) == ["chat scripted", "chat scripted", "execute_tool add", "execute_tool add"]
    chats = [s for s in children if s.kind is SpanKind.CLIENT]
    assert all(s.attributes["gen_ai.provider.name"] == "scripted" for s in chats)
    assert all(s.attributes["gen_ai.conversation.id"] == engine.session_id for s in chats)
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in chats) == first.usage.input_tokens
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in chats) == first.usage.output_tokens
    assert [s.attributes["gen_ai.response.finish_reasons"] for s in sorted(chats, key=lambda s: s.start_time)] == [
        ("tool_calls",), ("stop",)
    ]
    assert t1.attributes["gen_ai.usage.input_tokens"] == first.usage.input_tokens
    assert t1.attributes["gen_ai.conversation.id"] == engine.session_id
    assert "llmgine.context_compiled" in [e.name for e in t1.events]
    tool_spans = [s for s in children if s.name == "execute_tool add"]
    assert all(s.attributes["llmgine.tool.status"] == "ok" for s in tool_spans)
    assert len({s.attributes["gen_ai.tool.call.id"] for s in tool_spans}) == 2
    (denied,) = [s for s in spans if s.name == "execute_tool save_note"]
    assert denied.parent.span_id == turns[second.turn_id].context.span_id
    assert denied.status.status_code is StatusCode.ERROR and denied.attributes["error.type"] == "denied"

    # -- metrics ----------------------------------------------------------------
    snap = watch.metrics.snapshot()
    scripted = snap.model("scripted")
    assert scripted.calls == 4 and scripted.failed_calls == 0
    assert scripted.input_tokens == first.usage.input_tokens + second.usage.input_tokens
    assert scripted.cost_usd == 0 and scripted.unknown_cost_calls == 0  # the offline model is free, and says so
    assert scripted.latency_p50 is not None and scripted.latency_p95 >= scripted.latency_p50
    assert snap.tool("add").calls == 2 and snap.tool("add").ok == 2
    assert snap.tool("save_note").denied == 1
    session = snap.session(engine.session_id)
    assert (session.turns, session.complete, session.calls, session.tool_calls) == (2, 2, 4, 3)

    # -- event log --------------------------------------------------------------
    logged = store.events(engine.session_id)
    assert [e.turn_id for e in logged if isinstance(e, TurnStarted)] == [first.turn_id, second.turn_id]
    assert len([e for e in logged if isinstance(e, LLMCallFinished)]) == 4
    assert len([e for e in logged if isinstance(e, ToolFinished)]) == 3
    finished = [e for e in logged if isinstance(e, TurnFinished)]
    assert finished[0].text == "5 and 9." and finished[0].metadata["turn_id"] == first.turn_id
    path = tmp_path / "engine.jsonl"
    assert export_jsonl(store, path, session=engine.session_id) == len(logged)
    assert read_jsonl(path) == logged

    await engine.close()
    watch.detach()
    store.close()

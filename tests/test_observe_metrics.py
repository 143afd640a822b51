"""Metrics counted from real events on a real bus: sums, counts, percentiles, unknown cost."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_observe_scenarios import MODEL, run_scenario

from llmgine_nb.bus import MessageBus
from llmgine_nb.chat import Usage
from llmgine_nb.engine.events import TurnStarted
from llmgine_nb.llm.events import LLMCallFailed, LLMCallFinished, LLMFallback
from llmgine_nb.observe import MetricsObserver, percentile

HAIKU = "anthropic/claude-haiku-4-5"


async def observed(**scenario_options: object) -> tuple[MetricsObserver, str]:
    bus = MessageBus()
    metrics = MetricsObserver().attach(bus)
    scenario = await run_scenario(bus, **scenario_options)  # type: ignore[arg-type]
    return metrics, scenario.session_id


async def test_model_numbers_of_the_scenario() -> None:
    metrics, session_id = await observed()
    snap = metrics.snapshot()
    gpt = snap.model(MODEL, session_id)
    assert (gpt.calls, gpt.failed_calls, gpt.failed_attempts) == (3, 0, 1)
    assert (gpt.input_tokens, gpt.output_tokens, gpt.cached_tokens) == (330, 45, 40)
    assert gpt.cost_usd == pytest.approx(0.003)
    assert gpt.unknown_cost_calls == 1  # c3 had no price: counted apart, not as $0
    # latencies 0.1, 0.3, 0.2 -> p50 0.2; p95 interpolates 0.2 + 0.9 * (0.3 - 0.2)
    assert gpt.latency_p50 == pytest.approx(0.2)
    assert gpt.latency_p95 == pytest.approx(0.29)
    # ttft 0.05, 0.09 (c3 did not stream)
    assert gpt.ttft_p50 == pytest.approx(0.07)
    assert gpt.ttft_p95 == pytest.approx(0.088)
    assert (gpt.retries, gpt.fallbacks) == (1, 0)
    assert gpt.errors_by_kind == {"rate_limit": 1}

    haiku = snap.model(HAIKU)
    assert (haiku.calls, haiku.failed_calls, haiku.failed_attempts) == (1, 1, 1)
    assert haiku.errors_by_kind == {"authentication": 1}
    assert haiku.latency_p50 is None and haiku.cost_usd == 0 and haiku.unknown_cost_calls == 0


async def test_tool_session_and_error_numbers() -> None:
    metrics, session_id = await observed()
    snap = metrics.snapshot()
    add, mul, delete = snap.tool("add"), snap.tool("multiply"), snap.tool("delete_file")
    assert (add.calls, add.ok, add.duration_p50) == (1, 1, pytest.approx(0.03))
    assert (mul.calls, mul.ok, mul.duration_p95) == (1, 1, pytest.approx(0.05))
    assert (delete.calls, delete.ok, delete.denied, delete.errors) == (1, 0, 1, 0)
    assert delete.duration_p50 is None  # it never ran

    session = snap.session(session_id)
    assert (session.turns, session.complete, session.failed, session.cancelled) == (2, 1, 1, 0)
    assert session.failures_by_kind == {"authentication": 1}
    assert (session.calls, session.tool_calls) == (4, 3)
    assert (session.input_tokens, session.output_tokens) == (330, 45)
    assert session.unknown_cost_calls == 1
    assert snap.errors_by_kind == {"llm:authentication": 1, "llm:rate_limit": 1, "turn:authentication": 1}


async def test_per_session_and_totals() -> None:
    bus = MessageBus()
    metrics = MetricsObserver().attach(bus)
    a, b = await asyncio.gather(run_scenario(bus, session_name="a"), run_scenario(bus, session_name="b"))
    snap = metrics.snapshot()
    assert len(snap.models) == 4 and len(snap.model_totals) == 2
    assert snap.model(MODEL).calls == 6 and snap.model(MODEL, a.session_id).calls == 3
    assert snap.model(MODEL).cost_usd == pytest.approx(0.006)
    assert snap.model(MODEL).unknown_cost_calls == 2
    assert snap.tool("add").calls == 2 and snap.tool("add", b.session_id).calls == 1
    only_a = metrics.snapshot(a.session_id)
    assert {m.session_id for m in only_a.models} == {a.session_id}
    assert [s.session_id for s in only_a.sessions] == [a.session_id]
    with pytest.raises(KeyError, match="models seen are"):
        snap.model("no-such-model")


async def test_percentiles_over_many_calls() -> None:
    bus = MessageBus()
    metrics = MetricsObserver().attach(bus)
    for i in range(1, 21):  # latencies 0.01 .. 0.20, ttft half of that
        await bus.publish(LLMCallFinished(call_id=f"c{i}", model="m", latency_s=i / 100, ttft_s=i / 200,
                                          usage=Usage(input_tokens=i, output_tokens=1), cost_usd=0.5))
    m = metrics.snapshot().model("m")
    assert m.calls == 20 and m.input_tokens == 210 and m.cost_usd == pytest.approx(10.0)
    assert m.latency_p50 == pytest.approx(0.105)
    assert m.latency_p95 == pytest.approx(0.1905)
    assert m.ttft_p95 == pytest.approx(0.09525)


async def test_fallback_and_interrupted_calls() -> None:
    bus = MessageBus()
    metrics = MetricsObserver().attach(bus)
    await bus.publish(LLMCallFailed(call_id="x", model="smart", error_kind="timeout", error_type="Timeout",
                                    message="timed out", will_retry=True))
    await bus.publish(LLMFallback(call_id="x", model="fast", from_model="smart", to_model="fast",
                                  error_kind="timeout", message="timed out"))
    await bus.publish(LLMCallFinished(call_id="x", model="fast", latency_s=1.0, cost_usd=0.01))
    await bus.publish(LLMCallFinished(call_id="y", model="fast", finish_reason="interrupted", latency_s=9.0,
                                      cost_usd=None))
    snap = metrics.snapshot()
    smart, fast = snap.model("smart"), snap.model("fast")
    assert (smart.calls, smart.failed_attempts, smart.fallbacks, smart.errors_by_kind) == (0, 1, 1, {"timeout": 1})
    assert (fast.calls, fast.interrupted_calls, fast.unknown_cost_calls) == (2, 1, 1)
    assert fast.latency_p95 == pytest.approx(1.0)  # the interrupted stream's time is not a latency


async def test_events_without_session_count_for_their_turn() -> None:
    bus = MessageBus()
    metrics = MetricsObserver().attach(bus)
    await bus.publish(TurnStarted(turn_id="t", text="hi", model="m", user_message_id="u", session_id="s1"))
    await bus.publish(LLMCallFinished(call_id="c", model="m", metadata={"turn_id": "t"}))
    await bus.publish(LLMCallFinished(call_id="d", model="m"))
    snap = metrics.snapshot()
    assert sorted((m.session_id or "-", m.calls) for m in snap.models) == [("-", 1), ("s1", 1)]
    assert snap.model("m").calls == 2
    assert snap.session("s1").calls == 1


async def test_text_and_html_tables() -> None:
    metrics, _ = await observed()
    text = repr(metrics)
    assert "Model calls" in text and MODEL in text and "ttft p95" in text
    # The notebook's money formatter (llmgine_nb/money.py): significant digits, unpriced calls said and explained.
    assert ">= $0.003 (+1 unpriced)" in text and "(+N unpriced): N model calls whose price is not known" in text
    assert "delete_file" in text and "llm:rate_limit" in text
    html = metrics._repr_html_()
    assert "Turns" in text
    assert html.count("<table>") == 4 and "<td>openai/gpt-4o-mini</td>" in html
    assert repr(MetricsObserver()) == "No model or tool calls observed yet."


async def test_detach_and_reset() -> None:
    bus = MessageBus()
    metrics = MetricsObserver().attach(bus)
    await bus.publish(LLMCallFinished(call_id="a", model="m"))
    metrics.detach()
    await bus.publish(LLMCallFinished(call_id="b", model="m"))
    assert metrics.snapshot().model("m").calls == 1
    metrics.reset()
    assert metrics.snapshot().models == []


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=50),
       st.floats(min_value=0, max_value=100))
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-9)


def test_percentile_edges() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)

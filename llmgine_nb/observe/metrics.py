"""Metrics per session and per model, counted from the events on the bus.

    metrics = MetricsObserver().attach(bus)
    ...
    metrics                      # a table in a notebook (text elsewhere)
    snap = metrics.snapshot()    # a pydantic MetricsSnapshot
    snap.model("gpt-4o-mini").latency_p95

What is counted, and from which event:

- model calls (``LLMCallFinished``, and ``LLMCallFailed`` that ends a call),
  tokens, cost (calls whose price is unknown are counted apart, never as 0),
  latency and time to first token (p50/p95, successful calls only);
- failed attempts by error kind (every ``LLMCallFailed``), retries
  (``LLMRetry``) and fallbacks (``LLMFallback``, counted for the model that
  was given up on);
- tool calls per tool (``ToolFinished``): how each ended, and p50/p95 of
  the time the tool's code ran;
- turns per session: complete, at the step limit, failed (by kind), cancelled.

Events without a session are counted under the session of their turn
(``metadata["turn_id"]``).  Each number is keyed by the model the event names (``LLMCallFinished.model``
is the model that answered).  Percentiles interpolate linearly between
ranks (numpy's default) over the most recent ``max_samples`` values.
"""

from __future__ import annotations

import html
import math
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ..engine.events import TurnCancelled, TurnFailed, TurnFinished, TurnStarted
from ..llm.events import LLMCallFailed, LLMCallFinished, LLMFallback, LLMRetry
from ..money import fmt_total_cost, unpriced_note
from ..tools.events import ToolFinished
from .attaching import Subscriptions
from .correlate import TurnIndex

if TYPE_CHECKING:
    from ..bus import MessageBus
    from ..messages import Event

__all__ = [
    "MetricsObserver",
    "MetricsSnapshot",
    "ModelMetrics",
    "ToolMetrics",
    "SessionMetrics",
    "percentile",
]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated; None when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {q}")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- the snapshot (what callers get) ---------------------------------------------


class ModelMetrics(BaseModel):
    """Model calls of one model in one session (``session_id=None`` in totals: all sessions)."""

    session_id: str | None = None
    model: str
    calls: int = 0  # calls that ended, answered or failed
    failed_calls: int = 0  # calls that ended in an error (after any retries)
    interrupted_calls: int = 0  # streams stopped early (cancel, interrupt)
    failed_attempts: int = 0  # every failed attempt, retried or not
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0  # the sum over calls whose price is known
    unknown_cost_calls: int = 0  # answered calls whose price is unknown (not in cost_usd)
    latency_p50: float | None = None  # seconds, answered calls
    latency_p95: float | None = None
    ttft_p50: float | None = None  # seconds to the first streamed token
    ttft_p95: float | None = None
    retries: int = 0
    fallbacks: int = 0  # times this model was given up for another
    errors_by_kind: dict[str, int] = Field(default_factory=dict)


class ToolMetrics(BaseModel):
    """Calls of one tool in one session (``session_id=None`` in totals)."""

    session_id: str | None = None
    tool: str
    calls: int = 0
    ok: int = 0
    errors: int = 0  # the tool raised
    timeouts: int = 0
    denied: int = 0  # not run: permission missing or approval not given
    invalid: int = 0  # not run: unknown tool or bad arguments
    duration_p50: float | None = None  # seconds the tool's code ran (calls that ran)
    duration_p95: float | None = None


class SessionMetrics(BaseModel):
    """Turns of one session, and its model-call totals."""

    session_id: str | None = None
    turns: int = 0  # turns started
    complete: int = 0
    step_limit: int = 0
    failed: int = 0
    cancelled: int = 0
    failures_by_kind: dict[str, int] = Field(default_factory=dict)
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0
    tool_calls: int = 0


class MetricsSnapshot(BaseModel):
    """Everything ``MetricsObserver`` counted, at one moment."""

    taken: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    models: list[ModelMetrics] = Field(default_factory=list)  # per session and model
    model_totals: list[ModelMetrics] = Field(default_factory=list)  # per model, all sessions
    tools: list[ToolMetrics] = Field(default_factory=list)  # per session and tool
    tool_totals: list[ToolMetrics] = Field(default_factory=list)  # per tool, all sessions
    sessions: list[SessionMetrics] = Field(default_factory=list)
    errors_by_kind: dict[str, int] = Field(default_factory=dict)  # "llm:rate_limit", "tool:error", "turn:timeout"

    def model(self, model: str, session_id: str | None = None) -> ModelMetrics:
        """One model's numbers: in one session, or (no ``session_id``) over all sessions."""
        rows = self.model_totals if session_id is None else self.models
        for row in rows:
            if row.model == model and (session_id is None or row.session_id == session_id):
                return row
        known = sorted({r.model for r in self.model_totals})
        raise KeyError(f"no calls of model {model!r} were observed; the models seen are {known}")

    def tool(self, tool: str, session_id: str | None = None) -> ToolMetrics:
        """One tool's numbers: in one session, or (no ``session_id``) over all sessions."""
        rows = self.tool_totals if session_id is None else self.tools
        for row in rows:
            if row.tool == tool and (session_id is None or row.session_id == session_id):
                return row
        known = sorted({r.tool for r in self.tool_totals})
        raise KeyError(f"no calls of tool {tool!r} were observed; the tools seen are {known}")

    def session(self, session_id: str | None) -> SessionMetrics:
        for row in self.sessions:
            if row.session_id == session_id:
                return row
        raise KeyError(f"nothing was observed in session {session_id!r}")

    # -- display -------------------------------------------------------------

    def _tables(self) -> list[tuple[str, list[str], list[list[str]]]]:
        model_rows = [
            [
                _short(m.session_id),
                m.model,
                str(m.calls),
                str(m.failed_calls),
                str(m.input_tokens),
                str(m.output_tokens),
                str(m.cached_tokens),
                fmt_total_cost(m.cost_usd, m.unknown_cost_calls),
                _secs(m.latency_p50),
                _secs(m.latency_p95),
                _secs(m.ttft_p50),
                _secs(m.ttft_p95),
                str(m.retries),
                str(m.fallbacks),
            ]
            for m in self.models
        ]
        tool_rows = [
            [
                _short(t.session_id),
                t.tool,
                str(t.calls),
                str(t.ok),
                str(t.errors + t.timeouts),
                str(t.denied),
                str(t.invalid),
                _secs(t.duration_p50),
                _secs(t.duration_p95),
            ]
            for t in self.tools
        ]
        tables = [
            (
                "Model calls",
                ["session", "model", "calls", "failed", "in tok", "out tok", "cached", "cost", "p50",
                 "p95", "ttft p50", "ttft p95", "retries", "fallbacks"],
                model_rows,
            )
        ]
        turn_rows = [
            [_short(t.session_id), str(t.turns), str(t.complete), str(t.step_limit), str(t.failed), str(t.cancelled)]
            for t in self.sessions
            if t.turns
        ]
        if turn_rows:
            tables.append(("Turns", ["session", "turns", "complete", "step limit", "failed", "cancelled"], turn_rows))
        if tool_rows:
            tables.append(
                ("Tool calls", ["session", "tool", "calls", "ok", "errors", "denied", "invalid", "p50", "p95"],
                 tool_rows)
            )
        if self.errors_by_kind:
            tables.append(
                ("Errors", ["kind", "count"], [[k, str(v)] for k, v in sorted(self.errors_by_kind.items())])
            )
        return tables

    def _unpriced_note(self) -> str:
        """What "(+N unpriced)" in the cost column means, when it appears there."""
        return unpriced_note([fmt_total_cost(m.cost_usd, m.unknown_cost_calls) for m in self.models])

    def __str__(self) -> str:
        if not self.models and not self.tools and not self.sessions:
            return "No model or tool calls observed yet."
        note = self._unpriced_note()
        tables = [f"{title}\n{_text_table(head, rows)}" for title, head, rows in self._tables()]
        return "\n\n".join(tables + ([note] if note else []))

    def _repr_html_(self) -> str:
        if not self.models and not self.tools and not self.sessions:
            return "<p>No model or tool calls observed yet.</p>"
        note = self._unpriced_note()
        tables = "".join(
            f"<h4>{html.escape(title)}</h4>{_html_table(head, rows)}" for title, head, rows in self._tables()
        ) + (f"<p>{html.escape(note)}</p>" if note else "")
        # Costs are "$0.01": the classes keep MathJax from reading "$...$" as maths (notebook/style.NO_MATH).
        return f'<div class="tex2jax_ignore mathjax_ignore">{tables}</div>'



def _short(session_id: str | None) -> str:
    if session_id is None:
        return "-"
    return session_id if len(session_id) <= 10 else session_id[:8] + ".."


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def _text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c).replace('$', '&#36;')}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- accumulators (what the observer keeps) ---------------------------------------------


class _ModelAcc:
    __slots__ = (
        "calls", "failed_calls", "interrupted_calls", "failed_attempts", "input_tokens", "output_tokens",
        "cached_tokens", "cost_usd", "unknown_cost_calls", "latencies", "ttfts", "retries", "fallbacks", "errors",
    )

    def __init__(self, max_samples: int) -> None:
        self.calls = self.failed_calls = self.interrupted_calls = self.failed_attempts = 0
        self.input_tokens = self.output_tokens = self.cached_tokens = 0
        self.cost_usd = 0.0
        self.unknown_cost_calls = self.retries = self.fallbacks = 0
        self.latencies: deque[float] = deque(maxlen=max_samples)
        self.ttfts: deque[float] = deque(maxlen=max_samples)
        self.errors: Counter[str] = Counter()


def _model_metrics(session_id: str | None, model: str, accs: Iterable[_ModelAcc]) -> ModelMetrics:
    accs = list(accs)
    latencies = [v for a in accs for v in a.latencies]
    ttfts = [v for a in accs for v in a.ttfts]
    errors: Counter[str] = Counter()
    for a in accs:
        errors.update(a.errors)
    return ModelMetrics(
        session_id=session_id,
        model=model,
        calls=sum(a.calls for a in accs),
        failed_calls=sum(a.failed_calls for a in accs),
        interrupted_calls=sum(a.interrupted_calls for a in accs),
        failed_attempts=sum(a.failed_attempts for a in accs),
        input_tokens=sum(a.input_tokens for a in accs),
        output_tokens=sum(a.output_tokens for a in accs),
        cached_tokens=sum(a.cached_tokens for a in accs),
        cost_usd=sum(a.cost_usd for a in accs),
        unknown_cost_calls=sum(a.unknown_cost_calls for a in accs),
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
        ttft_p50=percentile(ttfts, 50),
        ttft_p95=percentile(ttfts, 95),
        retries=sum(a.retries for a in accs),
        fallbacks=sum(a.fallbacks for a in accs),
        errors_by_kind=dict(sorted(errors.items())),
    )


class _ToolAcc:
    __slots__ = ("statuses", "durations")

    def __init__(self, max_samples: int) -> None:
        self.statuses: Counter[str] = Counter()
        self.durations: deque[float] = deque(maxlen=max_samples)


def _tool_metrics(session_id: str | None, tool: str, accs: Iterable[_ToolAcc]) -> ToolMetrics:
    accs = list(accs)
    statuses: Counter[str] = Counter()
    for a in accs:
        statuses.update(a.statuses)
    durations = [v for a in accs for v in a.durations]
    return ToolMetrics(
        session_id=session_id,
        tool=tool,
        calls=sum(statuses.values()),
        ok=statuses["ok"],
        errors=statuses["error"],
        timeouts=statuses["timeout"],
        denied=statuses["denied"],
        invalid=statuses["invalid"],
        duration_p50=percentile(durations, 50),
        duration_p95=percentile(durations, 95),
    )


class _TurnAcc:
    __slots__ = ("turns", "ends", "failures")

    def __init__(self) -> None:
        self.turns = 0
        self.ends: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()


# -- the observer ----------------------------------------------------------------------


class MetricsObserver(Subscriptions):
    """Counts model calls, tokens, cost, latency, tool calls and turns from bus events.

    Thread-safe: the bus may run on a background loop while a notebook cell
    reads ``snapshot()``.
    """

    def __init__(self, *, max_samples: int = 10_000) -> None:
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self.max_samples = max_samples
        self._lock = threading.Lock()
        self._models: dict[tuple[str | None, str], _ModelAcc] = {}
        self._tools: dict[tuple[str | None, str], _ToolAcc] = {}
        self._turns: dict[str | None, _TurnAcc] = {}
        self._turn_index = TurnIndex()
        self._registrations = []

    def attach(self, bus: MessageBus) -> MetricsObserver:
        """Subscribe to the events counted; returns ``self``."""
        handlers: dict[type[Event], Callable[[Any], None]] = {
            LLMCallFinished: self._call_finished,
            LLMCallFailed: self._call_failed,
            LLMRetry: self._retry,
            LLMFallback: self._fallback,
            ToolFinished: self._tool_finished,
            TurnStarted: self._turn_started,
            TurnFinished: self._turn_finished,
            TurnFailed: self._turn_failed,
            TurnCancelled: self._turn_cancelled,
        }
        self._subscribe(bus, handlers)
        return self

    def detach(self) -> None:
        """Stop counting (what was counted stays readable)."""
        self._unsubscribe()

    def reset(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self._models.clear()
            self._tools.clear()
            self._turns.clear()
            self._turn_index = TurnIndex()

    # -- handlers ------------------------------------------------------------

    def _session(self, event: Any) -> str | None:
        # The model layer may not know the session; the turn it ran in does.
        return self._turn_index.session_of(event)

    def _model(self, session_id: str | None, model: str) -> _ModelAcc:
        acc = self._models.get((session_id, model))
        if acc is None:
            acc = self._models[(session_id, model)] = _ModelAcc(self.max_samples)
        return acc

    def _call_finished(self, event: LLMCallFinished) -> None:
        with self._lock:
            acc = self._model(self._session(event), event.model)
            acc.calls += 1
            if event.finish_reason == "interrupted":
                acc.interrupted_calls += 1
            usage = event.usage
            acc.input_tokens += usage.input_tokens
            acc.output_tokens += usage.output_tokens
            acc.cached_tokens += usage.cached_tokens
            if event.cost_usd is None:
                acc.unknown_cost_calls += 1
            else:
                acc.cost_usd += event.cost_usd
            if event.finish_reason != "interrupted":
                acc.latencies.append(event.latency_s)
            if event.ttft_s is not None:
                acc.ttfts.append(event.ttft_s)

    def _call_failed(self, event: LLMCallFailed) -> None:
        with self._lock:
            acc = self._model(self._session(event), event.model)
            acc.failed_attempts += 1
            acc.errors[event.error_kind] += 1
            if not event.will_retry:
                acc.calls += 1
                acc.failed_calls += 1

    def _retry(self, event: LLMRetry) -> None:
        with self._lock:
            self._model(self._session(event), event.model).retries += 1

    def _fallback(self, event: LLMFallback) -> None:
        with self._lock:
            self._model(self._session(event), event.from_model).fallbacks += 1

    def _tool_finished(self, event: ToolFinished) -> None:
        result = event.result
        with self._lock:
            key = (self._session(event), event.tool_name)
            acc = self._tools.get(key)
            if acc is None:
                acc = self._tools[key] = _ToolAcc(self.max_samples)
            acc.statuses[result.status] += 1
            if result.ran:
                acc.durations.append(result.duration)

    def _turn(self, session_id: str | None) -> _TurnAcc:
        acc = self._turns.get(session_id)
        if acc is None:
            acc = self._turns[session_id] = _TurnAcc()
        return acc

    def _turn_started(self, event: TurnStarted) -> None:
        with self._lock:
            self._turn_index.note(event)
            self._turn(self._session(event)).turns += 1

    def _turn_finished(self, event: TurnFinished) -> None:
        with self._lock:
            self._turn(self._session(event)).ends[event.status] += 1

    def _turn_failed(self, event: TurnFailed) -> None:
        with self._lock:
            acc = self._turn(self._session(event))
            acc.ends["failed"] += 1
            acc.failures[event.kind] += 1

    def _turn_cancelled(self, event: TurnCancelled) -> None:
        with self._lock:
            self._turn(self._session(event)).ends["cancelled"] += 1

    # -- reading -------------------------------------------------------------

    def snapshot(self, session_id: str | None = None) -> MetricsSnapshot:
        """The numbers now (only one session's when ``session_id`` is given)."""
        with self._lock:
            models = {k: v for k, v in self._models.items() if session_id is None or k[0] == session_id}
            tools = {k: v for k, v in self._tools.items() if session_id is None or k[0] == session_id}
            turns = {k: v for k, v in self._turns.items() if session_id is None or k == session_id}
            model_rows = [_model_metrics(s, m, [acc]) for (s, m), acc in models.items()]
            model_totals = [
                _model_metrics(None, name, [acc for (_, m), acc in models.items() if m == name])
                for name in dict.fromkeys(m for _, m in models)
            ]
            tool_rows = [_tool_metrics(s, t, [acc]) for (s, t), acc in tools.items()]
            tool_totals = [
                _tool_metrics(None, name, [acc for (_, t), acc in tools.items() if t == name])
                for name in dict.fromkeys(t for _, t in tools)
            ]
            session_ids = list(dict.fromkeys([*turns, *(s for s, _ in models), *(s for s, _ in tools)]))
            sessions = [self._session_metrics(s, turns.get(s), model_rows, tool_rows) for s in session_ids]
            errors: Counter[str] = Counter()
            for row in model_rows:
                errors.update({f"llm:{k}": v for k, v in row.errors_by_kind.items()})
            for tool_row in tool_rows:
                errors.update({"tool:error": tool_row.errors, "tool:timeout": tool_row.timeouts})
            for acc in turns.values():
                errors.update({f"turn:{k}": v for k, v in acc.failures.items()})
        return MetricsSnapshot(
            models=model_rows,
            model_totals=model_totals,
            tools=tool_rows,
            tool_totals=tool_totals,
            sessions=sessions,
            errors_by_kind={k: v for k, v in sorted(errors.items()) if v},
        )

    @staticmethod
    def _session_metrics(
        session_id: str | None, turns: _TurnAcc | None, models: list[ModelMetrics], tools: list[ToolMetrics]
    ) -> SessionMetrics:
        mine = [m for m in models if m.session_id == session_id]
        return SessionMetrics(
            session_id=session_id,
            turns=turns.turns if turns else 0,
            complete=turns.ends["complete"] if turns else 0,
            step_limit=turns.ends["step_limit"] if turns else 0,
            failed=turns.ends["failed"] if turns else 0,
            cancelled=turns.ends["cancelled"] if turns else 0,
            failures_by_kind=dict(sorted(turns.failures.items())) if turns else {},
            calls=sum(m.calls for m in mine),
            input_tokens=sum(m.input_tokens for m in mine),
            output_tokens=sum(m.output_tokens for m in mine),
            cost_usd=sum(m.cost_usd for m in mine),
            unknown_cost_calls=sum(m.unknown_cost_calls for m in mine),
            tool_calls=sum(t.calls for t in tools if t.session_id == session_id),
        )

    def __repr__(self) -> str:
        return str(self.snapshot())

    def _repr_html_(self) -> str:
        return self.snapshot()._repr_html_()

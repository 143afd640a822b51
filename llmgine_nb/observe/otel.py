"""OpenTelemetry traces of turns, model calls and tool calls (the ``otel`` extra).

    from opentelemetry.sdk.trace import TracerProvider
    OTelObserver(tracer_provider=provider).attach(bus)

Spans follow the OpenTelemetry GenAI semantic conventions:

- ``invoke_agent {agent_name}`` (INTERNAL) for each turn, from ``TurnStarted``
  to ``TurnFinished`` / ``TurnFailed`` / ``TurnCancelled``;
- ``chat {model}`` (CLIENT) for each model call, a child of its turn's span,
  covering every retry and fallback of the call (each failed attempt, retry
  and fallback is a span event);
- ``execute_tool {tool}`` (INTERNAL) for each tool call, a child of its
  turn's span, from ``ToolCallRequested`` to ``ToolFinished`` (approval asked,
  decided and the tool's start are span events; ``llmgine.tool.duration_s``
  is the time the tool's code ran).

Context compiled, a budget exceeded and the step limit reached are span
events on the turn's span.

Attributes: ``gen_ai.operation.name``, ``gen_ai.provider.name`` (and the older
``gen_ai.system``, unless ``legacy_attributes=False``), ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.response.finish_reasons``,
``gen_ai.usage.input_tokens`` / ``output_tokens``, ``gen_ai.conversation.id``
(the session), ``gen_ai.tool.name`` / ``gen_ai.tool.call.id`` /
``gen_ai.tool.type``, request settings (``gen_ai.request.temperature`` ...),
and our own ``llmgine.cost_usd`` (only when the price is known),
``llmgine.usage.cached_tokens``, ``llmgine.ttft_s``, ``llmgine.turn_id``.

A failure sets the span's status to ERROR and ``error.type`` to a low-cardinality
kind: for model calls the LLM error kind (``rate_limit``, ``timeout``,
``authentication``, ``no_api_key``, ``context_too_long``, ``content_filter``, ``bad_response``,
``connection``, ``server_error``, ``config``, ``other``); for tools the status (``error``, ``timeout``,
``denied``, ``invalid``); for turns the engine's failure kind.  A cancelled
turn is not an error: its status stays unset and ``llmgine.turn.status`` says
``cancelled``.

Message content (``gen_ai.input.messages`` / ``gen_ai.output.messages`` on the
turn and chat spans, ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``
on tool spans) is recorded only with ``capture_content=True``.  Every string
that goes into a span passes through the ``Redactor``.

Spans start and end at the events' own timestamps, so the timeline is true
even when events are delivered late.  Turns and calls are matched by
``metadata["turn_id"]`` when the engine stamps it, else by session (the
session's turn still running).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..engine.events import (
    BudgetExceeded,
    ContextCompiled,
    StepLimitReached,
    TurnCancelled,
    TurnFailed,
    TurnFinished,
    TurnStarted,
)
from ..llm.config import provider_of
from ..llm.events import LLMCallFailed, LLMCallFinished, LLMCallStarted, LLMFallback, LLMRetry
from ..messages import Event
from ..tools.events import (
    ApprovalDecided,
    ApprovalRequested,
    ToolCallRequested,
    ToolEvent,
    ToolFinished,
    ToolStarted,
)
from .attaching import Subscriptions
from .redact import Redactor

if TYPE_CHECKING:
    from ..bus import MessageBus

__all__ = ["OTelObserver", "OTEL_MISSING", "require_otel"]

log = logging.getLogger("llmgine_nb.observe.otel")

OTEL_MISSING = (
    "OpenTelemetry export needs the OpenTelemetry SDK, which is not installed; "
    "install it with: pip install 'llmgine-nb[otel]'"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Request settings recorded as gen_ai.request.* (number-valued ones).
_REQUEST_SETTINGS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}


def require_otel() -> Any:
    """The ``opentelemetry.trace`` module, or ImportError saying how to install it."""
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError(OTEL_MISSING) from exc
    return trace


def _ns(moment: datetime) -> int:
    """A timestamp in nanoseconds since the epoch, exact to the microsecond."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


@dataclass
class _Open:
    """A span still open, and when it started (its end is never before that)."""

    span: Any
    start_ns: int
    turn_id: str | None = None
    session_id: str | None = None
    children: set[str] = field(default_factory=set)  # keys of open child spans (turns only)


class OTelObserver(Subscriptions):
    """Turns bus events into OpenTelemetry spans (see the module docstring for the shape).

    ``tracer_provider`` defaults to the global one (``opentelemetry.trace.get_tracer_provider()``).
    """

    def __init__(
        self,
        tracer_provider: Any = None,
        capture_content: bool = False,
        *,
        redactor: Redactor | None = None,
        agent_name: str = "llmgine",
        legacy_attributes: bool = True,
    ) -> None:
        trace = require_otel()
        self._trace = trace
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        from ..version import __version__

        self.tracer = provider.get_tracer("llmgine_nb", __version__)
        self.capture_content = capture_content
        self.redactor = redactor if redactor is not None else Redactor()
        self.agent_name = agent_name
        self.legacy_attributes = legacy_attributes
        self._turns: dict[str, _Open] = {}
        self._running: dict[str | None, list[str]] = {}  # session -> turns running, latest last
        self._calls: dict[str, _Open] = {}  # "llm:<call_id>" / "tool:<session>:<call_id>" -> span
        self._registrations = []

    # -- attaching -----------------------------------------------------------

    def attach(self, bus: MessageBus) -> OTelObserver:
        """Subscribe to the turn, model-call and tool events; returns ``self``."""
        handlers: dict[type[Event], Callable[[Any], None]] = {
            TurnStarted: self._turn_started,
            TurnFinished: self._turn_finished,
            TurnFailed: self._turn_failed,
            TurnCancelled: self._turn_cancelled,
            ContextCompiled: self._turn_event,
            BudgetExceeded: self._turn_event,
            StepLimitReached: self._turn_event,
            LLMCallStarted: self._call_started,
            LLMCallFinished: self._call_finished,
            LLMCallFailed: self._call_failed,
            LLMRetry: self._retry,
            LLMFallback: self._fallback,
            ToolCallRequested: self._tool_requested,
            ApprovalRequested: self._approval_requested,
            ApprovalDecided: self._approval_decided,
            ToolStarted: self._tool_started,
            ToolFinished: self._tool_finished,
        }
        self._subscribe(bus, handlers)
        return self

    def detach(self) -> None:
        """Stop listening and end the spans still open (marked ``llmgine.interrupted``)."""
        self._unsubscribe()
        now = self._ns_now()
        for key in list(self._calls):
            self._end_interrupted(self._calls.pop(key), now)
        for turn in list(self._turns.values()):
            self._end_interrupted(turn, now)
        self._turns.clear()
        self._running.clear()

    @property
    def open_spans(self) -> int:
        """Spans started and not ended yet."""
        return len(self._turns) + len(self._calls)

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def _ns_now() -> int:
        return _ns(datetime.now(timezone.utc))

    def _text(self, value: str) -> str:
        return self.redactor.text(value)

    def _content(self, value: Any) -> str:
        """Content as redacted JSON text (span attributes cannot hold structures)."""
        return self.redactor.text(json.dumps(value, ensure_ascii=False, default=str))

    def _turn_of(self, event: Event) -> _Open | None:
        turn_id = event.metadata.get("turn_id")
        if isinstance(turn_id, str) and turn_id in self._turns:
            return self._turns[turn_id]
        running = self._running.get(event.session_id)
        return self._turns[running[-1]] if running else None

    def _start_child(
        self, key: str, event: Event, name: str, kind: Any, attributes: dict[str, Any]
    ) -> _Open:
        turn = self._turn_of(event)
        context = self._trace.set_span_in_context(turn.span) if turn is not None else None
        # An event may not know its session (the model layer); its turn does.
        session_id = event.session_id if event.session_id is not None else turn.session_id if turn else None
        if session_id is not None:
            attributes["gen_ai.conversation.id"] = session_id
        start = _ns(event.timestamp)
        span = self.tracer.start_span(
            self._text(name), context=context, kind=kind, attributes=attributes, start_time=start
        )
        opened = _Open(span, start, turn_id=turn.turn_id if turn is not None else None)
        if turn is not None:
            turn.children.add(key)
        self._calls[key] = opened
        return opened

    def _end(self, key: str, opened: _Open, end_ns: int) -> None:
        opened.span.end(end_time=max(end_ns, opened.start_ns))
        if opened.turn_id is not None and opened.turn_id in self._turns:
            self._turns[opened.turn_id].children.discard(key)

    def _error(self, span: Any, error_type: str, description: str | None) -> None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, self._text(description) if description else None))

    def _end_interrupted(self, opened: _Open, end_ns: int) -> None:
        opened.span.set_attribute("llmgine.interrupted", True)
        opened.span.end(end_time=max(end_ns, opened.start_ns))

    def _provider_attributes(self, provider: str | None) -> dict[str, Any]:
        if not provider:
            return {}
        attributes = {"gen_ai.provider.name": provider}
        if self.legacy_attributes:
            attributes["gen_ai.system"] = provider
        return attributes

    # -- turns ---------------------------------------------------------------

    def _turn_started(self, event: TurnStarted) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": self.agent_name,
            "gen_ai.request.model": self._text(event.model),
            "llmgine.turn_id": event.turn_id,
            **self._provider_attributes(provider_of(event.model)),
        }
        if event.session_id is not None:
            attributes["gen_ai.conversation.id"] = event.session_id
        if self.capture_content:
            attributes["gen_ai.input.messages"] = self._content(
                [{"role": "user", "parts": [{"type": "text", "content": event.text}]}]
            )
        start = _ns(event.timestamp)
        span = self.tracer.start_span(
            self._text(f"invoke_agent {self.agent_name}"),
            kind=self._trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=start,
        )
        self._turns[event.turn_id] = _Open(span, start, turn_id=event.turn_id, session_id=event.session_id)
        self._running.setdefault(event.session_id, []).append(event.turn_id)

    def _close_turn(self, event: TurnFinished | TurnFailed | TurnCancelled, status: str) -> _Open | None:
        turn = self._turns.pop(event.turn_id, None)
        running = self._running.get(event.session_id)
        if running and event.turn_id in running:
            running.remove(event.turn_id)
            if not running:
                del self._running[event.session_id]
        if turn is None:
            log.debug("turn %s ended without a TurnStarted seen; no span", event.turn_id)
            return None
        end = _ns(event.timestamp)
        # Calls of the turn still open (a cancelled stream) end with it.
        for key in list(turn.children):
            opened = self._calls.pop(key, None)
            if opened is not None:
                self._end_interrupted(opened, end)
        turn.span.set_attribute("llmgine.turn.status", status)
        return turn

    def _turn_finished(self, event: TurnFinished) -> None:
        turn = self._close_turn(event, event.status)
        if turn is None:
            return
        span = turn.span
        span.set_attribute("gen_ai.response.model", self._text(event.model))
        span.set_attribute("gen_ai.usage.input_tokens", event.usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", event.usage.output_tokens)
        span.set_attribute("llmgine.usage.cached_tokens", event.usage.cached_tokens)
        span.set_attribute("llmgine.turn.steps", event.steps)
        if event.cost_usd is not None:
            span.set_attribute("llmgine.cost_usd", event.cost_usd)
        if self.capture_content:
            span.set_attribute(
                "gen_ai.output.messages",
                self._content([{"role": "assistant", "parts": [{"type": "text", "content": event.text}]}]),
            )
        span.end(end_time=max(_ns(event.timestamp), turn.start_ns))

    def _turn_failed(self, event: TurnFailed) -> None:
        turn = self._close_turn(event, "failed")
        if turn is None:
            return
        self._error(turn.span, event.kind, event.reason)
        turn.span.end(end_time=max(_ns(event.timestamp), turn.start_ns))

    def _turn_cancelled(self, event: TurnCancelled) -> None:
        turn = self._close_turn(event, "cancelled")
        if turn is None:
            return
        if self.capture_content and event.partial_text:
            turn.span.set_attribute(
                "gen_ai.output.messages",
                self._content([{"role": "assistant", "parts": [{"type": "text", "content": event.partial_text}]}]),
            )
        turn.span.end(end_time=max(_ns(event.timestamp), turn.start_ns))

    def _turn_event(self, event: ContextCompiled | BudgetExceeded | StepLimitReached) -> None:
        """What happened inside a turn that is not a call of its own: a span event on the turn."""
        turn = self._turns.get(event.turn_id)
        if turn is None:
            return
        if isinstance(event, ContextCompiled):
            name = "llmgine.context_compiled"
            attributes: dict[str, Any] = {
                "llmgine.context.tokens": event.total_tokens,
                "llmgine.context.budget_tokens": event.budget_tokens,
                "llmgine.context.dropped_messages": event.dropped_messages,
                "llmgine.context.summarised_messages": event.summarised_messages,
            }
        elif isinstance(event, BudgetExceeded):
            name = "llmgine.budget_exceeded"
            attributes = {
                "llmgine.budget.limit": event.limit,
                "llmgine.budget.used": event.used,
                "llmgine.budget.allowed": event.allowed,
                "llmgine.budget.approved": event.approved,
            }
        else:
            name = "llmgine.step_limit_reached"
            attributes = {"llmgine.turn.steps": event.steps}
        turn.span.add_event(name, attributes, timestamp=_ns(event.timestamp))

    # -- model calls ---------------------------------------------------------

    def _call_started(self, event: LLMCallStarted) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": self._text(event.model),
            "llmgine.call_id": event.call_id,
            "llmgine.stream": event.stream,
            **self._provider_attributes(event.provider or provider_of(event.model)),
        }
        for setting, attribute in _REQUEST_SETTINGS.items():
            value = event.settings.get(setting)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attributes[attribute] = value
        stop = event.settings.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            attributes["gen_ai.request.stop_sequences"] = [self._text(s) for s in stop]
        if event.tool_names:
            attributes["llmgine.tool_names"] = [self._text(n) for n in event.tool_names]
        self._start_child(
            f"llm:{event.call_id}", event, f"chat {event.model}", self._trace.SpanKind.CLIENT, attributes
        )

    def _call_span(self, event: LLMCallFinished | LLMCallFailed | LLMRetry | LLMFallback) -> _Open | None:
        opened = self._calls.get(f"llm:{event.call_id}")
        if opened is None:
            log.debug("no open span for model call %s (its LLMCallStarted was not seen)", event.call_id)
        return opened

    def _call_finished(self, event: LLMCallFinished) -> None:
        opened = self._call_span(event)
        if opened is None:
            return
        span = opened.span
        span.set_attribute("gen_ai.response.model", self._text(event.model))
        if event.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [event.finish_reason])
        if event.provider:
            for key, value in self._provider_attributes(event.provider).items():
                span.set_attribute(key, value)
        span.set_attribute("gen_ai.usage.input_tokens", event.usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", event.usage.output_tokens)
        span.set_attribute("llmgine.usage.cached_tokens", event.usage.cached_tokens)
        if event.cost_usd is not None:
            span.set_attribute("llmgine.cost_usd", event.cost_usd)
        if event.ttft_s is not None:
            span.set_attribute("llmgine.ttft_s", event.ttft_s)
        if event.finish_reason == "interrupted":
            span.set_attribute("llmgine.interrupted", True)
        if self.capture_content:
            parts: list[dict[str, Any]] = []
            if event.text:
                parts.append({"type": "text", "content": event.text})
            for call in event.tool_calls:
                parts.append(
                    {
                        "type": "tool_call",
                        "id": call.id,
                        "name": call.name,
                        "arguments": call.arguments if call.arguments is not None else call.raw_arguments,
                    }
                )
            message: dict[str, Any] = {"role": "assistant", "parts": parts}
            if event.finish_reason:
                message["finish_reason"] = event.finish_reason
            span.set_attribute("gen_ai.output.messages", self._content([message]))
        key = f"llm:{event.call_id}"
        self._calls.pop(key, None)
        self._end(key, opened, _ns(event.timestamp))

    def _call_failed(self, event: LLMCallFailed) -> None:
        opened = self._call_span(event)
        if opened is None:
            return
        span = opened.span
        attributes: dict[str, Any] = {
            "error.type": event.error_kind,
            "llmgine.attempt": event.attempt,
            "llmgine.model": self._text(event.model),
            "llmgine.will_retry": event.will_retry,
            "exception.type": event.error_type,
            "exception.message": self._text(event.message),
        }
        if event.status_code is not None:
            attributes["http.response.status_code"] = event.status_code
        span.add_event("llmgine.attempt_failed", attributes, timestamp=_ns(event.timestamp))
        if event.will_retry:
            return
        self._error(span, event.error_kind, event.message)
        span.set_attribute("llmgine.error.class", event.error_type)
        key = f"llm:{event.call_id}"
        self._calls.pop(key, None)
        self._end(key, opened, _ns(event.timestamp))

    def _retry(self, event: LLMRetry) -> None:
        opened = self._call_span(event)
        if opened is not None:
            opened.span.add_event(
                "llmgine.retry",
                {"llmgine.attempt": event.attempt, "error.type": event.error_kind},
                timestamp=_ns(event.timestamp),
            )

    def _fallback(self, event: LLMFallback) -> None:
        opened = self._call_span(event)
        if opened is not None:
            opened.span.add_event(
                "llmgine.fallback",
                {
                    "llmgine.from_model": self._text(event.from_model),
                    "llmgine.to_model": self._text(event.to_model),
                    "error.type": event.error_kind,
                },
                timestamp=_ns(event.timestamp),
            )

    # -- tool calls ------------------------------------------------------------

    @staticmethod
    def _tool_key(event: ToolEvent) -> str:
        # Tool-call ids come from the model and repeat across sessions
        # (the offline model numbers them), so the session is part of the key.
        return f"tool:{event.session_id}:{event.call_id}"

    def _tool_span(self, event: ToolEvent) -> _Open | None:
        return self._calls.get(self._tool_key(event))

    def _start_tool(self, event: ToolCallRequested | ToolFinished) -> _Open:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": self._text(event.tool_name),
            "gen_ai.tool.call.id": self._text(event.call_id),
            "gen_ai.tool.type": "function",
        }
        if self.capture_content and isinstance(event, ToolCallRequested):
            attributes["gen_ai.tool.call.arguments"] = self._text(event.raw_arguments)
        return self._start_child(
            self._tool_key(event), event, f"execute_tool {event.tool_name}", self._trace.SpanKind.INTERNAL,
            attributes,
        )

    def _tool_requested(self, event: ToolCallRequested) -> None:
        self._start_tool(event)

    def _approval_requested(self, event: ApprovalRequested) -> None:
        opened = self._tool_span(event)
        if opened is not None:
            opened.span.add_event(
                "llmgine.approval_requested", {"llmgine.risk": event.risk}, timestamp=_ns(event.timestamp)
            )

    def _approval_decided(self, event: ApprovalDecided) -> None:
        opened = self._tool_span(event)
        if opened is None:
            return
        opened.span.set_attribute("llmgine.approval.decision", event.decision)
        opened.span.set_attribute("llmgine.approval.approved", event.approved)
        opened.span.add_event(
            "llmgine.approval_decided",
            {"llmgine.decision": event.decision, "llmgine.approved": event.approved, "llmgine.source": event.source},
            timestamp=_ns(event.timestamp),
        )

    def _tool_started(self, event: ToolStarted) -> None:
        opened = self._tool_span(event)
        if opened is None:
            return
        if self.capture_content:
            # The arguments it actually runs with (after validation or an edit).
            opened.span.set_attribute("gen_ai.tool.call.arguments", self._content(event.arguments))
        opened.span.add_event("llmgine.tool_started", timestamp=_ns(event.timestamp))

    def _tool_finished(self, event: ToolFinished) -> None:
        key = self._tool_key(event)
        opened = self._calls.get(key) or self._start_tool(event)
        self._calls.pop(key, None)
        result = event.result
        span = opened.span
        span.set_attribute("llmgine.tool.status", result.status)
        span.set_attribute("llmgine.tool.duration_s", result.duration)
        if result.truncated_chars:
            span.set_attribute("llmgine.tool.truncated_chars", result.truncated_chars)
        if result.status == "ok":
            if self.capture_content:
                span.set_attribute("gen_ai.tool.call.result", self._text(result.content))
        else:
            # The error text may quote user data: it is content, shown only on opt-in.
            detail = result.content if self.capture_content else None
            self._error(span, result.status, detail or f"the tool call ended with status {result.status!r}")
        self._end(key, opened, _ns(event.timestamp))

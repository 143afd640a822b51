"""The events a model call publishes on the bus.

Every event of one call carries the same ``call_id``; a front end renders
the deltas as they come, an observer records usage and cost from
``LLMCallFinished``, and routing publishes ``LLMRetry`` / ``LLMFallback``
between attempts.  Settings in ``LLMCallStarted`` never hold secrets.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..chat import ToolCall, Usage
from ..messages import Event

__all__ = [
    "LLMEvent",
    "LLMCallStarted",
    "LLMTextDelta",
    "LLMToolCallDelta",
    "LLMCallFinished",
    "LLMCallFailed",
    "LLMRetry",
    "LLMFallback",
    "LLMNotice",
]


class LLMEvent(Event):
    """Base of the events of one model call."""

    call_id: str
    model: str


class LLMCallStarted(LLMEvent):
    """A call was sent: which model, how (settings without secrets), how big."""

    provider: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    message_count: int = 0
    tool_names: list[str] = Field(default_factory=list)
    stream: bool = False


class LLMTextDelta(LLMEvent):
    """A piece of the reply's text, as it streamed in.

    Pieces that stream in within ``BaseLLM.text_delta_interval_s`` of the
    call's last text event are joined into the next one; the texts of a
    call's deltas, joined, are its reply either way.
    """

    text: str


class LLMToolCallDelta(LLMEvent):
    """A piece of a tool call, as it streamed in.

    Parallel tool calls interleave; ``index`` says which call a piece belongs
    to.  ``tool_call_id`` and ``name`` come with a call's first piece.
    """

    index: int
    tool_call_id: str | None = None
    name: str | None = None
    arguments_delta: str = ""


class LLMCallFinished(LLMEvent):
    """The call completed: what came back and what it cost."""

    provider: str | None = None
    finish_reason: str | None = None
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None  # None: the price of this model is unknown
    latency_s: float = 0.0
    ttft_s: float | None = None


class LLMCallFailed(LLMEvent):
    """An attempt failed.  ``will_retry`` says whether the call goes on (retry or fallback)."""

    error_kind: str
    error_type: str
    message: str
    will_retry: bool = False
    attempt: int = 1
    status_code: int | None = None


class LLMRetry(LLMEvent):
    """The same model is tried again (``attempt`` is the attempt about to run), after ``delay_s`` seconds."""

    attempt: int
    error_kind: str
    message: str
    delay_s: float = 0.0


class LLMFallback(LLMEvent):
    """Routing gave up on ``from_model`` and is trying ``to_model`` (``model``) instead."""

    from_model: str
    to_model: str
    error_kind: str
    message: str


class LLMNotice(LLMEvent):
    """Something the user should know about the model in use (e.g. the offline model)."""

    message: str

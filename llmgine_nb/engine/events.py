"""Events the chat engine publishes about a turn (the LLM and tool layers add their own)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..chat import Usage
from ..messages import Event

__all__ = [
    "TurnEvent",
    "TurnStarted",
    "TurnFinished",
    "TurnFailed",
    "TurnCancelled",
    "StepLimitReached",
    "BudgetExceeded",
    "ModelSwitched",
    "SessionReset",
    "SessionForked",
    "ContextCompiled",
]


class TurnEvent(Event):
    """Base of every turn event: which turn of which session."""

    turn_id: str


class TurnStarted(TurnEvent):
    text: str
    model: str
    user_message_id: str


class TurnFinished(TurnEvent):
    """The turn ended with a final answer (or at the step limit, ``status``)."""

    text: str
    model: str
    status: Literal["complete", "step_limit"] = "complete"
    steps: int = 1
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    latency_s: float = 0.0
    message_id: str | None = None
    structured: Any = None  # the validated output, as JSON, when one was asked for


class TurnFailed(TurnEvent):
    """The turn ended on an error; ``reason`` says in a sentence what to do."""

    kind: str
    reason: str
    error: str
    retryable: bool = True


class TurnCancelled(TurnEvent):
    """The turn was cancelled; what was said so far is kept, marked interrupted."""

    partial_text: str = ""
    reason: str = ""


class StepLimitReached(TurnEvent):
    steps: int


class BudgetExceeded(TurnEvent):
    """A call would exceed a token or cost budget; the user was asked."""

    limit: str  # e.g. "turn_tokens", "session_cost_usd"
    used: float
    allowed: float
    approved: bool


class ModelSwitched(Event):
    model: str
    previous: str | None = None


class SessionReset(Event):
    pass


class SessionForked(Event):
    new_session_id: str
    at_message_id: str | None = None


class ContextCompiled(TurnEvent):
    """What was sent to the model: tokens per part, and what was dropped or summarised."""

    total_tokens: int
    budget_tokens: int
    parts: dict[str, int] = Field(default_factory=dict)
    dropped_messages: int = 0
    summarised_messages: int = 0

"""Events the chat engine publishes about a turn (the LLM and tool layers add their own)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from llmgine_nb.frozen import FrozenModel

from ..chat import ImageRef, Usage
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
    "SentPart",
    "RequestReplayed",
    "MessagesForgotten",
    "MessageEdited",
    "MessagePinned",
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
    request_hash: str | None = None  # of the last request sent (see ContextCompiled.request_hash)
    replayed: bool = False  # the last answer came from the request cache


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


class SentPart(FrozenModel):
    """A message the context compiler wrote (system prompt, memory, summary), as it was sent."""

    kind: str
    role: str
    tokens: int
    text: str = ""


class ContextCompiled(TurnEvent):
    """What was sent to the model: tokens per part, and what was dropped or summarised.

    Sized by what is sent, never by the whole history: the stored messages
    sent are named by a range (``history_from_id`` .. ``history_to_id``, in
    the session's order) plus ``pinned_ids`` older than it; the parts the
    compiler wrote travel whole (``written``).  ``request_hash`` is the
    sha256 of the exact request (model, messages, tools, options; images by
    their content hash), the key of the request cache and of an answer's
    provenance.
    """

    total_tokens: int
    budget_tokens: int
    parts: dict[str, int] = Field(default_factory=dict)
    dropped_messages: int = 0
    summarised_messages: int = 0
    model: str | None = None
    request_hash: str | None = None
    written: list[SentPart] = Field(default_factory=list)
    history_from_id: str | None = None
    history_to_id: str | None = None
    pinned_ids: list[str] = Field(default_factory=list)
    images: list[ImageRef] = Field(default_factory=list)
    image_tokens: int = 0
    tools: dict[str, int] = Field(default_factory=dict)  # each tool's schema and its tokens
    forgotten_ids: list[str] = Field(default_factory=list)  # messages left out because the user forgot them


class RequestReplayed(TurnEvent):
    """The answer to this exact request came from the request cache: nothing was paid for it.

    ``usage`` and ``cost_usd`` are what the original call used and cost.
    """

    request_hash: str
    model: str
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    cached_at: str | None = None


class MessagesForgotten(Event):
    """An exchange was left out of (or, ``forgotten=False``, brought back into) what the model is sent."""

    message_ids: list[str]
    forgotten: bool = True


class MessageEdited(Event):
    message_id: str
    text: str
    previous: str = ""


class MessagePinned(Event):
    message_id: str
    pinned: bool = True

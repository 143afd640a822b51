"""What the store's queries return: small frozen records, one per table row or report line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..chat import ChatMessage, ToolCall, Usage
from ..messages import StopPublishing

__all__ = [
    "ToolStatus",
    "Decision",
    "SessionRecord",
    "SessionSummary",
    "ToolCallRecord",
    "ApprovalRecord",
    "LLMCall",
    "UsageRow",
    "SearchHit",
    "MemoryNote",
    "StoredSummary",
    "LoadedSession",
    "SessionNotFound",
    "ToolCallNotFound",
    "StoreError",
    "Fenced",
]

ToolStatus = Literal["requested", "approved", "denied", "running", "done", "error"]
Decision = Literal["approved", "denied"]


class StoreError(Exception):
    """A request the store cannot carry out; the message says what to do instead."""


class SessionNotFound(StoreError, LookupError):
    """No session has that id or name."""


class ToolCallNotFound(StoreError, LookupError):
    """No tool call with that id was recorded in the session."""


class Fenced(StoreError, StopPublishing):
    """A write refused because a newer holder of the session has written it (``store/fencing.py``).

    The writer's ``token`` is lower than the one the session has recorded: the
    writer lost the session's partition (it stalled past its lease) and another
    took the session over.  Nothing of the write was stored.  Raised in a
    subscriber that records an event first (the journal), it reaches the
    event's publisher (``StopPublishing``): a tool whose start was refused
    does not start.
    """

    def __init__(self, session_id: str, token: int, recorded: int) -> None:
        super().__init__(
            f"session {session_id!r} has been written by a newer holder (fencing token {recorded}); "
            f"this writer's token {token} is out of date, so its write was refused and nothing of it stored"
        )
        self.session_id = session_id
        self.token = token
        self.recorded = recorded


@dataclass(frozen=True)
class SessionRecord:
    """One conversation: where it came from and the engine's saved state."""

    id: str
    name: str | None
    model: str | None
    created: datetime
    notebook: str | None = None
    forked_from_session: str | None = None
    forked_from_message: str | None = None
    engine_state: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionSummary:
    """A line of ``Store.list_sessions()``: the session plus its activity totals."""

    session: SessionRecord
    message_count: int
    last_activity: datetime
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: float  # the sum of the known costs
    #: Calls whose price is unknown (e.g. a local model missing from litellm's
    #: price list): when non-zero the true cost is at least ``cost``.
    unpriced_calls: int = 0

    @property
    def cost_known(self) -> bool:
        """True when every call was priced, so ``cost`` is the whole cost."""
        return self.unpriced_calls == 0

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def name(self) -> str | None:
        return self.session.name


@dataclass(frozen=True)
class ApprovalRecord:
    """A decision on a tool call: who decided, what, and with which arguments."""

    id: str
    tool_call: str
    session_id: str
    call_id: str
    decision: Decision
    who: str | None
    edited_arguments: dict[str, Any] | None
    reason: str | None
    created: datetime


@dataclass(frozen=True)
class ToolCallRecord:
    """A tool call as requested by the model, with its state and result.

    ``id`` is the store's own key; ``call_id`` is the id the model gave it
    (the one tool-result messages refer to).  ``approval`` is the latest
    decision, if any.
    """

    id: str
    call_id: str
    session_id: str
    message_id: str | None
    tool: str
    arguments: str
    status: ToolStatus
    result: str | None
    error: str | None
    result_message_id: str | None
    requested: datetime
    decided: datetime | None
    started: datetime | None
    finished: datetime | None
    duration_ms: float | None
    approval: ApprovalRecord | None = None

    @property
    def call(self) -> ToolCall:
        """The call as the model made it."""
        return ToolCall.from_raw(self.call_id, self.tool, self.arguments)

    @property
    def effective_arguments(self) -> dict[str, Any] | None:
        """The arguments to run with: the approver's edit if there was one, else the model's."""
        if self.approval is not None and self.approval.edited_arguments is not None:
            return self.approval.edited_arguments
        try:
            parsed = json.loads(self.arguments)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


@dataclass(frozen=True)
class LLMCall:
    """One model call: what it cost and how long it took.

    Build one to pass to ``Store.record_llm_call`` / ``record_turn``; the
    store also returns these from ``Store.llm_calls()``.
    """

    model: str
    session_id: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    error: str | None = None
    message_id: str | None = None
    id: str | None = None
    created: datetime | None = None

    @classmethod
    def from_usage(cls, model: str, usage: Usage, **fields: Any) -> LLMCall:
        return cls(
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            **fields,
        )

    @property
    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens, output_tokens=self.output_tokens, cached_tokens=self.cached_tokens
        )


@dataclass(frozen=True)
class UsageRow:
    """Usage totals for one session, model or UTC day."""

    key: str | None
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: float  # the sum of the known costs
    mean_latency_ms: float | None
    #: Calls whose price is unknown (e.g. a local model missing from litellm's
    #: price list): when non-zero the true cost is at least ``cost``.
    unpriced_calls: int = 0

    @property
    def cost_known(self) -> bool:
        """True when every call was priced, so ``cost`` is the whole cost."""
        return self.unpriced_calls == 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class SearchHit:
    """A message matching a full-text search, with a highlighted snippet."""

    message_id: str
    session_id: str
    session_name: str | None
    seq: int
    role: str
    snippet: str
    content: str
    created: datetime
    rank: float


@dataclass(frozen=True)
class MemoryNote:
    """A fact to remember: for one session, or for all when ``session_id`` is None."""

    id: str
    session_id: str | None
    text: str
    created: datetime


@dataclass(frozen=True)
class StoredSummary:
    """A summary standing in for a session's messages up to ``upto_message_id``."""

    id: str
    session_id: str
    upto_message_id: str
    text: str
    covered: int
    created: datetime


@dataclass(frozen=True)
class LoadedSession:
    """A session resumed from disk: its record, full history, and the tool
    calls still waiting for a decision (present these again; never run them
    unasked)."""

    session: SessionRecord
    messages: list[ChatMessage]
    pending_tool_calls: list[ToolCallRecord]

    @property
    def id(self) -> str:
        return self.session.id

"""The request and response bodies of the REST API (they become the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..store import SessionRecord, SessionSummary

__all__ = [
    "NewSession",
    "SessionOut",
    "SendBody",
    "ModelBody",
    "ModelOut",
    "TurnStartedOut",
    "DecideBody",
    "AnswerBody",
    "ForkBody",
    "PendingItem",
    "MessageOut",
    "SearchHitOut",
    "UsageOut",
    "TicketBody",
    "TicketOut",
    "OkOut",
    "StopOut",
    "MeOut",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewSession(_Body):
    name: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)


class SessionOut(BaseModel):
    id: str
    name: str | None
    model: str | None
    created: datetime
    forked_from_session: str | None = None
    running: bool = False
    last_seq: int = 0
    message_count: int | None = None
    cost: float | None = None

    @classmethod
    def of(cls, record: SessionRecord, *, running: bool = False, last_seq: int = 0,
           summary: SessionSummary | None = None) -> SessionOut:
        return cls(
            id=record.id, name=record.metadata.get("title") or record.name, model=record.model, created=record.created,
            forked_from_session=record.forked_from_session, running=running, last_seq=last_seq,
            message_count=summary.message_count if summary else None, cost=summary.cost if summary else None,
        )


class SendBody(_Body):
    text: str
    model: str | None = Field(default=None, max_length=200)


class ModelBody(_Body):
    model: str = Field(min_length=1, max_length=200)


class ModelOut(BaseModel):
    model: str


class TurnStartedOut(BaseModel):
    turn_id: str
    session_id: str


class DecideBody(_Body):
    decision: Literal["approve", "deny", "edit", "always"]
    message: str | None = Field(default=None, max_length=4000)
    arguments: dict[str, Any] | None = None
    # The hash of the arguments the person saw (ApprovalRequested.args_hash): the call runs only if it matches.
    args_hash: str | None = Field(default=None, max_length=200)


class AnswerBody(_Body):
    answer: str | bool | None = None


class ForkBody(_Body):
    at_message_id: str | None = None
    name: str | None = Field(default=None, max_length=200)


class PendingItem(BaseModel):
    kind: Literal["approval", "confirm", "choice"]
    id: str
    display_id: str | None = None
    args_hash: str | None = None
    call_id: str | None = None
    tool_name: str | None = None
    arguments: dict[str, Any] | None = None
    risk: str | None = None
    reason: str | None = None
    preview: str | None = None
    allow_always: bool | None = None
    question: str | None = None
    options: list[str] | None = None
    turn_id: str | None = None


class MessageOut(BaseModel):
    id: str
    role: str
    content: str | None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    model: str | None = None
    status: str | None = None
    created: datetime | None = None


class SearchHitOut(BaseModel):
    message_id: str
    session_id: str
    role: str
    snippet: str


class UsageOut(BaseModel):
    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float


class TicketBody(_Body):
    session_id: str | None = None


class TicketOut(BaseModel):
    ticket: str
    expires_in: float


class OkOut(BaseModel):
    ok: bool = True


class StopOut(OkOut):
    """A stop's answer: ``ok`` is whether a turn was stopped; ``message`` says why not."""

    message: str | None = None


class MeOut(BaseModel):
    name: str


class StreamEventOut(BaseModel):
    """One numbered event, as the streams carry it: its other fields are those of the component ``type`` names."""

    model_config = ConfigDict(extra="allow")

    seq: int = Field(description="The event's number in its session's stream (1, 2, 3 ...; no gaps).")
    type: str = Field(description="The event's registry name, e.g. llmgine_nb.engine.events.TurnStarted: "
                                  "the schema component that describes the rest of its fields.")

"""What a turn returns, and how the events of a turn learn its id.

Every event published while a turn runs (by the engine, the LLM layer or the
tools) gets ``metadata["turn_id"]``, so observers can group a turn's model
calls and tool calls without guessing.  The id travels in a ContextVar and
is stamped by one small event middleware per bus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..bus import MessageBus
from ..chat import Usage
from ..messages import Event

__all__ = ["TurnResult", "TurnStatus", "current_turn_id", "install_turn_stamp"]

TurnStatus = Literal["complete", "step_limit", "failed", "cancelled"]

current_turn_id: ContextVar[str | None] = ContextVar("llmgine_turn", default=None)


class TurnResult(BaseModel):
    """How a turn ended, what was said, and what it used."""

    turn_id: str
    session_id: str
    status: TurnStatus
    text: str = ""
    model: str = ""
    steps: int = 0
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    latency_s: float = 0.0
    message_id: str | None = None
    reason: str | None = None  # for failed/cancelled/step_limit: a sentence on what to do
    error_kind: str | None = None
    structured: Any = Field(default=None, exclude=True)  # the validated instance, if one was asked for

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def __str__(self) -> str:
        return self.text if self.ok else f"[{self.status}] {self.reason or self.text}"


async def _stamp_turn(event: Event, call_next: Callable[[Event], Awaitable[None]]) -> Any:
    turn_id = current_turn_id.get()
    if turn_id is not None and "turn_id" not in event.metadata:
        event.metadata["turn_id"] = turn_id
    return await call_next(event)


def install_turn_stamp(bus: MessageBus) -> None:
    """Add the turn-id middleware to ``bus`` once, however many engines share it."""
    if not getattr(bus, "_llmgine_turn_stamp", False):
        bus.add_event_middleware(_stamp_turn)
        bus._llmgine_turn_stamp = True  # type: ignore[attr-defined]

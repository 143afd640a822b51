"""What a turn returns."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..chat import ChatMessage, Usage

__all__ = ["RunningTurn", "TurnResult", "TurnStatus"]

TurnStatus = Literal["complete", "step_limit", "failed", "cancelled"]


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
    # The validated instance when one was asked for; a receiver across a wire gets its JSON
    # and rebuilds it with ``read(value, response_model)``.
    structured: Any = None

    @classmethod
    def read(cls, value: Any, response_model: type[BaseModel] | None = None) -> TurnResult:
        """A command's result as a ``TurnResult`` (rebuilt from JSON when it crossed a wire)."""
        result = value if isinstance(value, TurnResult) else cls.model_validate(value)
        if response_model is not None and isinstance(result.structured, dict):
            result = result.model_copy(update={"structured": response_model.model_validate(result.structured)})
        return result

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def __str__(self) -> str:
        return self.text if self.ok else f"[{self.status}] {self.reason or self.text}"


class RunningTurn:
    """The running state of one turn (what a cancellation must keep)."""

    def __init__(self, turn_id: str, model: str) -> None:
        self.id = turn_id
        self.model = model
        self.started = time.perf_counter()
        self.steps = 0
        self.usage = Usage()
        self.cost: float | None = None
        self.pieces: list[str] = []  # text streamed by the current model call so far, joined when read
        self.draft: ChatMessage | None = None  # the partial reply as saved on disk while it streams
        self.approved_overruns: set[str] = set()
        self.request_hash: str | None = None  # of the request sent last (engine/requests.py)
        self.replayed = False  # its answer came from the request cache

    def add(self, usage: Usage, cost: float | None) -> None:
        self.usage = self.usage + usage
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost

    @property
    def latency(self) -> float:
        return time.perf_counter() - self.started

    @property
    def partial(self) -> str:
        """The text streamed so far.  Kept as pieces: adding to one string copies it each time (quadratic)."""
        if len(self.pieces) > 1:
            self.pieces[:] = ["".join(self.pieces)]  # joined once; the next read only joins what came since
        return self.pieces[0] if self.pieces else ""

    def result(self, session_id: str, status: TurnStatus, **fields: Any) -> TurnResult:
        """How this turn ended, with what it used so far."""
        return TurnResult(
            turn_id=self.id, session_id=session_id, status=status, model=self.model, steps=self.steps,
            usage=self.usage, cost_usd=self.cost, latency_s=self.latency, **fields,
        )

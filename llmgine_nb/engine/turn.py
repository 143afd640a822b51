"""What a turn returns."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..chat import Usage

__all__ = ["TurnResult", "TurnStatus"]

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
    structured: Any = Field(default=None, exclude=True)  # the validated instance, if one was asked for

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def __str__(self) -> str:
        return self.text if self.ok else f"[{self.status}] {self.reason or self.text}"

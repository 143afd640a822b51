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

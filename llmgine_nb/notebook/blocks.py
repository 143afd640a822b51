"""The blocks a turn is shown as: text, a tool call (with its approval), a question, a notice.

Plain dataclasses, filled in by ``Transcript.apply`` as events arrive and
read by the renderers (``render``, ``live``, ``widgets``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "Approval", "Block", "Failure", "NoticeBlock", "QuestionBlock", "TextBlock", "ToolBlock", "ToolState", "TurnStatus",
    "shown_id",
]


TurnStatus = Literal["waiting", "running", "complete", "step_limit", "failed", "cancelled"]
ToolState = Literal[
    "preparing", "requested", "invalid", "awaiting approval", "approved", "denied", "running", "ok", "error", "timeout"
]


@dataclass
class TextBlock:
    """Text the model wrote in one call (streamed piece by piece)."""

    call_id: str
    model: str = ""
    parts: list[str] = field(default_factory=list)
    final: str | None = None  # the call's whole text, once it finished
    interrupted: bool = False
    kind: str = "text"

    @property
    def text(self) -> str:
        return self.final if self.final is not None else "".join(self.parts)


@dataclass
class Approval:
    """Why a tool call needs approval, and what was decided."""

    risk: str = "write"
    reason: str = ""
    preview: str | None = None
    description: str = ""
    permissions: list[str] = field(default_factory=list)
    allow_always: bool = True
    decision: str | None = None  # approve | deny | edit | always
    approved: bool | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    source: str | None = None  # handler | session | timeout | no_handler | ...
    message: str | None = None
    edited_arguments: dict[str, Any] | None = None
    note: str = ""
    display_id: str = ""  # the short id to show and answer with
    args_hash: str = ""  # the hash of the arguments shown, sent back with the decision

    @property
    def pending(self) -> bool:
        return self.decision is None


@dataclass
class ToolBlock:
    """One tool call: arguments, approval, result."""

    call_id: str
    tool_name: str
    raw_arguments: str = ""
    arguments: dict[str, Any] | None = None
    state: ToolState = "requested"
    approval: Approval | None = None
    result: str | None = None
    error: str | None = None
    duration_s: float | None = None
    started: float | None = None  # perf_counter when it started running
    kind: str = "tool"
    # Images the result carried (an MCP tool's image content): [{"mimeType": ..., "data": base64}]
    images: list[dict[str, str]] = field(default_factory=list)

    @property
    def shown_arguments(self) -> dict[str, Any] | None:
        if self.arguments is not None:
            return self.arguments
        try:
            parsed = json.loads(self.raw_arguments) if self.raw_arguments else {}
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


@dataclass
class QuestionBlock:
    """A tool's question to the user: yes/no, or "did you mean 1) 2) 3)"."""

    request_id: str
    question: str
    kind: Literal["confirm", "choice"] = "confirm"
    options: list[str] = field(default_factory=list)
    call_id: str | None = None
    tool_name: str | None = None
    answered: bool = False
    answer: Any = None
    answered_by: str | None = None
    display_id: str = ""  # the short id to show and answer with


@dataclass
class NoticeBlock:
    """Something the user should know: the offline model, a retry, the step limit."""

    text: str
    level: Literal["info", "warning"] = "info"
    kind: str = "notice"


Block = TextBlock | ToolBlock | QuestionBlock | NoticeBlock


@dataclass
class Failure:
    kind: str
    reason: str
    error: str = ""
    retryable: bool = True


def shown_id(block: Any) -> str:
    """The id a person answers a card with: its display id, else the call's (or question's) whole id."""
    approval = getattr(block, "approval", None)
    display = approval.display_id if approval is not None else getattr(block, "display_id", "")
    return display or getattr(block, "call_id", None) or block.request_id

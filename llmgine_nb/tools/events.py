"""Events of a tool call, in the order they happen.

Every call starts with ``ToolCallRequested`` and ends with ``ToolFinished``
(whose ``result`` says whether it ran).  In between, verification steps are
published in order; a step that stops the call is the last before
``ToolFinished``:

1. ``ToolArgumentsValidated`` or ``ToolValidationFailed``
2. ``ToolPermissionChecked``
3. ``ToolImpactAssessed``
4. ``ApprovalRequested`` then ``ApprovalDecided`` (when the policy asks;
   a remembered "always allow" gives ``ApprovalDecided`` alone)
5. ``ToolStarted`` - the tool's code is about to run
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..messages import Event
from .results import ToolResult

__all__ = [
    "ToolEvent",
    "ToolCallRequested",
    "ToolArgumentsValidated",
    "ToolValidationFailed",
    "ToolPermissionChecked",
    "ToolImpactAssessed",
    "ApprovalRequested",
    "ApprovalDecided",
    "ToolStarted",
    "ToolFinished",
    "DecisionSource",
]

# Where a decision came from.  Only "handler" and "session" can approve.
DecisionSource = Literal["handler", "session", "no_handler", "timeout", "handler_error", "malformed"]


class ToolEvent(Event):
    """Base of every tool event: which call of which tool."""

    call_id: str
    tool_name: str


class ToolCallRequested(ToolEvent):
    """The model asked for a call; nothing is checked yet."""

    raw_arguments: str = ""


class ToolArgumentsValidated(ToolEvent):
    """The arguments fit the schema (shown after coercion, in JSON form)."""

    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolValidationFailed(ToolEvent):
    """Unknown tool, arguments that are not JSON, or arguments that do not fit."""

    error: str


class ToolPermissionChecked(ToolEvent):
    """The permissions the tool needs against the user's grants."""

    required: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    granted: bool = True
    user: str | None = None
    reason: str = ""


class ToolImpactAssessed(ToolEvent):
    """The risk of the call and whether its policy wants approval."""

    risk: str
    policy: str
    requires_approval: bool
    reason: str = ""


class ApprovalRequested(ToolEvent):
    """Approval was asked for through a ``RequestApproval`` command."""

    arguments: dict[str, Any] = Field(default_factory=dict)
    risk: str = "write"
    reason: str = ""
    preview: str | None = None
    request_id: str = ""


class ApprovalDecided(ToolEvent):
    """The decision: ``approved`` is the only thing that lets the call run."""

    decision: Literal["approve", "deny", "edit", "always"]
    approved: bool
    source: DecisionSource = "handler"
    message: str | None = None
    arguments: dict[str, Any] | None = None  # edited arguments, for decision="edit"
    reason: str = ""


class ToolStarted(ToolEvent):
    """The tool's code starts now, with these arguments."""

    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolFinished(ToolEvent):
    """The call is over, run or not; ``result.status`` says how it ended."""

    result: ToolResult

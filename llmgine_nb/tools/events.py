"""Events of a tool call, in the order they happen.

Every call starts with ``ToolCallRequested`` and ends with ``ToolFinished``
(whose ``result`` says whether it ran).  In between, verification steps are
published in order; a step that stops the call is the last before
``ToolFinished``:

1. ``ToolArgumentsValidated`` or ``ToolValidationFailed``
2. ``ToolPermissionChecked``
3. ``ToolImpactAssessed``
4. ``ApprovalRequested`` then ``ApprovalDecided`` (when the policy asks;
   a remembered "always allow" gives ``ApprovalDecided`` alone; a request
   nobody answered in time gives ``ApprovalExpired`` before its denial)
5. ``ToolStarted`` - the tool's code is about to run

A running tool's questions are announced by ``ConfirmationRequested`` /
``ChoiceRequested`` and end with ``QuestionAnswered`` or ``QuestionExpired``.

These events are all a front end needs to draw a card and to answer it:
the display id to show and to send back, the arguments in full (secrets are
removed by value, never by an argument's name), their hash for the decision
to carry, and who decided.
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
    "ApprovalExpired",
    "ConfirmationRequested",
    "ChoiceRequested",
    "QuestionAnswered",
    "QuestionExpired",
    "ToolStarted",
    "ToolFinished",
    "DecisionSource",
]

# Where a decision came from.  Only "handler" and "session" can approve.
DecisionSource = Literal[
    "handler", "session", "no_handler", "timeout", "handler_error", "malformed", "arguments_changed"
]


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
    """Approval was asked for through a ``RequestApproval`` command: draw its card from this.

    ``display_id`` is the short id to show and to answer with
    (``DecideApproval(call_id=display_id, args_hash=args_hash, ...)``);
    ``arguments`` are every argument the call will be given.
    """

    arguments: dict[str, Any] = Field(default_factory=dict)
    risk: str = "write"
    reason: str = ""
    preview: str | None = None
    request_id: str = ""
    display_id: str = ""
    args_hash: str = ""
    description: str = ""
    permissions: list[str] = Field(default_factory=list)
    allow_always: bool = True


class ApprovalDecided(ToolEvent):
    """The decision: ``approved`` is the only thing that lets the call run."""

    decision: Literal["approve", "deny", "edit", "always"]
    approved: bool
    source: DecisionSource = "handler"
    message: str | None = None  # the person's message (for a denial: told to the model)
    arguments: dict[str, Any] | None = None  # edited arguments, for decision="edit"
    reason: str = ""
    decided_by: str | None = None  # who decided, when a person (or a named policy) said
    display_id: str = ""


class ApprovalExpired(ToolEvent):
    """Nobody decided in time (or nobody could): the call is denied (fail closed); take its card down."""

    display_id: str = ""
    request_id: str = ""
    reason: str = ""


class _QuestionEvent(Event):
    """Base of the events of a tool's question to the user."""

    question_id: str  # the ConfirmRequest/ChoiceRequest command's id
    display_id: str = ""
    call_id: str | None = None
    tool_name: str | None = None


class ConfirmationRequested(_QuestionEvent):
    """A tool asks a yes/no question; answer with ``AnswerQuestion(question_id=display_id, answer=True)``."""

    question: str


class ChoiceRequested(_QuestionEvent):
    """A tool asks "did you mean 1) 2) 3)"; answer with one of ``options`` (or None for none)."""

    question: str
    options: list[str] = Field(default_factory=list)


class QuestionAnswered(_QuestionEvent):
    """The answer the tool got: an option, True/False, or None."""

    answer: Any = None
    decided_by: str | None = None


class QuestionExpired(_QuestionEvent):
    """Nobody answered in time, or the call ended first: the tool got "no"/None."""

    reason: str = ""


class ToolStarted(ToolEvent):
    """The tool's code starts now, with these arguments."""

    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolFinished(ToolEvent):
    """The call is over, run or not; ``result.status`` says how it ended."""

    result: ToolResult

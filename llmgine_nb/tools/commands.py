"""The questions the tool layer asks whichever front end is attached.

Each is a bus ``Command``: the tool manager sends it with ``bus.execute``
and the one registered handler (a widget, a text prompt, ``%llmgine
approve``, a test, an auto-policy) answers.  No handler, an error, a
timeout or an answer of the wrong shape all count as "no" (fail closed).

Answers:

* ``RequestApproval`` -> an ``ApprovalDecision`` (or a dict of one).
* ``ConfirmRequest`` -> ``True`` to confirm; anything else is "no".
* ``ChoiceRequest`` -> one of ``options`` (the option itself), or ``None``.

A question may also be answered with a ``QuestionAnswer`` (the value and who
gave it).  Front ends do not handle these commands themselves: they render
the events that announce them (``ApprovalRequested``,
``ConfirmationRequested``, ``ChoiceRequested``) and answer with the commands
``DecideApproval`` / ``AnswerQuestion``, which an ``ApprovalQueue`` settles.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..messages import Command

__all__ = ["RequestApproval", "ConfirmRequest", "ChoiceRequest", "ToolQuestion", "QuestionAnswer"]


class RequestApproval(Command):
    """May this tool call run?  Shows what would run and why approval is asked."""

    call_id: str
    tool_name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    risk: str = "write"
    reason: str = ""
    permissions: list[str] = Field(default_factory=list)
    description: str = ""
    # What a person must see to decide, e.g. the code run_python would run.
    preview: str | None = None
    # Whether "always allow this tool for this session" is an accepted answer.
    allow_always: bool = True
    # The short id shown on the card (unique among the session's pending items; see pending.py).
    display_id: str = ""
    # The hash of ``arguments``: a decision carrying another hash does not run the call.
    args_hash: str = ""


class ToolQuestion(Command):
    """A question a running tool asks the user (base of confirm and choose)."""

    question: str
    call_id: str | None = None
    tool_name: str | None = None
    display_id: str = ""  # the short id shown with the question


class ConfirmRequest(ToolQuestion):
    """A yes/no question; the handler answers ``True`` for yes."""


class ChoiceRequest(ToolQuestion):
    """"Did you mean 1) X, 2) Y or 3) Z?"; the handler answers an option or ``None``."""

    options: list[str] = Field(default_factory=list)


class QuestionAnswer(BaseModel):
    """An answer to a ``ConfirmRequest``/``ChoiceRequest`` together with who gave it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Any = None
    decided_by: str | None = None


def read_answer(value: Any) -> QuestionAnswer:
    """A handler's answer as a ``QuestionAnswer`` (a bare value, or one that crossed a wire as a dict)."""
    if isinstance(value, QuestionAnswer):
        return value
    if isinstance(value, dict) and set(value) <= {"value", "decided_by"} and "value" in value:
        return QuestionAnswer.model_validate(value)
    return QuestionAnswer(value=value)

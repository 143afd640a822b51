"""The questions the tool layer asks whichever front end is attached.

Each is a bus ``Command``: the tool manager sends it with ``bus.execute``
and the one registered handler (a widget, a text prompt, ``%llmgine
approve``, a test, an auto-policy) answers.  No handler, an error, a
timeout or an answer of the wrong shape all count as "no" (fail closed).

Answers:

* ``RequestApproval`` -> an ``ApprovalDecision`` (or a dict of one).
* ``ConfirmRequest`` -> ``True`` to confirm; anything else is "no".
* ``ChoiceRequest`` -> one of ``options`` (the option itself), or ``None``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..messages import Command

__all__ = ["RequestApproval", "ConfirmRequest", "ChoiceRequest", "ToolQuestion"]


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


class ToolQuestion(Command):
    """A question a running tool asks the user (base of confirm and choose)."""

    question: str
    call_id: str | None = None
    tool_name: str | None = None


class ConfirmRequest(ToolQuestion):
    """A yes/no question; the handler answers ``True`` for yes."""


class ChoiceRequest(ToolQuestion):
    """"Did you mean 1) X, 2) Y or 3) Z?"; the handler answers an option or ``None``."""

    options: list[str] = Field(default_factory=list)

"""Commands the chat engine answers: what a front end can ask of it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..messages import Command

__all__ = ["SendMessage", "CancelTurn", "DecideApproval", "SwitchModel", "ResetSession", "ForkSession"]


class SendMessage(Command):
    """Start a turn with a user message; the result is the turn's ``TurnResult``."""

    text: str
    model: str | None = None  # this turn only; SwitchModel changes the default
    system: str | None = None  # replaces the session's system prompt for this turn
    use_tools: bool = True
    # A pydantic class for structured output; held in memory, not serialised.
    response_model: Any = Field(default=None, exclude=True)


class CancelTurn(Command):
    """Cancel the running turn; the partial reply is kept, marked interrupted."""

    reason: str = "cancelled by the user"


class DecideApproval(Command):
    """Answer a pending approval by its tool-call id."""

    call_id: str
    decision: Literal["approve", "deny", "edit", "always"]
    message: str | None = None  # for deny: told to the model
    arguments: dict[str, Any] | None = None  # for edit: the new arguments
    decided_by: str = "user"


class SwitchModel(Command):
    model: str


class ResetSession(Command):
    """Forget the history of the session (it is kept on disk under its old id)."""


class ForkSession(Command):
    """Continue in a new session copied up to ``at_message_id`` (default: all)."""

    at_message_id: str | None = None
    name: str | None = None

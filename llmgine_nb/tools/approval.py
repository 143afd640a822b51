"""Approval decisions and ready-made front ends that give them.

A ``RequestApproval`` command is answered with an ``ApprovalDecision``:

* ``approve`` - run the call as asked;
* ``deny`` - do not run it; ``message`` goes back to the model;
* ``edit`` - run it with ``arguments`` instead (validated again first);
* ``always`` - run it, and do not ask again for this tool in this session.

Anything else (no handler, a handler error, a timeout, an answer that is not
one of these, an ``edit`` without arguments, an ``approve`` carrying
arguments) is a denial.

A decision says who made it (``decided_by``) and may carry the hash of the
arguments the person saw (``args_hash``): the call then runs only if its
arguments hash the same.

``AutoApproval`` answers by a rule (approve all, deny all, a function);
``ApprovalQueue`` (queue.py) keeps requests pending until a person decides by
display id, from any thread - what ``%llmgine approve ID`` and the widgets use.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..messages import Command
from .commands import RequestApproval

__all__ = [
    "ApprovalDecision",
    "DecisionKind",
    "MalformedDecision",
    "parse_decision",
    "restore_hidden",
    "AutoApproval",
    "Attachment",
]

log = logging.getLogger("llmgine_nb.tools.approval")

DecisionKind = Literal["approve", "deny", "edit", "always"]


class MalformedDecision(ValueError):
    """An answer to ``RequestApproval`` that is not a clear decision."""


class ApprovalDecision(BaseModel):
    """A person's (or a policy's) answer to ``RequestApproval``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DecisionKind
    message: str | None = None
    arguments: dict[str, Any] | None = None
    #: Who decided (a person's name, "policy" ...), carried to ``ApprovalDecided.decided_by``.
    decided_by: str | None = None
    #: The hash of the arguments the decision was made on (``RequestApproval.args_hash``); None: not checked.
    args_hash: str | None = None

    @model_validator(mode="after")
    def _unambiguous(self) -> ApprovalDecision:
        if self.kind == "edit" and self.arguments is None:
            raise ValueError("an 'edit' decision needs the edited arguments")
        if self.kind != "edit" and self.arguments is not None:
            raise ValueError(f"a '{self.kind}' decision cannot carry arguments; use kind='edit' to change them")
        return self

    @property
    def approved(self) -> bool:
        return self.kind != "deny"

    @classmethod
    def approve(cls, message: str | None = None) -> ApprovalDecision:
        return cls(kind="approve", message=message)

    @classmethod
    def deny(cls, message: str | None = None) -> ApprovalDecision:
        """Deny; ``message`` (e.g. "use the staging database") is returned to the model."""
        return cls(kind="deny", message=message)

    @classmethod
    def edit(cls, arguments: dict[str, Any], message: str | None = None) -> ApprovalDecision:
        """Approve with these arguments instead (a complete replacement, validated again)."""
        return cls(kind="edit", arguments=dict(arguments), message=message)

    @classmethod
    def always(cls, message: str | None = None) -> ApprovalDecision:
        """Approve, and approve this tool for the rest of the session without asking."""
        return cls(kind="always", message=message)


DecisionLike = ApprovalDecision | dict[str, Any] | str


def parse_decision(value: Any) -> ApprovalDecision:
    """Read an answer as a decision, or raise ``MalformedDecision``.

    Accepted: an ``ApprovalDecision``; a dict of one (``{"kind": "deny",
    "message": ...}``); the words ``"approve"``, ``"deny"``, ``"always"``.
    Nothing else - not ``True``, not ``"yes"`` - because a guess could run
    something nobody approved.
    """
    if isinstance(value, ApprovalDecision):
        return value
    if value == "approve" or value == "deny" or value == "always":
        return ApprovalDecision(kind=value)
    if isinstance(value, dict):
        try:
            return ApprovalDecision.model_validate(value)
        except ValidationError as exc:
            raise MalformedDecision(f"not a valid approval decision: {exc.errors(include_url=False)[0]['msg']}") from None
    raise MalformedDecision(
        f"{value!r} is not an approval decision; answer with ApprovalDecision.approve()/deny()/edit()/always() "
        "or one of the words 'approve', 'deny', 'always'"
    )


def restore_hidden(edited: dict[str, Any], original: dict[str, Any], redact: Callable[[Any], Any]) -> dict[str, Any]:
    """``edited`` with every argument the person could not see put back as it was.

    A card shows a known secret as a marker; an edit that leaves such an
    argument as shown sends the marker back.  Each argument whose edited
    value equals the redacted form of the original (and differs from it) is
    the original, untouched: editing never sends a marker to the tool.
    """
    restored = dict(edited)
    for key, value in edited.items():
        if key in original:
            shown = redact(original[key])
            if value == shown and shown != original[key]:
                restored[key] = original[key]
    return restored


class Attachment:
    """Handler registrations made by ``attach``; ``unregister()`` removes them all."""

    def __init__(self, registrations: list[Any]) -> None:
        self.registrations = registrations

    def unregister(self) -> None:
        for reg in self.registrations:
            reg.unregister()
        self.registrations = []


def _register(target: Any, command_type: type[Command], handler: Callable[..., Any]) -> Any:
    # ``target`` is a MessageBus or a Session (whose handlers end with it).
    return target.register_command_handler(command_type, handler)


class AutoApproval:
    """Answers every ``RequestApproval`` by a rule, at once.

    ``AutoApproval.approve_all()``, ``AutoApproval.deny_all(message)``, or
    ``AutoApproval(rule)`` where ``rule(request)`` returns a decision (or a
    bool: True approves, False denies), sync or async.  ``requests`` lists
    what it was asked.
    """

    def __init__(self, rule: Callable[[RequestApproval], Any]) -> None:
        self.rule = rule
        self.requests: list[RequestApproval] = []

    @classmethod
    def approve_all(cls) -> AutoApproval:
        return cls(lambda request: ApprovalDecision.approve())

    @classmethod
    def deny_all(cls, message: str | None = None) -> AutoApproval:
        return cls(lambda request: ApprovalDecision.deny(message))

    async def __call__(self, request: RequestApproval) -> ApprovalDecision:
        self.requests.append(request)
        answer = self.rule(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, bool):
            return ApprovalDecision.approve() if answer else ApprovalDecision.deny()
        return parse_decision(answer)

    def attach(self, target: Any) -> Attachment:
        """Answer ``RequestApproval`` on ``target`` (a bus or a session)."""
        return Attachment([_register(target, RequestApproval, self)])


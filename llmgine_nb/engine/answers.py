"""How the engine answers ``DecideApproval`` and ``AnswerQuestion``: through its approval queue.

Only the engine's own session is searched, so a decision sent to one
session never settles another user's call.  Who decided travels on the
decision to ``ApprovalDecided.decided_by``; a decision made on other
arguments than the pending call's (another ``args_hash``) is refused.
"""

from __future__ import annotations

from ..secrets import Redactor
from ..tools import ApprovalDecision, ApprovalQueue
from ..tools.approval import restore_hidden
from .commands import AnswerQuestion, DecideApproval

__all__ = ["decide", "answer"]


def _queue(approvals: ApprovalQueue | None) -> ApprovalQueue:
    if approvals is None:
        raise RuntimeError(
            "this engine has no approval queue to answer; create it with "
            "queue = ApprovalQueue(); queue.attach(bus); ChatEngine(..., approvals=queue)"
        )
    return approvals


def decide(approvals: ApprovalQueue | None, command: DecideApproval, session_id: str, redactor: Redactor) -> str:
    """Settle a pending approval of ``session_id``; returns the call's id."""
    queue = _queue(approvals)
    arguments = command.arguments if command.decision == "edit" else None
    if arguments is not None:
        # A secret the card showed as a marker and the person left alone runs as it was.
        request = queue.find_approval(command.call_id, session_id=session_id)
        arguments = restore_hidden(arguments, request.arguments, redactor.data)
    decision = ApprovalDecision(
        kind=command.decision, message=command.message, arguments=arguments, decided_by=command.decided_by,
        args_hash=command.args_hash,
    )
    return queue.decide(command.call_id, decision, session_id=session_id).call_id


def answer(approvals: ApprovalQueue | None, command: AnswerQuestion, session_id: str) -> str:
    """Answer a tool's pending question of ``session_id``; returns the question's id."""
    question = _queue(approvals).answer(
        command.question_id, command.answer, decided_by=command.decided_by, session_id=session_id
    )
    return question.id

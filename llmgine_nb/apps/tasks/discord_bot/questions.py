"""The one place that knows how the engine asks a person and how an answer goes back.

A tool's question (an approval "I'm going to assign ... - confirm?", a
confirm, a "did you mean 1) 2) 3)?" choice) reaches the bot as a
:class:`Question`, drawn from the event that announces it
(``ApprovalRequested``, ``ConfirmationRequested``, ``ChoiceRequested``); the
bot answers with :meth:`QuestionDesk.answer`, which sends the engine's
command (``DecideApproval`` with the hash of the arguments the person saw,
or ``AnswerQuestion``), with who answered.  When a question stops waiting
(``ApprovalDecided``, ``QuestionAnswered``, or ``ApprovalExpired`` /
``QuestionExpired`` when nobody answered in time: the engine then fails
closed), the bot hears it as :class:`Settled` and takes the card down.
Nothing else in the bot touches the approval machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ....bus import MessageBus
from ....engine.commands import AnswerQuestion, DecideApproval
from ....messages import Command, Event
from ....tools.events import (
    ApprovalDecided,
    ApprovalExpired,
    ApprovalRequested,
    ChoiceRequested,
    ConfirmationRequested,
    QuestionAnswered,
    QuestionExpired,
)

__all__ = ["Question", "Settled", "QuestionDesk", "Answer"]

Answer = Any  # True / False for confirmations, an option (or None) for choices


@dataclass(frozen=True)
class Question:
    """Something a tool asks the person whose session it runs in."""

    key: str  # the request's id: unique across sessions, carried by the card's button ids
    display_id: str  # the short id the engine takes (and the card shows)
    session_id: str
    kind: Literal["approval", "confirm", "choice"]
    text: str
    options: tuple[str, ...] = ()
    call_id: str | None = None
    args_hash: str | None = None  # approvals: the hash of the arguments shown


@dataclass(frozen=True)
class Settled:
    """A question stopped waiting: answered (here or elsewhere) or expired."""

    session_id: str
    key: str | None  # the request id, when the event names it
    call_id: str | None
    expired: bool
    decided_by: str | None = None

    def concerns(self, question: Question) -> bool:
        if question.session_id != self.session_id:
            return False
        if self.key is not None:
            return question.key == self.key
        return question.kind == "approval" and question.call_id == self.call_id


class QuestionDesk:
    """Hands the engine's questions to ``on_question``, their ends to ``on_settled``, and answers back."""

    def __init__(
        self, bus: MessageBus, on_question: Callable[[Question], None], on_settled: Callable[[Settled], None]
    ) -> None:
        self.bus = bus
        self.on_question = on_question
        self.on_settled = on_settled
        self._registrations: list[Any] = []

    def attach(self) -> QuestionDesk:
        if not self._registrations:
            # Inline: they only hand the question to the bot, which schedules its work on its own loop.
            asks = (ApprovalRequested, ConfirmationRequested, ChoiceRequested)
            ends = (ApprovalDecided, ApprovalExpired, QuestionAnswered, QuestionExpired)
            asked = [self.bus.subscribe(kind, self._asked, inline=True) for kind in asks]
            ended = [self.bus.subscribe(kind, self._ended, inline=True) for kind in ends]
            self._registrations = asked + ended
        return self

    def close(self) -> None:
        for registration in self._registrations:
            registration.unregister()
        self._registrations = []

    def _asked(self, event: Event) -> None:
        session = event.session_id or ""
        if isinstance(event, ApprovalRequested):
            text = event.preview or f"May I run {event.tool_name} with {event.arguments}?"
            self.on_question(Question(event.request_id, event.display_id, session, "approval", text,
                                      call_id=event.call_id, args_hash=event.args_hash or None))
        elif isinstance(event, ChoiceRequested):
            self.on_question(Question(event.question_id, event.display_id, session, "choice", event.question,
                                      tuple(event.options), event.call_id))
        elif isinstance(event, ConfirmationRequested):
            self.on_question(Question(event.question_id, event.display_id, session, "confirm", event.question,
                                      call_id=event.call_id))

    def _ended(self, event: Event) -> None:
        session = event.session_id or ""
        if isinstance(event, ApprovalDecided):
            settled = Settled(session, None, event.call_id, False, event.decided_by)
        elif isinstance(event, ApprovalExpired):
            settled = Settled(session, event.request_id or None, event.call_id, True)
        elif isinstance(event, QuestionAnswered):
            settled = Settled(session, event.question_id, event.call_id, False, event.decided_by)
        elif isinstance(event, QuestionExpired):
            settled = Settled(session, event.question_id, event.call_id, True)
        else:
            return
        self.on_settled(settled)

    async def answer(self, question: Question, answer: Answer, *, decided_by: str) -> bool:
        """Answer ``question`` with the engine's command; False if it no longer waits (expired or answered)."""
        command: Command
        if question.kind == "approval":
            approved = answer is True
            command = DecideApproval(
                session_id=question.session_id, call_id=question.display_id or question.call_id or question.key,
                decision="approve" if approved else "deny",
                message=None if approved else f"{decided_by} cancelled it in Discord.",
                decided_by=decided_by, args_hash=question.args_hash,
            )
        else:
            value = (answer if answer in question.options else None) if question.kind == "choice" else answer is True
            command = AnswerQuestion(session_id=question.session_id, question_id=question.display_id or question.key,
                                     answer=value, decided_by=decided_by)
        result = await self.bus.execute(command)
        return bool(result.success)

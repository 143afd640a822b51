"""The one place that knows how the engine asks a person and how an answer goes back.

A tool's question (an approval "I'm going to assign ... - confirm?", a
confirm, a "did you mean 1) 2) 3)?" choice) reaches the bot as a
:class:`Question`; the bot answers with :meth:`QuestionDesk.answer`.  Nothing
else in the bot touches the approval machinery, so when the engine's way of
asking changes, this module is the only one that changes.

Today the engine sends each question as a bus command (``RequestApproval``,
``ConfirmRequest``, ``ChoiceRequest``) and an ``ApprovalQueue`` attached to
the bus holds it until it is answered; a missing or late answer is a "no"
(the tool manager's timeout fails closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ....bus import MessageBus
from ....messages import Command
from ....tools import ApprovalDecision, ApprovalQueue
from ....tools.commands import ChoiceRequest, ConfirmRequest, RequestApproval

__all__ = ["Question", "QuestionDesk", "Answer"]

log = logging.getLogger("llmgine_nb.apps.tasks.discord")

Answer = Any  # True / False for confirmations, an option (or None) for choices


@dataclass(frozen=True)
class Question:
    """Something a tool asks the person whose session it runs in."""

    key: str  # identifies the question in button ids (short, unique while it waits)
    session_id: str
    kind: Literal["approval", "confirm", "choice"]
    text: str
    options: tuple[str, ...] = ()
    call_id: str | None = None

    @property
    def refusal(self) -> Answer:
        """The answer that changes nothing (what an expired question gets): fail closed."""
        return None if self.kind == "choice" else False


class QuestionDesk:
    """Hands the engine's questions to ``on_question`` and carries answers back.

    ``attach()`` puts it on the bus; ``close()`` takes it off and refuses
    whatever still waits.
    """

    def __init__(self, bus: MessageBus, on_question: Callable[[Question], None]) -> None:
        self.bus = bus
        self.on_question = on_question
        self._queue = ApprovalQueue(on_request=self._asked)
        self._attachment: Any = None

    def attach(self) -> QuestionDesk:
        if self._attachment is None:
            self._attachment = self._queue.attach(self.bus)
        return self

    def close(self) -> None:
        if self._attachment is not None:
            self._attachment.unregister()
            self._attachment = None
        self._queue.deny_all("the Discord bot stopped before anyone answered")

    def _asked(self, request: Command) -> None:
        question = _question(request)
        if question is None:
            log.warning("ignored a question of unknown kind %s", type(request).__name__)
            return
        self.on_question(question)

    async def answer(self, question: Question, answer: Answer, *, decided_by: str) -> bool:
        """Answer ``question``; False if it no longer waits (it expired or was answered)."""
        try:
            if question.kind == "approval":
                assert question.call_id is not None
                decision = (
                    ApprovalDecision.approve() if answer is True
                    else ApprovalDecision.deny(f"{decided_by} did not confirm it.")
                )
                self._queue.decide(question.call_id, decision, session_id=question.session_id)
            elif question.kind == "choice":
                self._queue.answer(question.key, answer if answer in question.options else None)
            else:
                self._queue.answer(question.key, answer is True)
        except LookupError:
            log.info("question %s stopped waiting before %s answered", question.key, decided_by)
            return False
        return True


def _question(request: Command) -> Question | None:
    session = request.session_id or ""
    if isinstance(request, RequestApproval):
        text = request.preview or f"May I run {request.tool_name} with {request.arguments}?"
        return Question(request.id, session, "approval", text, call_id=request.call_id)
    if isinstance(request, ChoiceRequest):
        return Question(request.id, session, "choice", request.question, tuple(request.options), request.call_id)
    if isinstance(request, ConfirmRequest):
        return Question(request.id, session, "confirm", request.question, call_id=request.call_id)
    return None

"""The one place that knows how the engine asks a person and how an answer goes back.

A tool's question (an approval "I'm going to assign ... - confirm?", a
confirm, a "did you mean 1) 2) 3)?" choice) reaches the bot as a
:class:`Question`; the bot answers with :meth:`QuestionDesk.answer`.  Nothing
else in the bot touches the approval machinery, so when the engine's way of
asking changes, this module is the only one that changes.

The engine announces each question with an event (``ApprovalRequested``,
``ConfirmationRequested``, ``ChoiceRequested``) and asks it as a bus command
that an ``ApprovalQueue`` attached to the bus holds until it is answered; a
missing or late answer is a "no" (the tool manager's timeout fails closed).
Who answered travels on the answer (``decided_by``) to the events and the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ....bus import MessageBus
from ....messages import Event
from ....tools import ApprovalDecision, ApprovalQueue
from ....tools.events import ApprovalRequested, ChoiceRequested, ConfirmationRequested

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
        self._queue = ApprovalQueue()
        self._attachment: Any = None
        self._watching: list[Any] = []

    def attach(self) -> QuestionDesk:
        if self._attachment is None:
            self._attachment = self._queue.attach(self.bus)
            self._watching = [
                self.bus.subscribe(kind, self._asked, inline=True) for kind in (ApprovalRequested, ConfirmationRequested,
                                                                   ChoiceRequested)
            ]
        return self

    def close(self) -> None:
        if self._attachment is not None:
            self._attachment.unregister()
            self._attachment = None
        for registration in self._watching:
            registration.unregister()
        self._watching = []
        self._queue.deny_all("the Discord bot stopped before anyone answered")

    def _asked(self, event: Event) -> None:
        question = _question(event)
        if question is None:
            log.warning("ignored a question of unknown kind %s", type(event).__name__)
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
                self._queue.decide(question.call_id, decision, session_id=question.session_id,
                                   decided_by=decided_by)
            elif question.kind == "choice":
                self._queue.answer(question.key, answer if answer in question.options else None,
                                   decided_by=decided_by, session_id=question.session_id)
            else:
                self._queue.answer(question.key, answer is True, decided_by=decided_by,
                                   session_id=question.session_id)
        except LookupError:
            log.info("question %s stopped waiting before %s answered", question.key, decided_by)
            return False
        return True


def _question(event: Event) -> Question | None:
    session = event.session_id or ""
    if isinstance(event, ApprovalRequested):
        text = event.preview or f"May I run {event.tool_name} with {event.arguments}?"
        return Question(event.request_id, session, "approval", text, call_id=event.call_id)
    if isinstance(event, ChoiceRequested):
        return Question(event.question_id, session, "choice", event.question, tuple(event.options), event.call_id)
    if isinstance(event, ConfirmationRequested):
        return Question(event.question_id, session, "confirm", event.question, call_id=event.call_id)
    return None

"""``Answerer``: how the notebook answers approvals and tool questions - cards, commands, ``input()``.

It finds what waits (by the display id on its card, a call's whole id, or 6+
characters of its unique part), sends a decision to the session's engine as a
``DecideApproval`` command and an answer as ``AnswerQuestion`` (who decided
travels on them to the ``ApprovalDecided``/``QuestionAnswered`` events and the
store), and asks with ``input()``
when a cell blocks on a turn and so cannot receive a click.  Anything
unclear is a "no" (fail closed).

It owns the kernel's ``ApprovalQueue`` and is given the rest: the bus, the
settings, the redactor, the table of live cells (to note a decision in the
cell that shows it) and ``serves(session_id)``, which says whether an
engine of this kernel runs that session.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import StdinNotImplementedError

from ..engine.commands import AnswerQuestion, DecideApproval
from ..replies import parse_yes_no, yes_no
from ..tools.approval import ApprovalDecision, parse_decision
from ..tools.commands import ChoiceRequest, ConfirmRequest, RequestApproval, ToolQuestion
from ..tools.queue import ApprovalQueue
from .style import call_signature
from .voice import error_sentence, say

if TYPE_CHECKING:
    from .cells import KernelParts

__all__ = ["Answerer"]

log = logging.getLogger("llmgine_nb.notebook")


class Answerer:
    """Answers what the tools ask: from Python, a magic, a widget card, or an ``input()`` prompt."""

    def __init__(self, parts: KernelParts, serves: Callable[[str], bool]) -> None:
        self.bus, self.config, self.redactor, self.cells = parts.bus, parts.config, parts.redactor, parts.cells
        self.serves = serves  # (session id): whether this runtime runs that session's engine
        # Cards are drawn from the events that announce what waits (the cells' subscriber feeds them).
        self.approvals = ApprovalQueue()

    # -- deciding -------------------------------------------------------------------------

    def pending(self) -> list[Any]:
        """Approval requests and questions waiting for an answer, oldest first."""
        return self.approvals.pending()

    def decide(self, call_id: str, decision: Any, *, decided_by: str | None = None) -> RequestApproval:
        """Answer the pending approval ``call_id`` names: the id on its card, or the call's id.

        ``decision``: an ``ApprovalDecision`` or ``"approve"``/``"deny"``/``"always"``.
        A decision carrying ``args_hash`` (a card's) runs the call only with the arguments shown.
        """
        decision = parse_decision(decision)
        request = self._find_approval(call_id)
        who = decided_by or decision.decided_by or f"{self.config.user} via Python"
        command = DecideApproval(
            session_id=request.session_id, call_id=request.call_id, decision=decision.kind,
            message=decision.message, arguments=decision.arguments, decided_by=who, args_hash=decision.args_hash,
        )
        if request.session_id is not None and self.serves(request.session_id) and not self.bus.background.in_loop_thread:
            result = self.bus.execute_sync(command, timeout=30)
            if not result.success:
                raise LookupError(error_sentence(result.error or "the decision was not accepted"))
        else:  # asked outside an engine of ours: answer the queue directly
            self.approvals.decide(request.call_id, decision, decided_by=who)
        cell = self.cells.get(request.session_id)
        if cell is not None:  # shown at once; the ApprovalDecided event has the last word
            cell.change(lambda t: t.note_decision(request.call_id, decision, who))
        return request

    def approve(self, call_id: str, *, decided_by: str | None = None) -> RequestApproval:
        """Approve the pending tool call ``call_id`` as asked."""
        return self.decide(call_id, ApprovalDecision.approve(), decided_by=decided_by)

    def deny(self, call_id: str, reason: str | None = None, *, decided_by: str | None = None) -> RequestApproval:
        """Deny it; ``reason`` (optional) is told to the model."""
        return self.decide(call_id, ApprovalDecision.deny(reason or None), decided_by=decided_by)

    def edit(self, call_id: str, arguments: dict[str, Any], *, decided_by: str | None = None) -> RequestApproval:
        """Approve it with these arguments instead (checked against the tool's schema)."""
        return self.decide(call_id, ApprovalDecision.edit(arguments), decided_by=decided_by)

    def always(self, call_id: str, *, decided_by: str | None = None) -> RequestApproval:
        """Approve it, and every later call of the same tool in this session."""
        return self.decide(call_id, ApprovalDecision.always(), decided_by=decided_by)

    def answer(self, request_id: str, value: Any, *, answered_by: str | None = None) -> ToolQuestion:
        """Answer a tool's question: ``True``/``False`` (or yes/no) for a confirm, an option (or None) for a choice.

        For a choice, a 1-based number or the option's text selects it.
        """
        question = self._find_question(request_id)
        if isinstance(question, ChoiceRequest):
            value = _choice_value(question, value)
        elif isinstance(question, ConfirmRequest):
            value = yes_no(value)
        who = answered_by or f"{self.config.user} via Python"
        if question.session_id is not None and self.serves(question.session_id) \
                and not self.bus.background.in_loop_thread:
            command = AnswerQuestion(session_id=question.session_id, question_id=question.id, answer=value,
                                     decided_by=who)
            result = self.bus.execute_sync(command, timeout=30)
            if not result.success:
                raise LookupError(error_sentence(result.error or "the answer was not accepted"))
        else:  # asked outside an engine of ours: answer the queue directly
            self.approvals.answer(question.id, value, decided_by=who)
        cell = self.cells.get(question.session_id)
        if cell is not None:
            cell.change(lambda t: t.answer_question(question.id, value, who))
        return question

    def decide_from_card(self, call_id: str, decision: ApprovalDecision, who: str) -> None:
        """A click on an approval card."""
        self.decide(call_id, decision, decided_by=who)

    def answer_from_card(self, request_id: str, value: Any, who: str) -> None:
        """A click on a question card."""
        self.answer(request_id, value, answered_by=who)

    def _find_approval(self, call_id: str) -> RequestApproval:
        return self.approvals.find_approval(call_id)

    def _find_question(self, request_id: str) -> ToolQuestion:
        return self.approvals.find_question(request_id)

    # -- asking with input() while a cell waits ---------------------------------------------

    def answer_while_waiting(self, session_id: str | None) -> None:
        """While a cell blocks on a turn, nobody can click: ask with ``input()``.

        Where the front end takes no input (ipykernel raises
        ``StdinNotImplementedError``; a script without stdin, ``EOFError``),
        approvals are denied and questions get no answer.
        """
        for request in self.approvals.pending():
            if request.session_id != session_id:
                continue
            try:
                if isinstance(request, RequestApproval):
                    self._prompt_approval(request)
                elif isinstance(request, ToolQuestion):
                    self._prompt_question(request)
            except (StdinNotImplementedError, EOFError):
                if isinstance(request, RequestApproval):
                    self.deny(request.call_id, "nobody could answer: the cell was waiting and has no input prompt",
                              decided_by="nobody (no input while waiting)")
                else:
                    self.approvals.answer(request.id, None, decided_by="nobody (no input while waiting)")

    def _prompt_approval(self, request: RequestApproval) -> None:
        call = call_signature(request.tool_name, request.arguments, limit=200)
        why = f" - {request.reason}" if request.reason else ""
        choices = "[y]es / [n]o / [e]dit" + (" / [a]lways" if request.allow_always else "")
        question = self.redactor.text(f"Approve {call}? (risk: {request.risk}{why})")  # a prompt is an output too
        answer = input(f"{question}\n{choices}, or 'n: reason': ").strip()
        who = f"{self.config.user} via input()"
        word, _, rest = answer.partition(":")
        word = word.strip().lower()
        if word in ("a", "always") and request.allow_always:
            self.always(request.call_id, decided_by=who)
        elif word in ("e", "edit"):
            self._prompt_edit(request, who)
        elif parse_yes_no(word):
            self.approve(request.call_id, decided_by=who)
        else:  # anything else is a no (fail closed)
            self.deny(request.call_id, rest.strip() or None, decided_by=who)

    def _prompt_edit(self, request: RequestApproval, who: str) -> None:
        raw = input("New arguments as JSON: ")
        try:
            arguments = json.loads(raw)
            if not isinstance(arguments, dict):
                raise ValueError("not an object")
        except ValueError:
            say("That is not a JSON object; the call is denied. Run the cell again to retry.")
            self.deny(request.call_id, "the edited arguments were not a JSON object", decided_by=who)
            return
        self.edit(request.call_id, arguments, decided_by=who)

    def _prompt_question(self, request: ToolQuestion) -> None:
        who = f"{self.config.user} via input()"
        value: Any
        if isinstance(request, ChoiceRequest):
            listing = "\n".join(f"  {i}) {o}" for i, o in enumerate(request.options, 1))
            raw = input(self.redactor.text(f"{request.question}\n{listing}\nNumber (empty for none of these): ")).strip()
            try:
                value = _choice_value(request, raw) if raw else None
            except LookupError:
                value = None
        else:
            value = parse_yes_no(input(self.redactor.text(f"{request.question} [y/n]: "))) is True
        self.answer(request.id, value, answered_by=who)


def _choice_value(question: ChoiceRequest, value: Any) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "none of these")):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= len(question.options):
            return question.options[value - 1]
        raise LookupError(f"choose a number from 1 to {len(question.options)}, or 'none'")
    if value in question.options:
        return value
    raise LookupError(f"{value!r} is not one of the options: {', '.join(question.options)}")

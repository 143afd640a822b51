"""``ApprovalQueue``: approvals and tool questions wait here until someone answers.

``attach(bus)`` makes the queue the handler of ``RequestApproval`` (and of
``ConfirmRequest``/``ChoiceRequest``); each request then waits until a
decision comes - usually through the engine's ``DecideApproval`` and
``AnswerQuestion`` commands, or from Python with ``decide``/``answer`` - from
any thread.  Front ends do not hear from the queue: they render the events
the tool layer publishes when it asks (``ApprovalRequested``,
``ConfirmationRequested``, ``ChoiceRequested``) and send commands.

An item is named by its display id (shown on its card), its whole id, or a
prefix of at least ``MIN_PREFIX`` characters of the unique part of its id,
among the items pending now (see ``pending.pick_by_id``).  A decision that
carries an ``args_hash`` other than the request's is refused and the request
stays pending: what is approved is exactly what was shown.

An item is pending from the moment it is announced: the tool layer publishes
``ApprovalRequested`` (or a question's event) before it executes the request,
so a front end that answers the moment it draws the card must find the item
already here.  The queue therefore hears the announcements first (before any
front end) and keeps an answer that arrives before the request itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..messages import Command
from .approval import ApprovalDecision, Attachment, DecisionLike, _register, parse_decision
from .commands import ChoiceRequest, ConfirmRequest, QuestionAnswer, RequestApproval, ToolQuestion
from .events import (
    ApprovalDecided,
    ApprovalExpired,
    ApprovalRequested,
    ChoiceRequested,
    ConfirmationRequested,
    QuestionAnswered,
    QuestionExpired,
)
from .pending import pick_by_id

__all__ = ["ApprovalQueue", "ArgumentsMismatch"]

log = logging.getLogger("llmgine_nb.tools.approval")

#: The queue hears announcements before front ends (priority 0) draw them: as the journal does.
_BEFORE_FRONT_ENDS = 100


class ArgumentsMismatch(LookupError):
    """A decision was made on other arguments than the pending call has."""


@dataclass
class _Pending:
    request: Command  # as announced, until the request itself arrives
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class ApprovalQueue:
    """Keeps approval requests (and tool questions) pending until someone decides.

    ``attach(bus)`` makes it the handler; ``pending()`` lists what waits;
    ``decide(id, decision)`` (or ``approve``/``deny``/``edit``/``always``)
    answers an approval and ``answer(id, value)`` a confirm/choose question.
    These may be called from any thread (a notebook cell, a widget callback)
    while the tool manager waits on its own event loop.  A request whose wait
    ends (timeout, cancelled, its tool call abandoned) leaves the queue by
    itself.
    """

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}  # command id -> pending
        self._lock = threading.Lock()

    def attach(self, target: Any, *, questions: bool = True) -> Attachment:
        """Handle ``RequestApproval`` (and, with ``questions``, confirm/choose) on ``target``."""
        regs = [_register(target, RequestApproval, self._wait)]
        announced: tuple[type[Any], ...] = (ApprovalRequested,)
        ended: tuple[type[Any], ...] = (ApprovalDecided, ApprovalExpired)
        if questions:
            regs.append(_register(target, ConfirmRequest, self._wait))
            regs.append(_register(target, ChoiceRequest, self._wait))
            announced += (ConfirmationRequested, ChoiceRequested)
            ended += (QuestionAnswered, QuestionExpired)
        if hasattr(target, "subscribe"):
            regs += [target.subscribe(kind, self._expect, priority=_BEFORE_FRONT_ENDS, inline=True) for kind in announced]
            regs += [target.subscribe(kind, self._forget, inline=True) for kind in ended]
        return Attachment(regs)

    def _expect(self, event: Any) -> None:
        """An announced request is pending now, even before the request itself reaches ``_wait``."""
        request = _announced_request(event)
        loop = asyncio.get_running_loop()  # inline: the loop of the tool that asks
        with self._lock:
            self._pending.setdefault(request.id, _Pending(request, loop.create_future(), loop))

    def _forget(self, event: Any) -> None:
        """An announced request that was answered elsewhere (another handler, a policy) is not pending."""
        key = getattr(event, "request_id", None) or getattr(event, "question_id", None)
        with self._lock:
            if key:
                self._pending.pop(key, None)
            else:  # ApprovalDecided names its call
                for ident, entry in list(self._pending.items()):
                    same = getattr(entry.request, "call_id", None) == event.call_id
                    if same and isinstance(entry.request, RequestApproval) and entry.request.session_id == event.session_id:
                        self._pending.pop(ident)

    async def _wait(self, request: Command) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._pending.get(request.id)
            if entry is None or entry.loop is not loop:
                entry = _Pending(request, loop.create_future(), loop)
            entry.request = request  # the request itself, not the announcement's copy of it
            self._pending[request.id] = entry
        try:
            return await entry.future
        finally:
            with self._lock:
                self._pending.pop(request.id, None)

    # -- reading -------------------------------------------------------------

    def pending(self, session_id: str | None = None) -> list[Command]:
        """The requests waiting for an answer (of one session, if given), oldest first."""
        with self._lock:
            requests = [p.request for p in self._pending.values()]
        return [r for r in requests if session_id is None or r.session_id == session_id]

    def pending_approvals(self, session_id: str | None = None) -> list[RequestApproval]:
        return [r for r in self.pending(session_id) if isinstance(r, RequestApproval)]

    def pending_questions(self, session_id: str | None = None) -> list[ToolQuestion]:
        return [r for r in self.pending(session_id) if isinstance(r, ToolQuestion)]

    # -- answering ----------------------------------------------------------------

    def decide(self, call_id: str, decision: DecisionLike, *, session_id: str | None = None,
               decided_by: str | None = None) -> RequestApproval:
        """Answer the pending approval ``call_id`` names (display id, call id or its unique prefix).

        ``session_id`` limits the answer to that session's requests, so one
        user's decision can never settle another user's call.  ``decided_by``
        fills the decision's own when it has none.  Raises ``LookupError`` if
        no approval of that call is pending (there), ``ArgumentsMismatch`` if
        the decision's ``args_hash`` is not the call's, and
        ``MalformedDecision`` if ``decision`` is not a clear decision (the
        request then stays pending).
        """
        parsed = parse_decision(decision)
        if decided_by is not None and parsed.decided_by is None:
            parsed = parsed.model_copy(update={"decided_by": decided_by})
        entry = self._find(call_id, _approval_in(session_id), key="call_id")
        request = entry.request
        assert isinstance(request, RequestApproval)
        if parsed.args_hash is not None and request.args_hash and parsed.args_hash != request.args_hash:
            shown = request.display_id or request.call_id
            raise ArgumentsMismatch(
                f"the decision was made on other arguments than call {shown} ({request.tool_name}) has now; "
                "look at its card again and decide there"
            )
        self._resolve(entry, parsed)
        return request

    def approve(self, call_id: str, **options: Any) -> RequestApproval:
        return self.decide(call_id, ApprovalDecision.approve(), **options)

    def deny(self, call_id: str, message: str | None = None, **options: Any) -> RequestApproval:
        return self.decide(call_id, ApprovalDecision.deny(message), **options)

    def edit(self, call_id: str, arguments: dict[str, Any], **options: Any) -> RequestApproval:
        return self.decide(call_id, ApprovalDecision.edit(arguments), **options)

    def always(self, call_id: str, **options: Any) -> RequestApproval:
        return self.decide(call_id, ApprovalDecision.always(), **options)

    def answer(self, request_id: str, value: Any, *, decided_by: str | None = None,
               session_id: str | None = None) -> ToolQuestion:
        """Answer a pending confirm (``True``/``False``) or choice (an option, or None).

        ``request_id`` is the question's display id, its id or its tool call's id.
        """
        entry = self._find(request_id, _question_in(session_id), key="id_or_call")
        self._resolve(entry, QuestionAnswer(value=value, decided_by=decided_by))
        return entry.request  # type: ignore[return-value]

    def deny_all(self, message: str | None = "nobody answered", *, decided_by: str | None = None) -> int:
        """Deny every pending approval and say no to every question; returns how many."""
        with self._lock:
            entries = list(self._pending.values())
        for entry in entries:
            if isinstance(entry.request, RequestApproval):
                self._resolve(entry, ApprovalDecision(kind="deny", message=message, decided_by=decided_by))
            else:
                self._resolve(entry, QuestionAnswer(value=None, decided_by=decided_by))
        return len(entries)

    def find_approval(self, call_id: str, *, session_id: str | None = None) -> RequestApproval:
        """The pending approval ``call_id`` names (see ``pick_by_id``)."""
        return self._find(call_id, _approval_in(session_id), key="call_id").request  # type: ignore[return-value]

    def find_question(self, request_id: str, *, session_id: str | None = None) -> ToolQuestion:
        """The pending question ``request_id`` names (display id, its id or its tool call's id)."""
        return self._find(request_id, _question_in(session_id), key="id_or_call").request  # type: ignore[return-value]

    def _find(self, ident: str, kind: Callable[[_Pending], bool], *, key: str) -> _Pending:
        with self._lock:
            candidates = [p for p in self._pending.values() if kind(p)]

        def ids(p: _Pending) -> list[str]:
            call_id = getattr(p.request, "call_id", None)
            if key == "call_id":
                return [call_id] if call_id else []
            return [p.request.id] + ([call_id] if call_id else [])

        def display(p: _Pending) -> str:
            return str(getattr(p.request, "display_id", "") or "")

        nothing = "nothing is waiting for approval" if key == "call_id" else "no question is waiting"
        waiting = ", ".join(
            f"{display(p) or ids(p)[0]} ({getattr(p.request, 'tool_name', None) or 'question'})" for p in candidates
        )
        return pick_by_id(ident, candidates, ids, display=display, nothing=nothing, waiting=waiting)

    @staticmethod
    def _resolve(entry: _Pending, value: Any) -> None:
        def settle() -> None:
            if not entry.future.done():
                entry.future.set_result(value)

        entry.loop.call_soon_threadsafe(settle)


def _approval_in(session_id: str | None) -> Callable[[_Pending], bool]:
    def wanted(p: _Pending) -> bool:
        in_session = session_id is None or p.request.session_id == session_id
        return isinstance(p.request, RequestApproval) and in_session

    return wanted


def _question_in(session_id: str | None) -> Callable[[_Pending], bool]:
    def wanted(p: _Pending) -> bool:
        in_session = session_id is None or p.request.session_id == session_id
        return isinstance(p.request, ToolQuestion) and in_session

    return wanted


def _announced_request(event: Any) -> Command:
    """The request an announcement stands for, with the request's own id."""
    ids = {"id": event.request_id if isinstance(event, ApprovalRequested) else event.question_id,
           "session_id": event.session_id, "display_id": event.display_id}
    if isinstance(event, ApprovalRequested):
        return RequestApproval(
            call_id=event.call_id, tool_name=event.tool_name, arguments=event.arguments, risk=event.risk,
            reason=event.reason, permissions=event.permissions, description=event.description,
            preview=event.preview, allow_always=event.allow_always, args_hash=event.args_hash, **ids,
        )
    question = {"question": event.question, "call_id": event.call_id, "tool_name": event.tool_name, **ids}
    if isinstance(event, ChoiceRequested):
        return ChoiceRequest(options=event.options, **question)
    return ConfirmRequest(**question)

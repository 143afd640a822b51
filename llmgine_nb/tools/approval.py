"""Approval decisions and ready-made front ends that give them.

A ``RequestApproval`` command is answered with an ``ApprovalDecision``:

* ``approve`` - run the call as asked;
* ``deny`` - do not run it; ``message`` goes back to the model;
* ``edit`` - run it with ``arguments`` instead (validated again first);
* ``always`` - run it, and do not ask again for this tool in this session.

Anything else (no handler, a handler error, a timeout, an answer that is not
one of these, an ``edit`` without arguments, an ``approve`` carrying
arguments) is a denial.

``AutoApproval`` answers by a rule (approve all, deny all, a function);
``ApprovalQueue`` keeps requests pending until a person decides by call id,
from any thread - what ``%llmgine approve ID`` and the widgets use.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..messages import Command
from .commands import ChoiceRequest, ConfirmRequest, RequestApproval, ToolQuestion

__all__ = [
    "pick_by_id",
    "ApprovalDecision",
    "DecisionKind",
    "MalformedDecision",
    "parse_decision",
    "AutoApproval",
    "ApprovalQueue",
    "Attachment",
    "MIN_PREFIX",
]

log = logging.getLogger("llmgine_nb.tools.approval")

DecisionKind = Literal["approve", "deny", "edit", "always"]

# The fewest characters of an id that ApprovalQueue accepts in place of the whole id.
MIN_PREFIX = 6

P = TypeVar("P")


class MalformedDecision(ValueError):
    """An answer to ``RequestApproval`` that is not a clear decision."""


class ApprovalDecision(BaseModel):
    """A person's (or a policy's) answer to ``RequestApproval``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DecisionKind
    message: str | None = None
    arguments: dict[str, Any] | None = None

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


DecisionLike = Union[ApprovalDecision, dict, str]


def parse_decision(value: Any) -> ApprovalDecision:
    """Read an answer as a decision, or raise ``MalformedDecision``.

    Accepted: an ``ApprovalDecision``; a dict of one (``{"kind": "deny",
    "message": ...}``); the words ``"approve"``, ``"deny"``, ``"always"``.
    Nothing else - not ``True``, not ``"yes"`` - because a guess could run
    something nobody approved.
    """
    if isinstance(value, ApprovalDecision):
        return value
    if isinstance(value, str) and value in ("approve", "deny", "always"):
        return ApprovalDecision(kind=value)  # type: ignore[arg-type]
    if isinstance(value, dict):
        try:
            return ApprovalDecision.model_validate(value)
        except ValidationError as exc:
            raise MalformedDecision(f"not a valid approval decision: {exc.errors(include_url=False)[0]['msg']}") from None
    raise MalformedDecision(
        f"{value!r} is not an approval decision; answer with ApprovalDecision.approve()/deny()/edit()/always() "
        "or one of the words 'approve', 'deny', 'always'"
    )


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


@dataclass
class _Pending:
    request: Command
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class ApprovalQueue:
    """Keeps approval requests (and tool questions) pending until someone decides.

    ``attach(bus)`` makes it the handler; ``pending()`` lists what waits;
    ``decide(call_id, decision)`` (or ``approve``/``deny``/``edit``/``always``)
    answers an approval and ``answer(id, value)`` a confirm/choose question.
    These may be called from any thread (a notebook cell, a widget callback)
    while the tool manager waits on its own event loop.  Ids may be shortened
    to a prefix of at least ``MIN_PREFIX`` (6) characters that no other pending
    request shares; an ambiguous or shorter one is an error.  A request whose
    wait ends (timeout, cancelled, its tool call abandoned) leaves the queue by
    itself.
    """

    def __init__(self, *, on_request: Callable[[Command], None] | None = None) -> None:
        self.on_request = on_request
        self._pending: dict[str, _Pending] = {}  # command id -> pending
        self._lock = threading.Lock()

    def attach(self, target: Any, *, questions: bool = True) -> Attachment:
        """Handle ``RequestApproval`` (and, with ``questions``, confirm/choose) on ``target``."""
        regs = [_register(target, RequestApproval, self._wait)]
        if questions:
            regs.append(_register(target, ConfirmRequest, self._wait))
            regs.append(_register(target, ChoiceRequest, self._wait))
        return Attachment(regs)

    async def _wait(self, request: Command) -> Any:
        loop = asyncio.get_running_loop()
        entry = _Pending(request, loop.create_future(), loop)
        with self._lock:
            self._pending[request.id] = entry
        try:
            if self.on_request is not None:
                try:
                    self.on_request(request)
                except Exception:
                    log.exception("ApprovalQueue.on_request callback failed; the request stays pending")
            return await entry.future
        finally:
            with self._lock:
                self._pending.pop(request.id, None)

    # -- reading -------------------------------------------------------------

    def pending(self) -> list[Command]:
        """The requests waiting for an answer, oldest first."""
        with self._lock:
            return [p.request for p in self._pending.values()]

    def pending_approvals(self) -> list[RequestApproval]:
        return [r for r in self.pending() if isinstance(r, RequestApproval)]

    def pending_questions(self) -> list[ToolQuestion]:
        return [r for r in self.pending() if isinstance(r, ToolQuestion)]

    # -- answering ----------------------------------------------------------------

    def decide(self, call_id: str, decision: DecisionLike, *, session_id: str | None = None) -> RequestApproval:
        """Answer the pending approval of tool call ``call_id``; returns the request.

        ``session_id`` limits the answer to that session's requests, so one
        user's decision can never settle another user's call.  Raises
        ``LookupError`` if no approval of that call is pending (there) and
        ``MalformedDecision`` if ``decision`` is not a clear decision (the
        request then stays pending).
        """
        parsed = parse_decision(decision)
        entry = self._find(call_id, _approval_in(session_id), key="call_id")
        self._resolve(entry, parsed)
        return entry.request  # type: ignore[return-value]

    def approve(self, call_id: str) -> RequestApproval:
        return self.decide(call_id, ApprovalDecision.approve())

    def deny(self, call_id: str, message: str | None = None) -> RequestApproval:
        return self.decide(call_id, ApprovalDecision.deny(message))

    def edit(self, call_id: str, arguments: dict[str, Any]) -> RequestApproval:
        return self.decide(call_id, ApprovalDecision.edit(arguments))

    def always(self, call_id: str) -> RequestApproval:
        return self.decide(call_id, ApprovalDecision.always())

    def answer(self, request_id: str, value: Any) -> ToolQuestion:
        """Answer a pending confirm (``True``/``False``) or choice (an option, or None).

        ``request_id`` is the question's id or its tool call's id.
        """
        entry = self._find(request_id, _is_question, key="id_or_call")
        self._resolve(entry, value)
        return entry.request  # type: ignore[return-value]

    def deny_all(self, message: str | None = "nobody answered") -> int:
        """Deny every pending approval and say no to every question; returns how many."""
        with self._lock:
            entries = list(self._pending.values())
        for entry in entries:
            self._resolve(entry, ApprovalDecision.deny(message) if isinstance(entry.request, RequestApproval) else None)
        return len(entries)

    def find_approval(self, call_id: str, *, session_id: str | None = None) -> RequestApproval:
        """The pending approval ``call_id`` names (whole id or unique prefix, see ``pick_by_id``)."""
        return self._find(call_id, _approval_in(session_id), key="call_id").request  # type: ignore[return-value]

    def find_question(self, request_id: str) -> ToolQuestion:
        """The pending question ``request_id`` names (its id or its tool call's id, or a unique prefix)."""
        return self._find(request_id, _is_question, key="id_or_call").request  # type: ignore[return-value]

    def _find(self, ident: str, kind: Callable[[_Pending], bool], *, key: str) -> _Pending:
        with self._lock:
            candidates = [p for p in self._pending.values() if kind(p)]

        def ids(p: _Pending) -> list[str]:
            call_id = getattr(p.request, "call_id", None)
            if key == "call_id":
                return [call_id] if call_id else []
            return [p.request.id] + ([call_id] if call_id else [])

        return pick_by_id(ident, candidates, ids)

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


def _is_question(p: _Pending) -> bool:
    return isinstance(p.request, ToolQuestion)


def pick_by_id(
    ident: str, candidates: Sequence[P], ids: Callable[[P], list[str]], *, waiting: str | None = None,
    nothing: str = "nothing pending",
) -> P:
    """The one candidate ``ident`` names: one of its whole ids, or a prefix of at least
    ``MIN_PREFIX`` characters that fits no other candidate (a stale short prefix could
    otherwise approve a call the person never saw).  ``waiting`` describes the candidates
    in the error (default: their ids); ``nothing`` starts the not-found sentence.
    """
    ident = (ident or "").strip()
    if waiting is None:
        waiting = ", ".join(sorted({i for c in candidates for i in ids(c)}))
    waiting = waiting or "none"
    exact = [c for c in candidates if ident in ids(c)]
    if len(exact) == 1:
        return exact[0]
    matching = exact
    if not exact:
        if len(ident) < MIN_PREFIX:
            short = f"; a shortened id needs at least {MIN_PREFIX} characters: give more of it" if ident else ""
            raise LookupError(f"{nothing} with id {ident!r} (waiting: {waiting}){short}")
        matching = [c for c in candidates if any(i.startswith(ident) for i in ids(c))]
        if len(matching) == 1:
            return matching[0]
        if not matching:
            raise LookupError(f"{nothing} with id {ident!r} (waiting: {waiting})")
    named = "; ".join(" / ".join(ids(c)) for c in matching)
    raise LookupError(f"{ident!r} matches {len(matching)} pending requests ({named}); give more of the id to pick one")

"""The task assistant: the seed design's "Darcy" bot as a Python API any front end can drive.

    from datetime import date
    from llmgine_nb.apps.tasks import TaskAssistant, demo_board

    board = demo_board(today=date(2026, 5, 6))
    assistant = TaskAssistant(board, today=date(2026, 5, 6))     # offline planner; model="..." for a real one

    # Discord id 1002 is Mei (already linked in the demo board); 1001 is Sam.
    reply = await assistant.handle("1002", "show me Sam's tasks in Recruitment")
    print(reply)                      # "Sam Carter's active tasks in Recruitment:\n1. T1 Send out ..."

    reply = await assistant.handle("1002", "assign the budget review to Sam due Friday in Finance")
    reply.kind, reply.question        # "approval", the RequestApproval waiting ...
    print(reply)                      # "I'm going to assign 'Budget review' to Sam Carter due Fri 8 May 2026 in Finance - confirm? (yes/no)"
    reply = await assistant.handle("1002", "yes")          # ... answered by the next message
    print(reply)                      # "Done! Created T13: 'Budget review' assigned to Sam Carter, ..."

    reply = await assistant.handle("1001", "I finished the recruitment stuff")
    reply.kind, reply.options         # "choice", the three recruitment tasks
    await assistant.handle("1001", "2")                    # "Nice work! Marked T3 'Book rooms ...' as done."

    reply = await assistant.handle("2001", "show me my tasks")   # an unknown Discord id
    print(reply)                      # "I don't recognise you yet. Please tell me the email ..."
    await assistant.handle("2001", "I'm priya@example.org")       # verified, and remembered on the board

    await assistant.close()

From synchronous code (a notebook cell, a bot thread) use ``assistant.handle_sync(user, text)``
and ``assistant.close_sync()`` instead.

Each platform user (a Discord id, a Slack id ...) gets a ``ChatEngine``
session of their own, named ``tasks:<platform>:<id>`` in the store, with
the board user's identity and grants set on the session's tools.  Questions
the tools ask (an approval, "did you mean 1) 2) 3)?") come back as a
:class:`Reply` with ``reply.question`` set, and the user's next message
answers them, as in a chat.  Other front ends can answer through the bus
instead: pass ``approvals=AutoApproval(...)`` (a policy for approvals), or
``approvals=None`` to leave every question to handlers already on the bus
(a notebook's approval cards, a test's handler).  ``assistant.approvals`` is
the ``ApprovalQueue`` holding the questions waiting for a chat answer, so a
button in a web page can answer with ``assistant.approvals.approve(display_id)``
and ``await assistant.wait(user)`` gives the reply that follows.  The
assistant learns that something waits from the events that announce it
(``ApprovalRequested``, ``ConfirmationRequested``, ``ChoiceRequested``), and
who answered travels on the decision itself (``ApprovalDecided.decided_by``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel

from ...bus import MessageBus, Registration
from ...engine import ChatEngine, TurnResult
from ...llm import BaseLLM, get_llm
from ...messages import Command, Event
from ...store import Store
from ...tools import ApprovalDecided, ApprovalDecision, ApprovalQueue, ToolManager
from ...tools.commands import ChoiceRequest, ConfirmRequest, RequestApproval
from ...tools.events import (
    ApprovalExpired,
    ApprovalRequested,
    ChoiceRequested,
    ConfirmationRequested,
    QuestionAnswered,
    QuestionExpired,
)
from .answers import parse_choice, parse_yes_no
from .board import WRITE, Board, User
from .dates import describe_date
from .events import UserVerified
from .offline import offline_task_llm
from .tools import TaskTools

__all__ = ["TaskAssistant", "Reply", "TaskSession", "SYSTEM_PROMPT"]

log = logging.getLogger("llmgine_nb.apps.tasks")

SYSTEM_PROMPT = """\
You are {name}, a task assistant for a team's task board, talking with one person in a chat.

You can: tell who the user is (whoami), verify an unknown user by their board email (verify_user),
list active projects (list_projects), show tasks (find_tasks), assign a new task (create_task) and
mark the user's task done (complete_task).

Rules:
- If the user is not verified, ask for the email they use on the board, then call verify_user with it.
- To assign a task: call list_projects, then create_task with the project's id and the due date as the
  user said it ("Friday"); the tool asks the user to confirm. If create_task says the user chose a
  project or person, call it again exactly as it says.
- When the user says they finished something, call complete_task with their words; it asks which task.
- Never say a task was created or changed unless a tool result says so. If a tool refuses (no
  permission, denied, unknown name), tell the user plainly and what they can do.
- Keep replies short. Show task lists as the tools give them."""

Approvals = Literal["chat"] | Callable[[RequestApproval], Any] | None


class TaskSession(BaseModel):
    """The engine state of one chat user's session (persisted with it)."""

    platform: str
    platform_user_id: str
    user_id: str | None = None  # the board user, once verified


@dataclass(repr=False)
class Reply:
    """What the assistant says back to one message.

    ``text`` is what to show.  When ``question`` is set, a tool is waiting
    for the user's answer (``kind`` says which: ``approval``, ``confirm`` or
    ``choice`` with ``options``); the next message to ``handle`` answers it.
    Otherwise the turn is over and ``turn`` holds its ``TurnResult``.
    """

    text: str
    question: Command | None = None
    turn: TurnResult | None = None

    @property
    def kind(self) -> str:
        if isinstance(self.question, RequestApproval):
            return "approval"
        if isinstance(self.question, ChoiceRequest):
            return "choice"
        if isinstance(self.question, ConfirmRequest):
            return "confirm"
        return "answer"

    @property
    def waiting(self) -> bool:
        """True while a tool waits for the user's answer."""
        return self.question is not None

    @property
    def options(self) -> list[str]:
        return list(self.question.options) if isinstance(self.question, ChoiceRequest) else []

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<Reply {self.kind}: {self.text!r}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # A notebook shows what the user would see (and nbval compares no ids or times).
        printer.text(self.text)


@dataclass
class _Conversation:
    """One platform user's engine, tools and running turn."""

    platform_user_id: str
    engine: ChatEngine
    tools: ToolManager
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    asked: asyncio.Event = field(default_factory=asyncio.Event)  # set when a question arrives
    turn: asyncio.Task[TurnResult] | None = None
    # Questions answered but not yet gone from the queue (it settles them on its loop, a moment later).
    answered: set[str] = field(default_factory=set)
    # Requests announced by an event and not yet settled: request id -> its tool call id.
    announced: dict[str, str | None] = field(default_factory=dict)
    registrations: list[Any] = field(default_factory=list)

    @property
    def session_id(self) -> str:
        return self.engine.session_id


class TaskAssistant:
    """The task assistant over a :class:`~.board.Board`: one chat session per platform user.

    ``model``: a litellm model string or alias for a real model; by default
    (no ``model``, no ``llm``) the deterministic offline planner answers.
    ``llm_options`` go to ``get_llm`` with the model (``api_base``,
    ``temperature`` ...).  ``llm``: a ready model client instead.  ``bus``/``store``: share existing
    ones (default: new, the store in memory).  ``platform``: whose user ids
    ``handle`` receives.  ``approvals``: ``"chat"`` (the next message
    answers), an approval handler such as ``AutoApproval.deny_all()``
    (questions still go to the chat), or None (handlers already on the bus
    answer everything).  ``today``: the date due dates count from (a date or
    a function; default the real date).
    """

    def __init__(
        self,
        board: Board,
        *,
        model: str | None = None,
        llm_options: Mapping[str, Any] | None = None,
        llm: BaseLLM | None = None,
        bus: MessageBus | None = None,
        store: Store | None = None,
        platform: str = "discord",
        approvals: Approvals = "chat",
        today: date | Callable[[], date] | None = None,
        name: str = "Darcy",
        system_prompt: str | None = None,
        approval_timeout: float | None = 600.0,
        max_steps: int = 8,
    ) -> None:
        if approvals != "chat" and approvals is not None and not callable(approvals):
            raise TypeError(
                "approvals must be 'chat', an approval handler such as AutoApproval.approve_all(), or None "
                f"(handlers already on the bus answer), not {approvals!r}"
            )
        self.board = board
        self._own_bus = bus is None
        self.bus = bus if bus is not None else MessageBus("tasks")
        self.store = store if store is not None else Store(":memory:")
        self.platform = platform
        self.name = name
        self.system_prompt = system_prompt if system_prompt is not None else SYSTEM_PROMPT.format(name=name)
        self.approval_timeout = approval_timeout
        self.max_steps = max_steps
        self.task_tools = TaskTools(board, platform=platform, today=today)
        if llm is not None:
            self.llm = llm
        elif model is not None:
            self.llm = get_llm(model, bus=self.bus, **dict(llm_options or {}))
        else:
            self.llm = offline_task_llm(bus=self.bus)
        self._approvals_mode = approvals
        # The questions waiting for a chat answer (None when other front ends answer everything).
        self.approvals: ApprovalQueue | None = ApprovalQueue() if approvals is not None else None
        self._conversations: dict[str, _Conversation] = {}
        self._by_session: dict[str, _Conversation] = {}
        self._starting: asyncio.Lock | None = None
        self._verified: Registration = self.bus.subscribe(UserVerified, self._on_verified, priority=50, inline=True)
        # Quick and touching the loop's objects (an asyncio.Event): inline, on the publisher's loop.
        self._watching: list[Registration] = [
            self.bus.subscribe(kind, self._on_announced, inline=True)
            for kind in (ApprovalRequested, ConfirmationRequested, ChoiceRequested)
        ] + [
            self.bus.subscribe(kind, self._on_settled, inline=True)
            for kind in (ApprovalDecided, ApprovalExpired, QuestionAnswered, QuestionExpired)
        ]

    def __repr__(self) -> str:
        return f"<TaskAssistant {self.name} platform={self.platform} users={len(self._conversations)} model={self.llm.model!r}>"

    # -- the Python API ----------------------------------------------------------------

    async def handle(self, platform_user_id: str, text: str) -> Reply:
        """Answer one chat message from ``platform_user_id``.

        If a tool is waiting for this user's answer (an approval, a "did you
        mean"), ``text`` answers it and the turn goes on; otherwise ``text``
        starts a new turn.  Returns at the next thing to show: the turn's
        reply, or the next question.
        """
        if not str(text).strip():
            raise ValueError("the message is empty; pass the text the user wrote")
        conv = await self._conversation(str(platform_user_id))
        async with conv.lock:
            question = self._pending_question(conv)
            if question is not None and self._answer(conv, question, text):
                conv.answered.add(question.id)
            else:
                if conv.turn is not None and not conv.turn.done():
                    await asyncio.shield(conv.turn)  # answered elsewhere and still finishing
                user = self._refresh_identity(conv)
                conv.turn = asyncio.ensure_future(conv.engine.send(text, system=self._system_for(conv, user)))
            return await self._next_reply(conv)

    async def wait(self, platform_user_id: str) -> Reply:
        """The reply that follows this user's pending question, once it is answered elsewhere.

        For front ends that answer through ``assistant.approvals`` (a button
        calling ``approvals.approve(call_id)``) instead of a chat message.
        """
        conv = await self._conversation(str(platform_user_id))
        async with conv.lock:
            if self.approvals is not None:
                # Whatever is pending now has been shown; what comes next is the turn's end or a new question.
                conv.answered.update(r.id for r in self.approvals.pending() if r.session_id == conv.session_id)
            return await self._next_reply(conv)

    def handle_sync(self, platform_user_id: str, text: str, *, timeout: float | None = None) -> Reply:
        """``handle`` for synchronous code (a notebook cell, a bot thread), on the bus's background loop.

        Use either this or the async API for one assistant, not both: the
        conversations live on the loop that first used them.
        """
        return self.bus.background.run(self.handle(platform_user_id, text), timeout)

    async def engine(self, platform_user_id: str) -> ChatEngine:
        """The chat engine of this platform user's session (created or resumed on first use)."""
        return (await self._conversation(str(platform_user_id))).engine

    def user_for(self, platform_user_id: str) -> User | None:
        """The board user a platform id is verified as, or None."""
        return self.board.user_for_platform(self.platform, str(platform_user_id))

    def close_sync(self, *, timeout: float | None = 30.0) -> None:
        """``close`` for users of ``handle_sync``; also stops the bus's background loop if the assistant made the bus."""
        self.bus.background.run(self.close(), timeout)
        if self._own_bus:
            self.bus.close()

    async def close(self) -> None:
        """Stop running turns and take every handler of the assistant off the bus."""
        for conv in list(self._conversations.values()):
            await conv.engine.close()
            for registration in conv.registrations:
                registration.unregister()
            conv.tools.close()
        self._conversations.clear()
        self._by_session.clear()
        self._verified.unregister()
        for registration in self._watching:
            registration.unregister()
        if self.approvals is not None:
            self.approvals.deny_all("the assistant was closed")

    # -- sessions -----------------------------------------------------------------------------

    async def _conversation(self, platform_user_id: str) -> _Conversation:
        conv = self._conversations.get(platform_user_id)
        if conv is not None:
            return conv
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            conv = self._conversations.get(platform_user_id)
            if conv is None:
                conv = await self._start_conversation(platform_user_id)
        return conv

    async def _start_conversation(self, platform_user_id: str) -> _Conversation:
        if not platform_user_id.strip():
            raise ValueError("the platform user id is empty; pass the chat platform's id of the person writing")
        tools = ToolManager(bus=self.bus, approval_timeout=self.approval_timeout)
        self.task_tools.register(tools)
        engine = ChatEngine(
            self.bus,
            store=self.store,
            tools=tools,
            llm=self.llm,
            system_prompt=self.system_prompt,
            session_name=f"tasks:{self.platform}:{platform_user_id}",
            state=TaskSession(platform=self.platform, platform_user_id=platform_user_id),
            max_steps=self.max_steps,
            approvals=self.approvals,  # so DecideApproval / AnswerQuestion on the bus answer this session's questions
        )
        await engine.start()
        conv = _Conversation(platform_user_id, engine, tools)
        conv.registrations = self._attach_front_end(engine.session_id)
        self._conversations[platform_user_id] = conv
        self._by_session[engine.session_id] = conv
        self._refresh_identity(conv)
        log.info("task assistant: session %s for %s user %s", engine.session_id, self.platform, platform_user_id)
        return conv

    def _attach_front_end(self, session_id: str) -> list[Any]:
        """Handlers for this session's questions, scoped to it (so other sessions keep theirs)."""
        if self.approvals is None:
            return []
        if self._approvals_mode == "chat":
            return self.approvals.attach(_SessionScope(self.bus, session_id)).registrations
        # A policy decides approvals; the chat still answers the tools' questions.
        assert self._approvals_mode is not None  # (None would have made no queue)
        policy = _SessionScope(self.bus, session_id).register_command_handler(RequestApproval, self._approvals_mode)
        questions = self.approvals.attach(_SessionScope(self.bus, session_id, skip=(RequestApproval,)))
        return [policy, *questions.registrations]

    def _refresh_identity(self, conv: _Conversation) -> User | None:
        """Give the session the grants of the board user its platform id is linked to (none if unlinked)."""
        user = self.user_for(conv.platform_user_id)
        self._grant(conv, user)
        return user

    def _grant(self, conv: _Conversation, user: User | None) -> None:
        if user is None:
            conv.tools.set_access(conv.session_id, user=None, grants=())
        else:
            conv.tools.set_access(conv.session_id, user=user.id, grants=user.grants)
        state = conv.engine.state
        if isinstance(state, TaskSession):
            state.user_id = user.id if user else None

    def _on_verified(self, event: UserVerified) -> None:
        conv = self._by_session.get(event.session_id or "")
        if conv is None:
            return  # another application's session on a shared bus
        self._grant(conv, self.board.user(event.user_id))

    def _system_for(self, conv: _Conversation, user: User | None) -> str:
        today = describe_date(self.task_tools.today())
        if user is None:
            who = f"Current user: not verified ({self.platform} user {conv.platform_user_id})."
        else:
            may = "may read and change tasks" if user.can(WRITE) else "may read tasks but not change them"
            who = f"Current user: {user.name} (id {user.id}, {user.email}), who {may}."
        return f"{self.system_prompt}\n\nToday is {today}.\n{who}"

    # -- questions in the chat ---------------------------------------------------------------

    def _on_announced(self, event: Event) -> None:
        conv = self._by_session.get(event.session_id or "")
        if conv is None or self.approvals is None:
            return
        if isinstance(event, ApprovalRequested):
            if self._approvals_mode != "chat":
                return  # a policy answers approvals; only the tools' questions come to the chat
            conv.announced[event.request_id] = event.call_id
        elif isinstance(event, (ConfirmationRequested, ChoiceRequested)):
            conv.announced[event.question_id] = event.call_id
        conv.asked.set()

    def _on_settled(self, event: Event) -> None:
        conv = self._by_session.get(event.session_id or "")
        if conv is None:
            return
        if isinstance(event, (QuestionAnswered, QuestionExpired)):
            conv.announced.pop(event.question_id, None)
        elif isinstance(event, ApprovalExpired):
            conv.announced.pop(event.request_id, None)
        elif isinstance(event, ApprovalDecided):
            for request_id, call_id in list(conv.announced.items()):
                if call_id == event.call_id:
                    conv.announced.pop(request_id, None)

    def _on_its_way(self, conv: _Conversation) -> bool:
        """Whether a question was announced that has not reached the queue yet (it does a moment later)."""
        if self.approvals is None or not conv.announced:
            return False
        waiting = {r.id for r in self.approvals.pending(conv.session_id)}
        return any(rid not in waiting and rid not in conv.answered for rid in conv.announced)

    def _pending_question(self, conv: _Conversation) -> Command | None:
        if self.approvals is None:
            return None
        waiting = [r for r in self.approvals.pending() if r.session_id == conv.session_id]
        conv.answered.intersection_update(r.id for r in waiting)
        unanswered = [r for r in waiting if r.id not in conv.answered]
        return unanswered[0] if unanswered else None

    def _answer(self, conv: _Conversation, question: Command, text: str) -> bool:
        """Answer ``question`` from the chat text; False if it stopped waiting meanwhile (a timeout)."""
        assert self.approvals is not None
        try:
            self._settle(conv, question, text)
        except LookupError:
            log.info("question %s stopped waiting before the answer came; the message starts a new turn", question.id)
            return False
        return True

    def _settle(self, conv: _Conversation, question: Command, text: str) -> None:
        assert self.approvals is not None
        who = self._decider(conv)
        if isinstance(question, RequestApproval):
            yes = parse_yes_no(text)
            if yes:
                decision = ApprovalDecision.approve()
            elif yes is False:
                decision = ApprovalDecision.deny()
            else:  # not a clear yes: fail closed, and let the model read what they said
                decision = ApprovalDecision.deny(f"The user did not confirm; they said: {text}")
            self.approvals.decide(question.call_id, decision, session_id=conv.session_id, decided_by=who)
        elif isinstance(question, ChoiceRequest):
            self.approvals.answer(question.id, parse_choice(text, question.options), decided_by=who,
                                  session_id=conv.session_id)
        else:
            self.approvals.answer(question.id, parse_yes_no(text) is True, decided_by=who,
                                  session_id=conv.session_id)

    def _decider(self, conv: _Conversation) -> str:
        """Who is answering in this chat: the board user's name and email, else the platform id."""
        user = self.user_for(conv.platform_user_id)
        if user is None:
            return f"{self.platform} user {conv.platform_user_id} (unverified)"
        return f"{user.name} <{user.email}>" if user.email else user.name

    async def _next_reply(self, conv: _Conversation) -> Reply:
        while True:
            question = self._pending_question(conv)
            if question is not None:
                return Reply(_question_text(question), question=question)
            if conv.turn is None:
                return Reply("")
            if conv.turn.done():
                result = conv.turn.result()
                return Reply(str(result), turn=result)
            if self._on_its_way(conv):
                # The event came first; the request reaches the queue on the turn's next step.
                await asyncio.sleep(0)
                continue
            conv.asked.clear()
            asked = asyncio.ensure_future(conv.asked.wait())
            try:
                await asyncio.wait({conv.turn, asked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                asked.cancel()


def _question_text(question: Command) -> str:
    if isinstance(question, RequestApproval):
        sentence = question.preview or f"May I run {question.tool_name} with {question.arguments}?"
        return f"{sentence} (yes/no)"
    if isinstance(question, ChoiceRequest):
        return f"{question.question} (answer with a number, or 'none')"
    if isinstance(question, ConfirmRequest):
        return f"{question.question} (yes/no)"
    return str(getattr(question, "question", question))


class _SessionScope:
    """A target for ``ApprovalQueue.attach``: handlers scoped to one session of a bus.

    Command types in ``skip`` are left to another handler (the queue always
    offers to handle approvals too).
    """

    def __init__(self, bus: MessageBus, session_id: str, *, skip: tuple[type[Command], ...] = ()) -> None:
        self.bus = bus
        self.session_id = session_id
        self.skip = skip

    def register_command_handler(self, command_type: type[Command], handler: Callable[..., Any]) -> Any:
        if issubclass(command_type, self.skip):
            return _Nothing()
        return self.bus.register_command_handler(command_type, handler, session_id=self.session_id)


class _Nothing:
    """The registration of a handler that was not registered."""

    def unregister(self) -> None:
        return None

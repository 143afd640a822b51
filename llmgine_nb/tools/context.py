"""``ToolContext``: what a running tool may know and ask.

Declare a parameter annotated with ``ToolContext`` (any name) and the manager
fills it in; it never appears in the schema the model sees::

    @tool
    async def delete_task(task_id: int, ctx: ToolContext) -> str:
        if not await ctx.confirm(f"Really delete task {task_id}?"):
            return "The user kept the task."
        ...

A question belongs to its tool call.  When the call ends - it finished, timed
out or its turn was cancelled - the manager calls ``ctx.abandon()``: open
questions are withdrawn (an ``ApprovalQueue`` forgets them, so a late answer
cannot reach the tool) and every question, open or new, is answered "no"
(``confirm``) or ``None`` (``choose``).  A worker thread blocked in
``confirm_sync`` is released at once, so an abandoned tool can never act on
an answer the person gave after the call was over.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..chat import ToolCall
from .commands import ChoiceRequest, ConfirmRequest, QuestionAnswer, ToolQuestion, read_answer
from .events import ChoiceRequested, ConfirmationRequested, QuestionAnswered, QuestionExpired
from .pending import DisplayIds

if TYPE_CHECKING:
    from ..bus import MessageBus

__all__ = ["ToolContext", "ask_confirm", "ask_choice", "grant_covers"]

log = logging.getLogger("llmgine_nb.tools")

Q = TypeVar("Q", bound=ToolQuestion)


def grant_covers(grant: str, permission: str) -> bool:
    """Whether ``grant`` gives ``permission``: equal, ``"*"``, or a ``"area:*"`` wildcard."""
    if grant == permission or grant == "*":
        return True
    return grant.endswith(":*") and permission.startswith(grant[:-1])


class ToolContext:
    """The session, the user and their grants, session state, and a way to ask the user.

    ``state`` is a mutable mapping kept per session by the manager (or by the
    ``state`` hook given to it), so a tool can remember things between calls.
    ``question_timeout`` bounds every question, also the wait of a worker
    thread in ``confirm_sync``/``choose_sync``; ``abandon()`` ends them all.
    """

    def __init__(
        self,
        *,
        call: ToolCall,
        tool_name: str,
        session_id: str | None = None,
        user: str | None = None,
        grants: frozenset[str] = frozenset(),
        state: MutableMapping[str, Any] | Callable[[], MutableMapping[str, Any]] | None = None,
        bus: MessageBus | None = None,
        question_timeout: float | None = 300.0,
        loop: asyncio.AbstractEventLoop | None = None,
        display_ids: DisplayIds | None = None,
    ) -> None:
        self.call = call
        self.tool_name = tool_name
        self.session_id = session_id
        self.user = user
        self.grants = grants
        # A callable is asked only when a tool first touches ctx.state (it may hit a database).
        self._state = state
        self.bus = bus
        self.question_timeout = question_timeout
        self._loop = loop
        self._display_ids = display_ids if display_ids is not None else DisplayIds()
        # The asking tasks still waiting for an answer; cancelled by abandon().
        self._open: set[asyncio.Task[Any]] = set()
        self._open_lock = threading.Lock()
        self._abandoned: str | None = None  # why, once abandoned

    @property
    def state(self) -> MutableMapping[str, Any]:
        """This session's state: a mutable mapping that outlives the call."""
        if self._state is None:
            self._state = {}
        elif callable(self._state):
            self._state = self._state()
        return self._state

    @property
    def call_id(self) -> str:
        return self.call.id

    def has_permission(self, permission: str) -> bool:
        """Whether the user's grants cover ``permission``."""
        return any(grant_covers(g, permission) for g in self.grants)

    @property
    def abandoned(self) -> bool:
        """Whether the call is over: every question is now answered no/None without asking."""
        return self._abandoned is not None

    def abandon(self, reason: str = "the tool call is over") -> None:
        """Withdraw the open questions and refuse new ones (fail closed).

        Open questions are cancelled (their pending entry leaves an
        ``ApprovalQueue``) and their askers get "no"/``None`` at once; later
        questions get the same without being asked.  Safe from any thread;
        calling it again does nothing.
        """
        with self._open_lock:
            if self._abandoned is not None:
                return
            self._abandoned = reason
            open_tasks = list(self._open)
        if open_tasks:
            log.info("call %s (%s): %d open question(s) withdrawn: %s",
                     self.call.id, self.tool_name, len(open_tasks), reason)
        for task in open_tasks:
            loop = task.get_loop()
            if _running_loop() is loop:
                task.cancel()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)

    async def confirm(self, question: str, *, timeout: float | None = None) -> bool:
        """Ask the user a yes/no question; ``False`` unless they clearly said yes."""
        request = ConfirmRequest(
            question=question, call_id=self.call.id, tool_name=self.tool_name, session_id=self.session_id,
        )
        request = self._with_display_id(request)
        announce = ConfirmationRequested(
            question_id=request.id, display_id=request.display_id, question=question, call_id=self.call.id,
            tool_name=self.tool_name, session_id=self.session_id,
        )
        ask = self._ask(request, announce, lambda value: value is True, self._timeout(timeout))
        answer = await self._asking(ask, False, request)
        return answer is True

    async def choose(self, question: str, options: list[str], *, timeout: float | None = None) -> str | None:
        """Ask the user to pick one of ``options``; ``None`` if they did not pick one of them."""
        options = [str(o) for o in options]
        request = ChoiceRequest(
            question=question, options=options, call_id=self.call.id, tool_name=self.tool_name,
            session_id=self.session_id,
        )
        request = self._with_display_id(request)
        announce = ChoiceRequested(
            question_id=request.id, display_id=request.display_id, question=question, options=options,
            call_id=self.call.id, tool_name=self.tool_name, session_id=self.session_id,
        )
        ask = self._ask(request, announce, lambda value: _chosen(value, options), self._timeout(timeout))
        answer = await self._asking(ask, None, request)
        return answer if isinstance(answer, str) else None

    def _with_display_id(self, request: Q) -> Q:
        return request.model_copy(update={"display_id": self._display_ids.allocate(self.session_id, request.id)})

    async def _ask(
        self, request: ToolQuestion, announce: ConfirmationRequested | ChoiceRequested,
        interpret: Callable[[Any], Any], timeout: float | None,
    ) -> Any:
        """Announce the question, ask it, and announce how it ended; the interpreted answer."""
        ids = {"question_id": request.id, "display_id": request.display_id, "call_id": self.call.id,
               "tool_name": self.tool_name, "session_id": self.session_id}
        try:
            await self._publish(announce)
            reply, why = await _execute(self.bus, request, timeout)
            if reply is None:
                await self._publish(QuestionExpired(reason=why, **ids))
                return interpret(None)
            value = interpret(reply.value)
            await self._publish(QuestionAnswered(answer=value, decided_by=reply.decided_by, **ids))
            return value
        except asyncio.CancelledError:
            # Withdrawn (the call is over) or the asker was cancelled: the card must come down.
            await self._publish(QuestionExpired(reason=self._abandoned or "the question was withdrawn", **ids))
            raise
        finally:
            self._display_ids.release(self.session_id, request.display_id)

    async def _publish(self, event: Any) -> None:
        if self.bus is not None:
            await self.bus.publish(event)

    def _timeout(self, timeout: float | None) -> float | None:
        return self.question_timeout if timeout is None else timeout

    async def _asking(self, ask: Any, no_answer: Any, request: Any) -> Any:
        """Run ``ask`` as a task abandon() can cancel; ``no_answer`` if it is (or already was)."""
        with self._open_lock:
            if self._abandoned is not None:
                ask.close()
                self._display_ids.release(self.session_id, request.display_id)
                log.info("%s of call %s not asked: %s", type(request).__name__, self.call.id, self._abandoned)
                return no_answer
            task = asyncio.ensure_future(ask)
            self._open.add(task)
        try:
            # wait() rather than awaiting the task: cancelling the asker (the
            # tool) raises here, cancelling the question (abandon) does not.
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            with self._open_lock:
                self._open.discard(task)
        if task.cancelled():
            log.info("%s of call %s withdrawn: %s", type(request).__name__, self.call.id, self._abandoned)
            return no_answer
        return task.result()

    # Synchronous tools run in a worker thread and cannot await: these block
    # the worker while the question is asked on the manager's event loop.

    def confirm_sync(self, question: str, *, timeout: float | None = None) -> bool:
        """``confirm`` for a synchronous tool (running in the manager's thread pool)."""
        return self._run_from_thread(self.confirm(question, timeout=timeout), False, timeout) is True

    def choose_sync(self, question: str, options: list[str], *, timeout: float | None = None) -> str | None:
        """``choose`` for a synchronous tool (running in the manager's thread pool)."""
        answer = self._run_from_thread(self.choose(question, options, timeout=timeout), None, timeout)
        return answer if isinstance(answer, str) else None

    def _run_from_thread(self, coro: Any, no_answer: Any, timeout: float | None) -> Any:
        loop = self._loop
        if loop is None or _running_loop() is loop:
            coro.close()
            raise RuntimeError(
                "confirm_sync/choose_sync are for synchronous tools running in a worker thread; "
                "in an async tool use `await ctx.confirm(...)` / `await ctx.choose(...)`"
            )
        if self.abandoned:
            coro.close()
            log.info("question of call %s not asked: %s", self.call.id, self._abandoned)
            return no_answer
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        limit = self._timeout(timeout)
        # The question times itself out on the loop; this bound (a little
        # later) keeps the worker from hanging if the loop cannot say so.
        try:
            return future.result(None if limit is None else limit + _THREAD_GRACE)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.info("question of call %s got no answer within %s s; taken as no", self.call.id, limit)
        except concurrent.futures.CancelledError:
            log.info("question of call %s was cancelled; taken as no", self.call.id)
        return no_answer

    def __repr__(self) -> str:
        return f"<ToolContext {self.tool_name} call={self.call.id} session={self.session_id} user={self.user}>"


# Seconds a worker thread waits beyond the question's own timeout.
_THREAD_GRACE = 1.0


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _execute(bus: MessageBus | None, command: Any, timeout: float | None) -> tuple[QuestionAnswer | None, str]:
    """Execute ``command``; (the answer, or None and why not).  Never raises for a missing or failing front end."""
    if bus is None:
        log.info("%s not asked: the tool manager has no bus", type(command).__name__)
        return None, "nobody could be asked"
    try:
        result = await asyncio.wait_for(bus.execute(command), timeout)
    except asyncio.TimeoutError:
        log.info("%s got no answer within %s s", type(command).__name__, timeout)
        return None, f"no answer within {timeout:g} s"
    if not result.success:
        log.info("%s not answered: %s", type(command).__name__, result.error)
        return None, "nobody could answer"
    return read_answer(result.result), ""


def _chosen(value: Any, options: list[str]) -> str | None:
    """A choice counts only when it is one of the options."""
    if value is None:
        return None
    if isinstance(value, str) and value in options:
        return value
    log.warning("answer %r to a ChoiceRequest is not one of %r; taken as no choice", value, options)
    return None


async def ask_confirm(bus: MessageBus | None, request: ConfirmRequest, timeout: float | None) -> bool:
    """Send a ``ConfirmRequest``; only a literal ``True`` answer confirms."""
    reply, _ = await _execute(bus, request, timeout)
    if reply is not None and reply.value is not True and not isinstance(reply.value, bool):
        log.warning("malformed answer %r to a ConfirmRequest; taken as no", reply.value)
    return reply is not None and reply.value is True


async def ask_choice(bus: MessageBus | None, request: ChoiceRequest, timeout: float | None) -> str | None:
    """Send a ``ChoiceRequest``; the answer counts only when it is one of the options."""
    reply, _ = await _execute(bus, request, timeout)
    return _chosen(reply.value, request.options) if reply is not None else None

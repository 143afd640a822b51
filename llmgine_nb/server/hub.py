"""Many sessions on one bus and one store: what the server and the terminal client drive.

    hub = SessionHub(store, model="scripted", tools=[save_note])
    record = await hub.create_session()
    turn_id = await hub.send(record.id, "hello")     # returns once the turn has started
    queue = hub.streams.subscribe(record.id)         # its numbered events as JSON texts

The hub is a front end like the notebook: it sends the engine's commands
(``SendMessage``, ``CancelTurn``, ``DecideApproval`` ...) and renders
nothing itself; the events reach watchers through ``SessionStreams``.  It
knows nothing of HTTP: ``llmgine_nb.server.app`` puts it behind FastAPI and
``llmgine_nb.terminal`` drives it in process.  An engine is made for a
session the first time it is used (a session loaded from disk resumes),
and unloaded again when the session has been idle for ``idle_unload_s`` or
when more than ``max_engines`` are loaded (least recently used first).  An
idle session has no turn running, so nothing waits in it: no approval is
lost, and its history is on disk for the next request to load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..bus import MessageBus
from ..engine import CancelTurn, ChatEngine, DecideApproval, SendMessage, SwitchModel
from ..engine.commands import AnswerQuestion, RetryTurn
from ..engine.events import TurnCancelled, TurnEvent, TurnFailed, TurnFinished, TurnStarted
from ..llm import BaseLLM
from ..messages import CommandResult
from ..secrets import Redactor
from ..store import SessionRecord, Store
from ..tools import ApprovalQueue, ToolManager
from .hub_api import BadInput, HubCommon, HubError, NotPending, TurnRunning, forget_when_done, refusal, sentence
from .pending import pending_items
from .recovery import RESTART_REASON, cut_turn
from .stream import SessionStreams

__all__ = ["SessionHub", "HubError", "TurnRunning", "NotPending"]

log = logging.getLogger("llmgine_nb.server")

LLMFactory = Callable[[str | None], BaseLLM]


class SessionHub(HubCommon):
    """Engines for many sessions on one bus, with numbered event streams.

    ``model`` is the default model of new sessions (None: from the
    environment, else the offline model); ``llm_factory(model)`` makes the
    model object for each engine instead (tests and demos script it).
    ``tools`` are shared by every session.  ``approval_timeout`` is how long
    an approval waits for its owner (seconds; the call is denied after).
    ``idle_unload_s`` and ``max_engines`` (None: never) unload idle engines.
    """

    def __init__(
        self,
        store: Store,
        *,
        model: str | None = None,
        llm_factory: LLMFactory | None = None,
        tools: Iterable[Any] = (),
        system_prompt: str | None = None,
        approval_timeout: float | None = 300.0,
        redactor: Redactor | None = None,
        delta_flush_s: float = 0.05,
        idle_unload_s: float | None = 900.0,
        max_engines: int | None = 1000,
    ) -> None:
        self.store = store
        self.model = model
        self.llm_factory = llm_factory
        self.system_prompt = system_prompt
        self.redactor = redactor if redactor is not None else Redactor()
        self.bus = MessageBus("hub")
        self.approvals = ApprovalQueue()
        self._attachment = self.approvals.attach(self.bus)
        self.tools = ToolManager(tools, bus=self.bus, approval_timeout=approval_timeout)
        self.streams = SessionStreams(store, self.redactor, delta_flush_s=delta_flush_s).attach(self.bus)
        self.engines: dict[str, ChatEngine] = {}
        # Running turns only (``forget_when_done``).
        self.turns: dict[str, asyncio.Task[CommandResult]] = {}
        self._starting: dict[str, asyncio.Future[str]] = {}
        # Sessions whose running turn has published its end (its task is only tidying up).
        self._ended: set[str] = set()
        self._opening: dict[str, asyncio.Lock] = {}
        self.idle_unload_s = idle_unload_s
        self.max_engines = max_engines
        self._last_used: dict[str, float] = {}  # loaded session -> when last asked for (monotonic)
        self._sweeper: asyncio.Task[None] | None = None
        self._registration = self.bus.subscribe(TurnEvent, self._on_turn_event, inline=True)  # settles loop futures
        #: What a turn found cut when its session loads was cut by (a worker sets its own sentence).
        self.cut_reason = RESTART_REASON

    # -- sessions ----------------------------------------------------------------

    async def open(self, session_id: str) -> ChatEngine:
        """The engine of a stored session, started on first use (or reloaded after it was unloaded)."""
        engine = self.engines.get(session_id)
        if engine is not None:
            self._last_used[session_id] = time.monotonic()
            return engine
        lock = self._opening.setdefault(session_id, asyncio.Lock())
        async with lock:
            engine = self.engines.get(session_id)
            if engine is None:
                record = self.store.get_session(session_id)
                self.streams.track(record.id)
                # Before the engine loads the history it fixes.
                cut = cut_turn(self.store, record.id, self.cut_reason)
                llm = self.llm_factory(record.model) if self.llm_factory is not None else None
                engine = ChatEngine(
                    self.bus, store=self.store, tools=self.tools, llm=llm,
                    model=None if llm is not None else (record.model or self.model),
                    session_id=record.id, approvals=self.approvals, system_prompt=self.system_prompt,
                    redactor=self.redactor,
                )
                await engine.start()
                self.engines[record.id] = engine
                self._last_used[record.id] = time.monotonic()
                if cut is not None:
                    await self.bus.publish(cut)  # watchers see the cut turn end, numbered like any event
                if self.store.pending_tool_calls(record.id):
                    await self._resume_cut_turn(record.id, engine)
                await self._unload_over_cap()
                self._start_sweeper()
        return engine

    # -- unloading idle engines ------------------------------------------------------

    def idle(self, session_id: str) -> bool:
        """No turn running (so nothing pending) and nobody starting one."""
        return not self.running(session_id) and session_id not in self._starting

    async def unload(self, session_id: str) -> bool:
        """Stop an idle session's engine to free its memory; the next request loads it again.

        Its stream stays numbered while someone watches it, so a watcher sees
        the reloaded session's events without reconnecting.
        """
        if session_id not in self.engines or not self.idle(session_id):
            return False
        engine = self.engines.pop(session_id)
        self._last_used.pop(session_id, None)
        self.turns.pop(session_id, None)
        self._ended.discard(session_id)
        await engine.close()
        self.streams.flush()
        if not self.streams.watched(session_id):
            self.streams.untrack(session_id)
        self._opening.pop(session_id, None)
        log.debug("unloaded the idle engine of session %s", session_id)
        return True

    async def unload_idle(self, older_than_s: float) -> int:
        """Unload every idle engine not asked for in ``older_than_s`` seconds; how many were."""
        cutoff = time.monotonic() - older_than_s
        stale = [session_id for session_id, used in list(self._last_used.items()) if used <= cutoff]
        return sum([await self.unload(session_id) for session_id in stale])

    async def _unload_over_cap(self) -> None:
        if self.max_engines is None or len(self.engines) <= self.max_engines:
            return
        oldest_first = sorted(self.engines, key=lambda s: self._last_used.get(s, 0.0))
        for session_id in oldest_first:
            if len(self.engines) <= self.max_engines:
                return
            await self.unload(session_id)

    def _start_sweeper(self) -> None:
        if self.idle_unload_s is None or (self._sweeper is not None and not self._sweeper.done()):
            return
        self._sweeper = asyncio.ensure_future(self._sweep(self.idle_unload_s))

    async def _sweep(self, idle_s: float) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(idle_s / 4, 60.0)))  # an engine outlives its idle time by a quarter at most
            try:
                await self.unload_idle(idle_s)
            except Exception:  # a failed unload must not stop the sweeping
                log.warning("could not unload idle engines", exc_info=True)

    async def _resume_cut_turn(self, session_id: str, engine: ChatEngine) -> None:
        """A turn cut by a restart left tool calls undecided: run it again, so they are asked again now.

        The engine asks undecided calls again at the start of its next turn;
        retrying the cut turn is that next turn, and the model then goes on
        from the answers.  Whoever reconnects sees the approval again.
        """
        try:
            await self._start(session_id, RetryTurn(session_id=session_id))
        except HubError as exc:
            log.warning("could not resume the turn cut in session %s: %s", session_id, exc)
            return
        await self._until_asked_again(session_id)

    async def _until_asked_again(self, session_id: str, patience_s: float = 5.0) -> None:
        """Wait (briefly) until the resumed turn has asked its calls again, so ``pending`` lists them.

        The turn asks them first thing after it starts; a route that opened the
        session to read what waits must not answer before it has.
        """
        deadline = time.monotonic() + patience_s
        while self.running(session_id) and time.monotonic() < deadline:
            if self.pending(session_id) or not self.store.pending_tool_calls(session_id):
                return
            await asyncio.sleep(0.01)

    async def create_session(self, name: str | None = None, model: str | None = None) -> SessionRecord:
        record = self.store.create_session(name, model=model or self.model or self._default_model())
        await self.open(record.id)
        return record

    def _default_model(self) -> str | None:
        if self.llm_factory is not None:
            return self.llm_factory(None).model
        return None

    async def fork(self, session_id: str, at_message_id: str | None = None, name: str | None = None) -> SessionRecord:
        """A new session with this one's history up to ``at_message_id`` (default: all of it)."""
        record = self.store.fork_session(session_id, self._fork_point(session_id, at_message_id), name=name)
        await self.open(record.id)
        return record

    async def close_session(self, session_id: str) -> None:
        """Stop the session's engine (cancelling its turn); the session stays on disk."""
        engine = self.engines.pop(session_id, None)
        self._last_used.pop(session_id, None)
        if engine is not None:
            await engine.close()
        self.streams.flush()
        self.streams.untrack(session_id)
        self._opening.pop(session_id, None)

    async def delete_session(self, session_id: str) -> None:
        """Delete the session and its history; refused (``TurnRunning``) while a turn runs: stop it first."""
        self._refuse_while_running(session_id, "delete it")
        await self.close_session(session_id)
        self.store.delete_session(session_id)

    # -- turns ---------------------------------------------------------------------

    def running(self, session_id: str) -> bool:
        task = self.turns.get(session_id)
        return task is not None and not task.done()

    def running_sessions(self) -> list[str]:
        return [session_id for session_id, task in self.turns.items() if not task.done()]

    async def _start(self, session_id: str, command: SendMessage | RetryTurn) -> str:
        previous = self.turns.get(session_id)
        if previous is not None and not previous.done() and session_id in self._ended:
            # A client that saw TurnFinished may send at once: the turn's task is only writing its last rows.
            await asyncio.wait({previous}, timeout=10)
        self._refuse_while_running(session_id, "send another message")
        self._ended.discard(session_id)
        loop = asyncio.get_running_loop()
        started: asyncio.Future[str] = loop.create_future()
        self._starting[session_id] = started
        task: asyncio.Task[Any] = asyncio.ensure_future(self.bus.execute(command))
        self.turns[session_id] = task
        forget_when_done(self.turns, session_id, task)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "exception never retrieved"
        try:
            await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._starting.pop(session_id, None)
        if started.done():
            return started.result()
        outcome = task.result()
        if isinstance(outcome, CommandResult) and not outcome.success:
            raise HubError(outcome.error or "The turn could not start.")
        raise HubError("The turn ended before it started; send the message again.")

    def _on_turn_event(self, event: TurnEvent) -> None:
        if isinstance(event, (TurnFinished, TurnFailed, TurnCancelled)) and event.session_id is not None:
            self._ended.add(event.session_id)
        if isinstance(event, (TurnStarted, TurnFailed, TurnCancelled)) and event.session_id is not None:
            started = self._starting.get(event.session_id)
            if started is not None and not started.done():
                if isinstance(event, TurnFailed) and event.kind == "input":
                    # Nothing to start from (an empty message, nothing to retry): the sender is told at once.
                    started.set_exception(BadInput(sentence(event.reason) or "The turn could not start."))
                else:
                    started.set_result(event.turn_id)

    async def cancel(self, session_id: str) -> bool:
        await self.open(session_id)
        result = await self.bus.execute(CancelTurn(session_id=session_id, reason="stopped by the user"))
        return bool(result.result)

    async def switch_model(self, session_id: str, model: str) -> str:
        """Make ``model`` the session's model for the next turns; returns the model's name."""
        await self.open(session_id)
        result = await self.bus.execute(SwitchModel(session_id=session_id, model=model))
        if not result.success:
            raise refusal("switch", result, f"Cannot switch to {model!r}.")
        return str(result.result)

    # -- approvals and questions --------------------------------------------------------

    def pending(self, session_id: str) -> list[dict[str, Any]]:
        """What waits for the session's owner: approvals and questions, oldest first."""
        return pending_items(self.approvals, session_id)

    async def decide(
        self, session_id: str, call_id: str, decision: str, *, message: str | None = None,
        arguments: dict[str, Any] | None = None, decided_by: str = "user", args_hash: str | None = None,
    ) -> None:
        """``args_hash``: of the arguments the person saw (the call runs only if it still matches)."""
        await self.open(session_id)
        result = await self.bus.execute(
            DecideApproval(session_id=session_id, call_id=call_id, decision=decision,
                           message=message, arguments=arguments, decided_by=decided_by, args_hash=args_hash)
        )
        if not result.success:
            raise refusal("decide", result, "That approval could not be decided.")

    async def answer(self, session_id: str, question_id: str, answer: Any, *, decided_by: str = "user") -> None:
        """Answer a tool's question (confirm: true/false; choice: one of its options, or null)."""
        await self.open(session_id)
        result = await self.bus.execute(
            AnswerQuestion(session_id=session_id, question_id=question_id, answer=answer, decided_by=decided_by)
        )
        if not result.success:
            raise refusal("answer", result, "That question could not be answered.")

    # -- shutting down -----------------------------------------------------------------

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for session_id in list(self.engines):
            await self.close_session(session_id)
        self.streams.detach()
        self._registration.unregister()
        self._attachment.unregister()


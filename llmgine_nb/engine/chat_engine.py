"""The chat engine: a turn loop expressed as commands in and events out.

This is an application pattern, not a framework: the class is small enough
to read in one sitting, to subclass, or to copy and change.  Its handlers
live on the bus, scoped to its session; a front end never calls its
internals, it sends commands (``SendMessage``, ``CancelTurn`` ...) and
renders the events.

A turn: persist the user message; compile the context; stream the model's
reply; if it asks for tools, verify, ask approval, run the approved calls
concurrently and persist calls and results; call the model again; stop at a
final answer or at the step limit.  What must be on disk is written by the
session's ``SessionJournal`` (journal.py) before any front end renders it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..bus import MessageBus, Registration
from ..chat import ChatMessage
from ..context import ContextCompiler
from ..images import ImageError
from ..llm import BaseLLM, LLMError, get_llm
from ..llm.base import LLMResponse
from ..llm.events import LLMCallFinished
from ..messages import use_metadata, use_session
from ..secrets import Redactor
from ..store import Fenced, Store
from ..text import clean_text
from ..tools import ApprovalQueue, ToolManager
from .answers import answer, decide
from .budget import Budget, approve_spending
from .commands import (
    AnswerQuestion,
    CancelTurn,
    DecideApproval,
    ForkSession,
    ResetSession,
    RetryTurn,
    SendMessage,
    SwitchModel,
)
from .events import (
    ModelSwitched,
    SessionForked,
    SessionReset,
    StepLimitReached,
    TurnCancelled,
    TurnFailed,
    TurnFinished,
    TurnStarted,
)
from .journal import PERSIST_FIRST, SessionJournal
from .requests import TurnRequests
from .resume import ASK_AGAIN, settle_cut_calls
from .state import StateView, load_state
from .turn import RunningTurn, TurnResult, TurnStatus

__all__ = ["ChatEngine"]

log = logging.getLogger("llmgine_nb.engine")

_SUMMARY_PROMPT = (
    "Summarise the conversation below for your own later reference: keep names, numbers, decisions, "
    "open questions and anything the user asked you to remember. Be brief."
)
_CANCELLED_CALL = "The user cancelled the turn before this call finished; it did not run or its result was lost."


class _InputError(ValueError):
    """The user's input cannot start a turn (not a bug: no traceback)."""


class ChatEngine:
    """A chat session's engine: history, model, tools, budgets and state.

    ``model`` is a litellm model string, an alias or ``"scripted"``; None
    picks one from the environment (see ``llmgine_nb.llm.get_llm``), or pass
    a ready ``llm``.  ``store`` defaults to an in-memory database.  ``state``
    is a pydantic model class (or instance) for typed per-session variables,
    persisted with the session and visible to tools as ``ctx.state``.
    ``approvals`` is the ``ApprovalQueue`` that ``DecideApproval`` and
    ``AnswerQuestion`` answer.  ``tools`` and ``llm`` are used as given: the
    engine passes its bus to each of their calls and changes nothing on them.
    ``redactor`` removes known secrets from everything the engine persists
    or reports (default: the API keys in the environment and ``.env``).
    ``save_partial_every`` (seconds) writes a reply that is still streaming
    to the store that often, marked interrupted, so that a crash of the
    kernel keeps what had arrived; None writes replies only when they end.
    ``request_cache=True`` replays the stored answer to a request sent before
    exactly as now (model, messages, tools, options) instead of paying again.
    """

    def __init__(
        self,
        bus: MessageBus,
        *,
        store: Store | None = None,
        tools: ToolManager | None = None,
        model: str | None = None,
        llm: BaseLLM | None = None,
        llm_options: Mapping[str, Any] | None = None,
        system_prompt: str | None = None,
        session_id: str | None = None,
        session_name: str | None = None,
        notebook: str | None = None,
        max_steps: int = 10,
        budget: Budget | None = None,
        context_tokens: int = 32_000,
        state: type[BaseModel] | BaseModel | None = None,
        namespace: Mapping[str, Any] | None = None,
        approvals: ApprovalQueue | None = None,
        redactor: Redactor | None = None,
        save_partial_every: float | None = 2.0,
        request_cache: bool = False,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1 (one model call per turn)")
        if save_partial_every is not None and not save_partial_every > 0:
            raise ValueError("save_partial_every must be a positive number of seconds, or None to never save drafts")
        if approvals is not None and not isinstance(approvals, ApprovalQueue):
            raise TypeError(
                "approvals must be the ApprovalQueue itself (attach() returns a handle, not the queue): "
                "queue = ApprovalQueue(); queue.attach(bus); ChatEngine(..., approvals=queue)"
            )
        self.bus = bus
        self.store = store if store is not None else Store(":memory:")
        self.tools = tools if tools is not None else ToolManager(bus=bus)
        self.llm_options = dict(llm_options or {})
        self._llms: dict[str, BaseLLM] = {}
        self.llm = llm or get_llm(model, bus=bus, **self.llm_options)
        self._llms[self.llm.model] = self.llm
        self.system_prompt = system_prompt
        self.max_steps = max_steps
        self.budget = budget or Budget()
        self.namespace = namespace
        self.approvals = approvals
        self.redactor = redactor or Redactor()
        self.save_partial_every = save_partial_every
        # What is sent: the request's hash and event, images' bytes, the opt-in cache (requests.py).
        self.requests = TurnRequests(self.store, bus, self.redactor, cache=request_cache)
        self.compiler = ContextCompiler(
            self.llm.model, budget=context_tokens, summariser=self._summarise, summaries=self.store
        )
        self._state_type = state if isinstance(state, type) else type(state) if state is not None else None
        self.state: BaseModel | None = state if isinstance(state, BaseModel) else None
        self._requested_session = (session_id, session_name, notebook)
        self.session_id = ""
        self.journal: SessionJournal | None = None
        self._registrations: list[Registration] = []
        self._turn_task: asyncio.Task[TurnResult] | None = None
        self._turn: RunningTurn | None = None
        self._cancel_reason = "cancelled by the user"
        self._cancelling = self._cancel_requested = False
        self._forwarding: list[Registration] = []  # notes left on sessions this engine moved away from

    @property
    def model(self) -> str:
        return self.llm.model

    @property
    def history(self) -> list[ChatMessage]:
        """The session's messages, oldest first (as stored)."""
        return self.journal.history if self.journal is not None else []

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> ChatEngine:
        """Create or resume the session and put the engine's handlers on the bus."""
        session_id, name, notebook = self._requested_session
        ref = session_id or name
        record = self.store.find_session(ref) if ref else None
        if record is None:
            record = self.store.create_session(name, model=self.model, notebook=notebook, id=session_id)
        self._bind(record.id)
        return self

    async def close(self) -> None:
        """Cancel a running turn and take the handlers off the bus."""
        await self.cancel()
        self._unbind()
        for registration in self._forwarding:
            registration.unregister()
        self._forwarding = []

    async def __aenter__(self) -> ChatEngine:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _bind(self, session_id: str) -> None:
        self._unbind()
        self.journal = SessionJournal(self.bus, self.store, session_id, self.redactor, busy=lambda: self.running)
        self.session_id = session_id
        self._check_pending = self.journal.had_pending_calls or bool(self.journal.unanswered_calls())
        self.state = load_state(self._state_type, self.state, self.journal.record.engine_state)
        if self.state is not None:
            self.tools.set_state(session_id, StateView(self.state))
        scoped = {"session_id": session_id}
        self._registrations = [
            self.bus.register_command_handler(SendMessage, self._on_send, **scoped),
            self.bus.register_command_handler(CancelTurn, self._on_cancel, **scoped),
            self.bus.register_command_handler(RetryTurn, self._on_retry, **scoped),
            self.bus.register_command_handler(DecideApproval, self._on_decide, **scoped),
            self.bus.register_command_handler(AnswerQuestion, self._on_answer, **scoped),
            self.bus.register_command_handler(SwitchModel, self._on_switch_model, **scoped),
            self.bus.register_command_handler(ResetSession, self._on_reset, **scoped),
            self.bus.register_command_handler(ForkSession, self._on_fork, **scoped),
            self.bus.subscribe(LLMCallFinished, self._count_usage, priority=PERSIST_FIRST, inline=True,
                               session_id=session_id),
        ]

    def _unbind(self) -> None:
        for registration in self._registrations:
            registration.unregister()
        self._registrations = []
        if self.journal is not None:
            self.journal.close()

    # -- the Python API (each method is one command on the bus) -----------------

    async def send(self, text: str, **options: Any) -> TurnResult:
        """Run a turn: ``await engine.send("hello", model=..., response_model=...)``."""
        command = SendMessage(session_id=self.session_id, text=text, **options)
        result = await self.bus.execute(command)
        return TurnResult.read(result.unwrap(), command.output_type())

    async def cancel(self, reason: str = "cancelled by the user") -> bool:
        """Cancel the running turn, if any; True if one was running."""
        result = await self.bus.execute(CancelTurn(session_id=self.session_id, reason=reason))
        return bool(result.result)

    async def retry(self) -> TurnResult:
        """Run the last user message again (after a failed or cancelled turn): a ``RetryTurn`` command."""
        result = await self.bus.execute(RetryTurn(session_id=self.session_id))
        return TurnResult.read(result.unwrap())

    async def switch_model(self, model: str) -> str:
        return (await self.bus.execute(SwitchModel(session_id=self.session_id, model=model))).unwrap()

    @property
    def running(self) -> bool:
        return self._turn_task is not None and not self._turn_task.done()

    @property
    def pending_tool_calls(self) -> list[Any]:
        """Tool calls requested before a restart and never decided (asked again on the next turn)."""
        return self.store.pending_tool_calls(self.session_id)

    # -- command handlers ----------------------------------------------------------

    async def _on_send(self, command: SendMessage) -> TurnResult:
        return await self._start_turn(command)

    async def _on_retry(self, command: RetryTurn) -> TurnResult:
        return await self._start_turn(SendMessage(session_id=self.session_id, text=""), retry=True)

    async def _start_turn(self, command: SendMessage, *, retry: bool = False) -> TurnResult:
        self._refuse_while_running("start another turn")
        self._cancel_reason, self._cancelling, self._cancel_requested = "cancelled by the user", False, False
        task = self._turn_task = asyncio.ensure_future(self._run_turn(command, retry=retry))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                # Whoever awaited us was cancelled (e.g. a kernel interrupt): stop the turn too.
                self._cancel_reason = "interrupted"
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            raise

    def _refuse_while_running(self, what: str) -> None:
        if self.running:
            raise RuntimeError(f"a turn is running in this session; wait for it or cancel it before you {what}")

    async def _on_cancel(self, command: CancelTurn) -> bool:
        task = self._turn_task
        if task is None or task.done():
            return False
        if not self._cancelling:
            # Only the first cancel cancels; a second (a double click) waits for the first.
            self._cancelling = True
            self._cancel_reason = command.reason
            if self._turn is None:
                self._cancel_requested = True  # not started yet: it stops at its first step
            else:
                task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def _on_decide(self, command: DecideApproval) -> str:
        return decide(self.approvals, command, self.session_id, self.redactor)

    async def _on_answer(self, command: AnswerQuestion) -> str:
        return answer(self.approvals, command, self.session_id)

    async def _on_switch_model(self, command: SwitchModel) -> str:
        previous = self.model
        self.llm = self._llm_for(command.model)
        self.compiler.model = self.llm.model
        self.store.set_session_model(self.session_id, self.model)  # so a reloaded engine (a restart, a worker) keeps it
        await self.bus.publish(ModelSwitched(session_id=self.session_id, model=self.model, previous=previous))
        return self.model

    async def _on_reset(self, command: ResetSession) -> str:
        self._refuse_while_running("reset the session")
        old = self.session_id
        record = self.store.create_session(model=self.model)
        self._bind(record.id)
        self._leave_forwarding_note(old, "was reset")
        await self.bus.publish(SessionReset(session_id=old, metadata={"new_session_id": record.id}))
        return record.id

    async def _on_fork(self, command: ForkSession) -> str:
        self._refuse_while_running("fork the session")
        at = command.at_message_id or (self.history[-1].id if self.history else None)
        if at is None:
            raise ValueError("this session has no messages yet; there is nothing to fork")
        old = self.session_id
        record = self.store.fork_session(old, at, name=command.name)
        self._bind(record.id)
        self._leave_forwarding_note(old, "was forked")
        await self.bus.publish(SessionForked(session_id=old, new_session_id=record.id, at_message_id=at))
        return record.id

    def _leave_forwarding_note(self, old_session_id: str, what: str) -> None:
        """A message still sent to the old session gets a sentence naming the new one."""
        new_session_id = self.session_id

        def moved(command: SendMessage) -> None:
            raise RuntimeError(
                f"session {old_session_id} {what}; this engine now continues in session {new_session_id} "
                "(engine.session_id): send there"
            )

        self._forwarding.append(self.bus.register_command_handler(SendMessage, moved, session_id=old_session_id))

    # -- the turn ---------------------------------------------------------------------

    async def _run_turn(self, command: SendMessage, *, retry: bool) -> TurnResult:
        llm = self._llm_for(command.model) if command.model else self.llm
        turn = self._turn = RunningTurn(uuid.uuid4().hex, llm.model)
        fenced = False
        try:
            # Every event of the turn - ours, the model's, the tools' - belongs to
            # this session and carries metadata["turn_id"].
            with use_session(self.session_id), use_metadata(turn_id=turn.id):
                return await self._run_turn_in_session(turn, llm, command, retry)
        except Fenced:
            fenced = True  # the store refuses this process's writes of the session: tidying up would be too
            raise
        finally:
            self._turn = None
            assert self.journal is not None
            if not fenced:
                if turn.draft is not None:  # the turn failed mid-stream: the reply never came
                    self.journal.discard_draft(turn.draft)
                self.journal.flush_calls()
                self._save_state()

    async def _run_turn_in_session(self, turn: RunningTurn, llm: BaseLLM, command: SendMessage, retry: bool) -> TurnResult:
        assert self.journal is not None
        try:
            if self._cancel_requested:
                return await self._cancelled(turn)
            user = self._user_message(command, retry)
            await self.bus.publish(
                TurnStarted(
                    session_id=self.session_id, turn_id=turn.id, text=user.content or "", model=llm.model,
                    user_message_id=user.id,
                )
            )
            if retry and not self._check_pending:  # run the message again: the cut turn's replies leave the context
                await self.journal.forget_the_last_answer()
            # Calls left undecided by a restart are answered before the new message,
            # so their results follow the assistant message that asked for them.
            await self._answer_pending_calls()
            if not retry:
                self.journal.append(user)
            await llm.ready()  # load litellm off the loop before the first real count or call
            return await self._loop(turn, llm, command)
        except asyncio.CancelledError:
            return await self._cancelled(turn)
        except Fenced as exc:
            # Another engine worker has taken the session over (this one stalled past its lease):
            # the turn is its now, and this one stops without writing (nor reporting) anything more.
            log.warning("turn %s stopped: %s", turn.id, exc)
            raise
        except (_InputError, ImageError) as exc:
            return await self._failed(turn, "input", str(exc), str(exc), retryable=False)
        except LLMError as exc:
            # A stream that dropped keeps the text that arrived, marked interrupted, as a cancel does.
            message_id = self.journal.keep_partial(turn)
            return await self._failed(
                turn, exc.kind, f"{exc} Your message is kept.", repr(exc),
                retryable=exc.retryable or exc.interrupted, text=turn.partial, message_id=message_id,
            )
        except Exception as exc:  # a bug or a broken store: report it, keep the session usable
            log.exception("turn %s failed", turn.id)
            reason = f"The turn failed: {type(exc).__name__}: {exc}. Your message is kept."
            return await self._failed(turn, "internal", reason, repr(exc))

    def _user_message(self, command: SendMessage, retry: bool) -> ChatMessage:
        """The message this turn answers (not yet stored unless it is a retry)."""
        assert self.journal is not None
        if retry:
            last_user = self.journal.last_user_message()
            if last_user is None:
                raise _InputError("There is no earlier message to retry; send one first.")
            return last_user
        if not command.text.strip():
            raise _InputError("The message is empty; type something to send.")
        text = clean_text(self.compiler.expand(command.text, self.namespace))  # a lone surrogate cannot be stored
        images = self.requests.user_images(command, self.compiler, self.namespace)  # ImageError: bad input
        return self.journal.clean(ChatMessage(role="user", content=text, images=images))

    async def _loop(self, turn: RunningTurn, llm: BaseLLM, command: SendMessage) -> TurnResult:
        assert self.journal is not None
        tools = self.tools.schemas() if command.use_tools and len(self.tools) else None
        system = command.system if command.system is not None else self.system_prompt
        while turn.steps < self.max_steps:
            turn.steps += 1
            compiled = await self.compiler.compile(
                self.history, system=system, memory=self.store.memory(self.session_id),
                session_id=self.session_id, namespace=self.namespace,
            )
            await self.requests.publish(turn, self.session_id, llm, self.compiler, compiled, tools,
                                        command.response_schema)
            if not await self._within_budget(turn, compiled.report.total):
                return await self._failed(
                    turn, "budget", "The budget was reached and more spending was not approved. "
                    "Raise the budget to go on.", "budget",
                )
            try:
                output_type = command.output_type()
            except LookupError as exc:
                raise _InputError(f"{exc}.") from None
            if output_type is not None:
                return await self._structured(turn, llm, compiled.messages, output_type)
            response = await self._stream(turn, llm, compiled.messages, tools)
            if not response.text and not response.tool_calls:
                return await self._failed(
                    turn, "empty_reply",
                    f"The model sent an empty reply (finish reason: {response.finish_reason or 'none given'}). "
                    "Your message is kept.", "empty reply",
                )
            (assistant,) = self.journal.append(response.to_message(), replacing=turn.draft)
            turn.draft = None
            if not response.tool_calls:
                return await self._finished(turn, assistant.content or "", assistant.id, "complete")
            # Each result reaches the history as its ToolFinished event arrives (the journal).
            await self.tools.execute(response.tool_calls, session_id=self.session_id, bus=self.bus)
        await self.bus.publish(StepLimitReached(session_id=self.session_id, turn_id=turn.id, steps=turn.steps))
        text = (
            f"Stopped after {turn.steps} steps without a final answer (the step limit). "
            "Ask again to continue, or raise max_steps."
        )
        return await self._finished(turn, text, None, "step_limit")

    async def _stream(
        self, turn: RunningTurn, llm: BaseLLM, messages: list[ChatMessage], tools: list[dict[str, Any]] | None
    ) -> LLMResponse:
        turn.pieces.clear()
        save_at: float | None = None  # when to save the draft next; the clock starts at the first text
        source = await self.requests.source(turn, llm)
        stream = source.stream(self.requests.sendable(messages), tools=tools, bus=self.bus)
        async for delta in stream:
            if delta.kind == "text":
                turn.pieces.append(delta.text)
                if save_at is None:
                    save_at = time.monotonic() + (self.save_partial_every or float("inf"))
                elif time.monotonic() >= save_at:
                    save_at = self._save_draft(turn, llm.model)
        turn.pieces.clear()
        self.requests.remember(turn, llm.model, stream.response)
        return stream.response

    def _save_draft(self, turn: RunningTurn, model: str) -> float:
        """Save the reply so far; return when to save it next (never again after a failure)."""
        assert self.journal is not None and self.save_partial_every is not None
        try:
            turn.draft = self.journal.save_draft(turn.draft, turn.partial, model)
        except Fenced:
            raise  # not a broken database: another worker has taken the session over, the turn stops
        except Exception:
            # A draft is insurance: a locked or broken database must not cost the reply itself.
            log.warning("could not save the draft of a streaming reply; the reply is saved when it ends",
                        exc_info=True)
            return float("inf")
        return time.monotonic() + self.save_partial_every

    async def _structured(
        self, turn: RunningTurn, llm: BaseLLM, messages: list[ChatMessage], response_model: type[BaseModel]
    ) -> TurnResult:
        assert self.journal is not None
        value = await llm.structured(self.requests.sendable(messages), response_model, bus=self.bus)
        (assistant,) = self.journal.append(
            ChatMessage(role="assistant", content=value.model_dump_json(indent=2), model=llm.model)
        )
        return await self._finished(turn, assistant.content or "", assistant.id, "complete", structured=value)

    async def _answer_pending_calls(self) -> None:
        """Calls a restart or a dead worker left without an answer are settled first (resume.py).

        Only a session loaded from disk can have them: a live engine answers
        or closes every call it starts, so the check runs once per binding.
        """
        assert self.journal is not None
        unanswered = self.journal.unanswered_calls() if self._check_pending else []
        self._check_pending = False
        if unanswered:
            rerun, ask = await settle_cut_calls(self.bus, self.store, self.tools, self.session_id, unanswered)
            for calls, again in ((rerun, None), (ask, ASK_AGAIN)):
                if calls:
                    await self.tools.execute(calls, session_id=self.session_id, ask_again=again, bus=self.bus)

    def _count_usage(self, event: LLMCallFinished) -> None:
        # Every model call of the turn counts: the replies, structured output, summaries.
        turn = self._turn
        if turn is not None and event.metadata.get("turn_id") == turn.id:
            turn.add(event.usage, event.cost_usd)

    # -- how a turn ends ------------------------------------------------------------------

    async def _finished(
        self, turn: RunningTurn, text: str, message_id: str | None, status: TurnStatus, structured: BaseModel | None = None
    ) -> TurnResult:
        result = turn.result(
            self.session_id, status, text=text, message_id=message_id,
            reason=text if status == "step_limit" else None, structured=structured,
        )
        await self.bus.publish(
            TurnFinished(
                session_id=self.session_id, turn_id=turn.id, text=text, model=turn.model, status=status,
                steps=turn.steps, usage=turn.usage, cost_usd=turn.cost, latency_s=result.latency_s,
                message_id=message_id, structured=structured.model_dump(mode="json") if structured else None,
                request_hash=turn.request_hash, replayed=turn.replayed,
            )
        )
        return result

    async def _failed(
        self, turn: RunningTurn, kind: str, reason: str, error: str, retryable: bool = True,
        text: str = "", message_id: str | None = None,
    ) -> TurnResult:
        # Provider errors may echo what was sent, keys included.
        reason, error = self.redactor.text(reason), self.redactor.text(error)
        await self.bus.publish(
            TurnFailed(session_id=self.session_id, turn_id=turn.id, kind=kind, reason=reason, error=error,
                       retryable=retryable)
        )
        return turn.result(
            self.session_id, "failed", reason=reason, error_kind=kind, text=text, message_id=message_id
        )

    async def _cancelled(self, turn: RunningTurn) -> TurnResult:
        assert self.journal is not None
        message_id = self.journal.keep_partial(turn)
        self.journal.close_unanswered(_CANCELLED_CALL)
        await self.bus.publish(
            TurnCancelled(session_id=self.session_id, turn_id=turn.id, partial_text=turn.partial,
                          reason=self._cancel_reason)
        )
        return turn.result(
            self.session_id, "cancelled", text=turn.partial, message_id=message_id,
            reason=f"The turn was {self._cancel_reason}; "
            + ("the partial reply is kept." if turn.partial else "nothing had arrived, so nothing is kept."),
        )

    # -- budgets ----------------------------------------------------------------------------

    async def _within_budget(self, turn: RunningTurn, next_input_tokens: int) -> bool:
        if self.budget == Budget():
            return True
        return await approve_spending(
            self.bus, self.budget, self.store.usage("session", session=self.session_id), turn,
            session_id=self.session_id, next_input_tokens=next_input_tokens,
            timeout=self.tools.approval_timeout, display_ids=self.tools.display_ids,
        )

    # -- models, context, state, summaries ---------------------------------------------------

    def _llm_for(self, model: str) -> BaseLLM:
        if model not in self._llms:
            self._llms[model] = get_llm(model, bus=self.bus, **self.llm_options)
        return self._llms[model]

    async def _summarise(self, messages: list[ChatMessage]) -> str:
        prompt = [ChatMessage(role="system", content=_SUMMARY_PROMPT), *self.requests.sendable(messages)]
        return (await self.llm.complete(prompt, bus=self.bus)).text

    def _save_state(self) -> None:
        if self.state is not None and self.session_id:
            self.store.set_engine_state(self.session_id, self.state.model_dump(mode="json"))

    def __repr__(self) -> str:
        return f"<ChatEngine session={self.session_id or '(not started)'} model={self.model!r}>"

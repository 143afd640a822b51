"""The chat engine: a turn loop expressed as commands in and events out.

This is an application pattern, not a framework: the class is small enough
to read in one sitting, to subclass, or to copy and change.  Its handlers
live on the bus, scoped to its session; a front end never calls its
internals, it sends commands (``SendMessage``, ``CancelTurn`` ...) and
renders the events.

A turn: persist the user message; compile the context; stream the model's
reply; if it asks for tools, verify, ask approval, run the approved calls
concurrently and persist calls and results; call the model again; stop at a
final answer or at the step limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from pydantic import BaseModel

from ..bus import MessageBus, Registration
from ..chat import ChatMessage, ToolCall, Usage
from ..messages import use_session
from ..observe.redact import Redactor
from ..context import ContextCompiler
from ..llm import BaseLLM, LLMError, get_llm
from ..llm.base import LLMResponse
from ..store import LLMCall, Store
from ..tools import ApprovalDecision, ApprovalQueue, ToolManager, ToolResult
from ..tools.commands import RequestApproval
from ..tools.events import ApprovalDecided, ToolPermissionChecked, ToolStarted
from .budget import Budget, Overrun
from .commands import CancelTurn, DecideApproval, ForkSession, ResetSession, SendMessage, SwitchModel
from .events import (
    BudgetExceeded,
    ContextCompiled,
    ModelSwitched,
    SessionForked,
    SessionReset,
    StepLimitReached,
    TurnCancelled,
    TurnFailed,
    TurnFinished,
    TurnStarted,
)
from .turn import TurnResult, current_turn_id, install_turn_stamp

__all__ = ["ChatEngine"]

log = logging.getLogger("llmgine_nb.engine")

_SUMMARY_PROMPT = (
    "Summarise the conversation below for your own later reference: keep names, numbers, decisions, "
    "open questions and anything the user asked you to remember. Be brief."
)


class _Turn:
    """The running state of one turn (what a cancellation must keep)."""

    def __init__(self, turn_id: str, model: str) -> None:
        self.id = turn_id
        self.model = model
        self.started = time.perf_counter()
        self.steps = 0
        self.usage = Usage()
        self.cost: float | None = None
        self.partial = ""  # text streamed by the current model call so far
        self.approved_overruns: set[str] = set()

    def add(self, response: LLMResponse) -> None:
        self.usage = self.usage + response.usage
        if response.cost_usd is not None:
            self.cost = (self.cost or 0.0) + response.cost_usd


class ChatEngine:
    """A chat session's engine: history, model, tools, budgets and state.

    ``model`` is a litellm model string, an alias or ``"scripted"``; None
    picks one from the environment (see ``llmgine_nb.llm.get_llm``), or pass
    a ready ``llm``.  ``store`` defaults to an in-memory database.  ``state``
    is a pydantic model class (or instance) for typed per-session variables,
    persisted with the session and visible to tools as ``ctx.state``.
    ``approvals`` is the ``ApprovalQueue`` that ``DecideApproval`` answers.
    ``redactor`` removes known secrets from everything the engine persists
    or reports (default: the API keys in the environment and ``.env``).
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
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1 (one model call per turn)")
        self.bus = bus
        self.store = store if store is not None else Store(":memory:")
        self.tools = tools if tools is not None else ToolManager(bus=bus)
        if self.tools.bus is None:
            self.tools.bus = bus
        self.llm_options = dict(llm_options or {})
        self._llms: dict[str, BaseLLM] = {}
        if llm is not None:
            self._llms[llm.model] = llm
        self.llm = llm or get_llm(model, bus=bus, **self.llm_options)
        self.llm.bus = self.llm.bus or bus
        self._llms[self.llm.model] = self.llm
        self.system_prompt = system_prompt
        self.max_steps = max_steps
        self.budget = budget or Budget()
        self.namespace = namespace
        self.approvals = approvals
        # Secrets (API keys in the environment or .env) never reach the store or the user's screen.
        self.redactor = redactor or Redactor()
        self.compiler = ContextCompiler(
            self.llm.model, budget=context_tokens, summariser=self._summarise, summaries=self.store
        )
        self._state_type = state if isinstance(state, type) else type(state) if state is not None else None
        self.state: BaseModel | None = state if isinstance(state, BaseModel) else None
        self._requested_session = (session_id, session_name, notebook)
        self.session_id = ""
        self.history: list[ChatMessage] = []
        self._registrations: list[Registration] = []
        self._turn_task: asyncio.Task[TurnResult] | None = None
        self._turn: _Turn | None = None

    @property
    def model(self) -> str:
        return self.llm.model

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> ChatEngine:
        """Create or resume the session and put the engine's handlers on the bus."""
        session_id, name, notebook = self._requested_session
        ref = session_id or name
        record = self.store.find_session(ref) if ref else None
        if record is None:
            record = self.store.create_session(name, model=self.model, notebook=notebook, id=session_id)
        self._bind(record.id)
        install_turn_stamp(self.bus)
        return self

    async def close(self) -> None:
        """Cancel a running turn and take the handlers off the bus."""
        await self.cancel()
        self._unbind()

    async def __aenter__(self) -> ChatEngine:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _bind(self, session_id: str) -> None:
        self._unbind()
        loaded = self.store.load_session(session_id)
        self.session_id = session_id
        self.history = list(loaded.messages)
        self._check_pending = bool(loaded.pending_tool_calls)
        self._load_state(loaded.session.engine_state)
        self.tools._state_hook = self._state_for_tools if self.state is not None else self.tools._state_hook
        scoped = {"session_id": session_id}
        self._registrations = [
            self.bus.register_command_handler(SendMessage, self._on_send, **scoped),
            self.bus.register_command_handler(CancelTurn, self._on_cancel, **scoped),
            self.bus.register_command_handler(DecideApproval, self._on_decide, **scoped),
            self.bus.register_command_handler(SwitchModel, self._on_switch_model, **scoped),
            self.bus.register_command_handler(ResetSession, self._on_reset, **scoped),
            self.bus.register_command_handler(ForkSession, self._on_fork, **scoped),
            # Persist before render: these run before any front end's subscribers.
            self.bus.subscribe(ApprovalDecided, self._persist_decision, priority=100, **scoped),
            self.bus.subscribe(ToolStarted, self._persist_tool_start, priority=100, **scoped),
            self.bus.subscribe(ToolPermissionChecked, self._persist_permission_denial, priority=100, **scoped),
        ]

    def _unbind(self) -> None:
        for registration in self._registrations:
            registration.unregister()
        self._registrations = []

    # -- the Python API (each method is one command on the bus) -----------------

    async def send(self, text: str, **options: Any) -> TurnResult:
        """Run a turn: ``await engine.send("hello", model=..., response_model=...)``."""
        result = await self.bus.execute(SendMessage(session_id=self.session_id, text=text, **options))
        return result.unwrap()

    async def cancel(self, reason: str = "cancelled by the user") -> bool:
        """Cancel the running turn, if any; True if one was running."""
        result = await self.bus.execute(CancelTurn(session_id=self.session_id, reason=reason))
        return bool(result.result)

    async def retry(self) -> TurnResult:
        """Run the last user message again (after a failed or cancelled turn)."""
        return await self._start_turn(SendMessage(session_id=self.session_id, text=""), retry=True)

    async def switch_model(self, model: str) -> str:
        return (await self.bus.execute(SwitchModel(session_id=self.session_id, model=model))).unwrap()

    @property
    def pending_tool_calls(self) -> list[Any]:
        """Tool calls requested before a restart and never decided (asked again on the next turn)."""
        return self.store.pending_tool_calls(self.session_id)

    # -- command handlers ----------------------------------------------------------

    async def _on_send(self, command: SendMessage) -> TurnResult:
        return await self._start_turn(command)

    async def _start_turn(self, command: SendMessage, *, retry: bool = False) -> TurnResult:
        if self._turn_task is not None and not self._turn_task.done():
            raise RuntimeError("a turn is already running in this session; wait for it or cancel it first")
        self._turn_task = asyncio.ensure_future(self._run_turn(command, retry=retry))
        try:
            return await asyncio.shield(self._turn_task)
        except asyncio.CancelledError:
            # Whoever awaited us was cancelled (e.g. a kernel interrupt): stop the turn too.
            self._turn_task.cancel()
            await asyncio.gather(self._turn_task, return_exceptions=True)
            raise

    async def _on_cancel(self, command: CancelTurn) -> bool:
        task = self._turn_task
        if task is None or task.done():
            return False
        self._cancel_reason = command.reason
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def _on_decide(self, command: DecideApproval) -> bool:
        """Answer a pending approval through whichever queue front end holds it."""
        decision = ApprovalDecision(
            kind=command.decision,
            message=command.message,
            arguments=command.arguments if command.decision == "edit" else None,
        )
        if self.approvals is None:
            raise RuntimeError(
                "this engine has no approval queue to answer; create it with "
                "ChatEngine(..., approvals=ApprovalQueue().attach(bus))"
            )
        self.approvals.decide(command.call_id, decision)
        return True

    async def _on_switch_model(self, command: SwitchModel) -> str:
        previous = self.model
        self.llm = self._llm_for(command.model)
        self.compiler.model = self.llm.model
        await self.bus.publish(ModelSwitched(session_id=self.session_id, model=self.model, previous=previous))
        return self.model

    async def _on_reset(self, command: ResetSession) -> str:
        old = self.session_id
        record = self.store.create_session(model=self.model)
        self._bind(record.id)
        await self.bus.publish(SessionReset(session_id=old, metadata={"new_session_id": record.id}))
        return record.id

    async def _on_fork(self, command: ForkSession) -> str:
        at = command.at_message_id or (self.history[-1].id if self.history else None)
        if at is None:
            raise ValueError("this session has no messages yet; there is nothing to fork")
        old = self.session_id
        record = self.store.fork_session(old, at, name=command.name)
        self._bind(record.id)
        await self.bus.publish(SessionForked(session_id=old, new_session_id=record.id, at_message_id=at))
        return record.id

    # -- the turn ---------------------------------------------------------------------

    async def _run_turn(self, command: SendMessage, *, retry: bool) -> TurnResult:
        llm = self._llm_for(command.model) if command.model else self.llm
        turn = self._turn = _Turn(uuid.uuid4().hex, llm.model)
        self._cancel_reason = "cancelled by the user"
        turn_token = current_turn_id.set(turn.id)
        try:
            # Every event of the turn - ours, the model's, the tools' - belongs to this session.
            with use_session(self.session_id):
                return await self._run_turn_in_session(turn, llm, command, retry)
        finally:
            current_turn_id.reset(turn_token)
            self._turn = None
            self._save_state()

    async def _run_turn_in_session(self, turn: _Turn, llm: BaseLLM, command: SendMessage, retry: bool) -> TurnResult:
        try:
            user = self._user_message(command, retry)
            await self.bus.publish(
                TurnStarted(
                    session_id=self.session_id, turn_id=turn.id, text=user.content or "", model=llm.model,
                    user_message_id=user.id,
                )
            )
            await self._answer_pending_calls()
            return await self._loop(turn, llm, command)
        except asyncio.CancelledError:
            return await self._cancelled(turn)
        except LLMError as exc:
            return await self._failed(turn, exc.kind, f"{exc} Your message is kept: retry the turn.", repr(exc))
        except Exception as exc:  # a bug or a broken store: report it, keep the session usable
            log.exception("turn %s failed", turn.id)
            reason = f"The turn failed: {type(exc).__name__}: {exc}. Your message is kept: retry the turn."
            return await self._failed(turn, "internal", reason, repr(exc))

    def _user_message(self, command: SendMessage, retry: bool) -> ChatMessage:
        if retry:
            last_user = next((m for m in reversed(self.history) if m.role == "user"), None)
            if last_user is None:
                raise ValueError("there is no earlier message to retry; send one first")
            return last_user
        if not command.text.strip():
            raise ValueError("the message is empty; type something to send")
        text = self.compiler.expand(command.text, self.namespace)
        return self._append(ChatMessage(role="user", content=text))

    async def _loop(self, turn: _Turn, llm: BaseLLM, command: SendMessage) -> TurnResult:
        tools = self.tools.schemas() if command.use_tools and len(self.tools) else None
        system = command.system if command.system is not None else self.system_prompt
        while turn.steps < self.max_steps:
            turn.steps += 1
            compiled = await self.compiler.compile(
                self.history,
                system=system,
                memory=self.store.memory(self.session_id),
                session_id=self.session_id,
                namespace=self.namespace,
            )
            await self._publish_context(turn, compiled.report)
            if not await self._within_budget(turn, compiled.report.total):
                return await self._failed(
                    turn, "budget", "The budget was reached and more spending was not approved. "
                    "Raise the budget (engine.budget) and retry the turn.", "budget", retryable=True
                )
            if command.response_model is not None:
                return await self._structured(turn, llm, compiled.messages, command.response_model)
            response = await self._stream(turn, llm, compiled.messages, tools)
            assistant = self._append_reply(response)
            if not response.tool_calls:
                return await self._finished(turn, response.text, assistant.id, "complete")
            results = await self.tools.execute(response.tool_calls, session_id=self.session_id)
            self._record_results(results)
        await self.bus.publish(StepLimitReached(session_id=self.session_id, turn_id=turn.id, steps=turn.steps))
        text = (
            f"Stopped after {turn.steps} steps without a final answer (the step limit). "
            "Ask again to continue, or raise max_steps."
        )
        return await self._finished(turn, text, None, "step_limit")

    async def _stream(
        self, turn: _Turn, llm: BaseLLM, messages: list[ChatMessage], tools: list[dict[str, Any]] | None
    ) -> LLMResponse:
        turn.partial = ""
        stream = llm.stream(messages, tools=tools)
        async for delta in stream:
            if delta.kind == "text":
                turn.partial += delta.text
        response = stream.response
        turn.partial = ""
        turn.add(response)
        return response

    async def _structured(
        self, turn: _Turn, llm: BaseLLM, messages: list[ChatMessage], response_model: type[BaseModel]
    ) -> TurnResult:
        value = await llm.structured(messages, response_model)
        text = value.model_dump_json(indent=2)
        assistant = self._append(ChatMessage(role="assistant", content=text, model=llm.model))
        return await self._finished(turn, text, assistant.id, "complete", structured=value)

    async def _answer_pending_calls(self) -> None:
        """Tool calls left undecided (say, by a kernel restart) are asked again before going on.

        Only a session loaded from disk can have them: a live engine answers
        or closes every call it starts, so the check runs once per binding.
        """
        if not self._check_pending:
            return
        self._check_pending = False
        pending = self.store.pending_tool_calls(self.session_id)
        if not pending:
            return
        calls = [record.call for record in pending]
        results = await self.tools.execute(calls, session_id=self.session_id)
        self._record_results(results)
        self.history = self.store.messages(self.session_id)

    # -- how a turn ends ------------------------------------------------------------------

    async def _finished(
        self, turn: _Turn, text: str, message_id: str | None, status: str, structured: BaseModel | None = None
    ) -> TurnResult:
        result = TurnResult(
            turn_id=turn.id, session_id=self.session_id, status=status, text=text, model=turn.model,
            steps=turn.steps, usage=turn.usage, cost_usd=turn.cost,
            latency_s=time.perf_counter() - turn.started, message_id=message_id,
            reason=text if status == "step_limit" else None, structured=structured,
        )
        await self.bus.publish(
            TurnFinished(
                session_id=self.session_id, turn_id=turn.id, text=text, model=turn.model, status=status,
                steps=turn.steps, usage=turn.usage, cost_usd=turn.cost, latency_s=result.latency_s,
                message_id=message_id, structured=structured.model_dump(mode="json") if structured else None,
            )
        )
        return result

    async def _failed(self, turn: _Turn, kind: str, reason: str, error: str, retryable: bool = True) -> TurnResult:
        # Provider errors may echo what was sent, keys included.
        reason, error = self.redactor.text(reason), self.redactor.text(error)
        await self.bus.publish(
            TurnFailed(session_id=self.session_id, turn_id=turn.id, kind=kind, reason=reason, error=error,
                       retryable=retryable)
        )
        return TurnResult(
            turn_id=turn.id, session_id=self.session_id, status="failed", model=turn.model, steps=turn.steps,
            usage=turn.usage, cost_usd=turn.cost, latency_s=time.perf_counter() - turn.started,
            reason=reason, error_kind=kind,
        )

    async def _cancelled(self, turn: _Turn) -> TurnResult:
        message_id = None
        if turn.partial:
            partial = ChatMessage(role="assistant", content=turn.partial, model=turn.model, status="interrupted")
            message_id = self._append(partial).id
        self._close_open_calls()
        await self.bus.publish(
            TurnCancelled(session_id=self.session_id, turn_id=turn.id, partial_text=turn.partial,
                          reason=self._cancel_reason)
        )
        return TurnResult(
            turn_id=turn.id, session_id=self.session_id, status="cancelled", text=turn.partial, model=turn.model,
            steps=turn.steps, usage=turn.usage, cost_usd=turn.cost, latency_s=time.perf_counter() - turn.started,
            message_id=message_id, reason=f"The turn was {self._cancel_reason}; the partial reply is kept.",
        )

    def _close_open_calls(self) -> None:
        """Answer tool calls cut off by a cancellation, so the conversation stays well-formed."""
        answered = {m.tool_call_id for m in self.history if m.role == "tool"}
        last = next((m for m in reversed(self.history) if m.role == "assistant"), None)
        if last is None:
            return
        note = "The user cancelled the turn before this call finished; it may not have run."
        open_calls = [call for call in last.tool_calls if call.id not in answered]
        for call in open_calls:
            self.store.tool_finished(self.session_id, call.id, error=note)
        self._append_all([
            ChatMessage(role="tool", tool_call_id=call.id, name=call.name, status="interrupted", content=note)
            for call in open_calls
        ])

    # -- budgets ----------------------------------------------------------------------------

    async def _within_budget(self, turn: _Turn, next_input_tokens: int) -> bool:
        if self.budget == Budget():
            return True
        totals = self.store.usage("session", session=self.session_id)
        session_tokens = sum(row.total_tokens for row in totals)
        session_cost = sum(row.cost for row in totals)
        overruns = [
            o for o in self.budget.overruns(
                turn_tokens=turn.usage.total_tokens, turn_cost=turn.cost or 0.0,
                session_tokens=session_tokens, session_cost=session_cost, next_input_tokens=next_input_tokens,
            )
            if o.limit not in turn.approved_overruns
        ]
        for overrun in overruns:
            approved = await self._ask_to_spend(turn, overrun)
            await self.bus.publish(
                BudgetExceeded(session_id=self.session_id, turn_id=turn.id, limit=overrun.limit,
                               used=overrun.used, allowed=overrun.allowed, approved=approved)
            )
            if not approved:
                return False
            turn.approved_overruns.add(overrun.limit)
        return True

    async def _ask_to_spend(self, turn: _Turn, overrun: Overrun) -> bool:
        request = RequestApproval(
            session_id=self.session_id, call_id=f"budget-{turn.id[:8]}-{overrun.limit}", tool_name="budget",
            arguments={"limit": overrun.limit, "used": overrun.used, "allowed": overrun.allowed},
            risk="write", reason=f"Over budget: {overrun.sentence()}. Continue anyway?", allow_always=False,
        )
        try:
            result = await asyncio.wait_for(self.bus.execute(request), self.tools.approval_timeout)
        except asyncio.TimeoutError:
            return False  # fail closed
        value = result.result if result.success else None
        try:
            decision = value if isinstance(value, ApprovalDecision) else ApprovalDecision.model_validate(value)
        except Exception:
            return False  # a missing or malformed answer is a "no"
        return decision.kind in ("approve", "always")

    # -- persistence ---------------------------------------------------------------------------

    def _clean(self, message: ChatMessage) -> ChatMessage:
        """The message without known secrets (a pasted key, a tool echoing one)."""
        redact = self.redactor
        texts = [message.content or "", *(call.raw_arguments for call in message.tool_calls)]
        if not any(redact.contains_secret(text) for text in texts):
            return message
        calls = [
            ToolCall.from_raw(call.id, call.name, redact.text(call.raw_arguments)) for call in message.tool_calls
        ]
        content = redact.text(message.content) if message.content else message.content
        return message.model_copy(update={"content": content, "tool_calls": calls})

    def _append(self, message: ChatMessage) -> ChatMessage:
        message = self._clean(message)
        self.store.append_message(self.session_id, message)
        self.history.append(message)
        return message

    def _append_all(self, messages: list[ChatMessage]) -> None:
        if messages:
            messages = [self._clean(message) for message in messages]
            self.store.append_messages(self.session_id, messages)
            self.history.extend(messages)

    def _record_results(self, results: list[ToolResult]) -> None:
        """Outcome, error and duration of each call, then the answers into the conversation."""
        for result in results:
            if result.status in ("ok", "error", "timeout", "invalid"):
                self.store.tool_finished(
                    self.session_id, result.call_id, result=result.content,
                    error=result.content if result.status != "ok" else None, duration_ms=result.duration * 1000,
                )
        self._append_all([result.to_chat_message() for result in results])

    def _append_reply(self, response: LLMResponse) -> ChatMessage:
        """The model's reply and the record of its call, in one transaction."""
        message = self._clean(response.to_message())
        call = LLMCall.from_usage(
            response.model, response.usage, provider=response.provider, cost=response.cost_usd,
            latency_ms=response.latency_s * 1000, ttft_ms=(response.ttft_s or 0) * 1000 or None,
            message_id=message.id, id=response.call_id or None,
        )
        self.store.record_turn(self.session_id, [message], llm_calls=[call])
        self.history.append(message)
        return message

    async def _publish_context(self, turn: _Turn, report: Any) -> None:
        await self.bus.publish(
            ContextCompiled(
                session_id=self.session_id, turn_id=turn.id, total_tokens=report.total, budget_tokens=report.budget,
                parts=dict(report.tokens), dropped_messages=len(report.dropped),
                summarised_messages=len(report.summarised),
            )
        )

    def _persist_decision(self, event: ApprovalDecided) -> None:
        if event.tool_name == "budget":
            return  # a budget question, not a tool call
        try:
            self.store.record_approval(
                self.session_id, event.call_id, "approved" if event.approved else "denied",
                who=event.metadata.get("decided_by") or event.source, edited_arguments=event.arguments,
                reason=event.message or event.reason or None,
            )
        except Exception:  # the call may belong to another engine's history
            log.debug("could not record the decision on %s", event.call_id, exc_info=True)

    def _persist_permission_denial(self, event: ToolPermissionChecked) -> None:
        if not event.granted:
            self.store.record_approval(
                self.session_id, event.call_id, "denied", who="permission check", reason=event.reason or None
            )

    def _persist_tool_start(self, event: ToolStarted) -> None:
        try:
            self.store.tool_started(self.session_id, event.call_id)
        except Exception:
            log.debug("could not mark %s as running", event.call_id, exc_info=True)

    # -- models, state, summaries ---------------------------------------------------------------

    def _llm_for(self, model: str) -> BaseLLM:
        if model not in self._llms:
            self._llms[model] = get_llm(model, bus=self.bus, **self.llm_options)
        return self._llms[model]

    async def _summarise(self, messages: list[ChatMessage]) -> str:
        prompt = [ChatMessage(role="system", content=_SUMMARY_PROMPT), *messages]
        return (await self.llm.complete(prompt)).text

    def _load_state(self, stored: dict[str, Any] | None) -> None:
        if self._state_type is None:
            return
        if stored:
            self.state = self._state_type.model_validate(stored)
        elif self.state is None:
            self.state = self._state_type()

    def _save_state(self) -> None:
        if self.state is not None and self.session_id:
            self.store.set_engine_state(self.session_id, self.state.model_dump(mode="json"))

    def _state_for_tools(self, session_id: str | None) -> Any:
        return _StateView(self.state)

    def __repr__(self) -> str:
        return f"<ChatEngine session={self.session_id or '(not started)'} model={self.model!r}>"


class _StateView(MutableMapping[str, Any]):
    """The engine's typed state as the mapping a tool sees (``ctx.state["tasks"]``).

    Keys are the model's fields; ``.model`` is the pydantic instance itself.
    """

    def __init__(self, model: BaseModel) -> None:
        self.model = model

    def _fields(self) -> list[str]:
        return list(type(self.model).model_fields)

    def __getitem__(self, key: str) -> Any:
        if key not in self._fields():
            raise KeyError(key)
        return getattr(self.model, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._fields():
            raise KeyError(f"{key!r} is not a field of the engine state ({', '.join(self._fields())})")
        setattr(self.model, key, value)

    def __delitem__(self, key: str) -> None:
        raise TypeError("fields of the engine state cannot be deleted; set them to a value instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())

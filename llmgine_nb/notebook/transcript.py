"""What one turn looks like, built from its events: the view model of a live cell.

``Transcript.apply(event)`` folds the events of a turn (engine, LLM and tool
events, all carrying the session id) into an ordered list of blocks - the
model's text, tool calls with their approval, questions, notices - plus the
turn's outcome (usage, cost, latency, failure, cancellation).  It does no
I/O and knows nothing of IPython: ``render.py`` turns it into Markdown and
text, ``live.py`` decides when to show it.  The blocks are ``blocks.py``'s
(re-exported here, where most readers look for them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..chat import Usage
from ..engine.events import BudgetExceeded, StepLimitReached, TurnCancelled, TurnFailed, TurnFinished, TurnStarted
from ..llm.events import (
    LLMCallFailed,
    LLMCallFinished,
    LLMCallStarted,
    LLMFallback,
    LLMNotice,
    LLMRetry,
    LLMTextDelta,
    LLMToolCallDelta,
)
from ..secrets import Redactor
from ..tools.events import (
    ApprovalDecided,
    ApprovalRequested,
    ChoiceRequested,
    ConfirmationRequested,
    QuestionAnswered,
    QuestionExpired,
    ToolArgumentsValidated,
    ToolCallRequested,
    ToolFinished,
    ToolPermissionChecked,
    ToolStarted,
    ToolValidationFailed,
)
from .blocks import Approval, Block, Failure, NoticeBlock, QuestionBlock, TextBlock, ToolBlock, TurnStatus

__all__ = [
    "Approval",
    "Block",
    "NoticeBlock",
    "QuestionBlock",
    "TextBlock",
    "ToolBlock",
    "Transcript",
    "TurnStatus",
]


class Transcript:
    """The blocks and outcome of one turn, folded from its events.

    ``version`` increases with every change, so a renderer can tell whether
    there is anything new to show.
    """

    def __init__(self, prompt: str = "", *, model: str | None = None, redactor: Redactor | None = None) -> None:
        self.prompt = prompt
        #: Removes known secrets from what the turn shows (events are folded in redacted).
        self.redactor = redactor
        self.model = model or ""
        self.turn_id: str | None = None
        self.blocks: list[Block] = []
        self.status: TurnStatus = "waiting"
        self.usage = Usage()
        self.cost_usd: float | None = 0.0
        self.cost_known = True
        self.latency_s: float | None = None
        self.models: list[str] = []
        self.failure: Failure | None = None
        self.cancel_reason: str | None = None
        self.structured: Any = None
        self.message_id: str | None = None
        self.provenance: dict[str, Any] = {}  # what TurnFinished says of how the answer was made
        self.steps = 0
        #: The variable ``-o NAME`` sets to the answer; a turn that fails or stops says it was not set.
        self.out: str | None = None
        self.started = time.perf_counter()
        self.version = 0
        self._text: dict[str, TextBlock] = {}
        self._last_text: TextBlock | None = None
        self._tools: dict[str, ToolBlock] = {}
        self._pending_tool_index: dict[tuple[str, int], ToolBlock] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            LLMTextDelta: self._text_delta,
            LLMCallStarted: self._call_started,
            LLMCallFinished: self._call_finished,
            LLMCallFailed: self._call_failed,
            LLMToolCallDelta: self._tool_delta,
            LLMRetry: self._retry,
            LLMFallback: self._fallback,
            LLMNotice: self._llm_notice,
            TurnStarted: self._turn_started,
            TurnFinished: self._turn_finished,
            TurnFailed: self._turn_failed,
            TurnCancelled: self._turn_cancelled,
            StepLimitReached: self._step_limit,
            BudgetExceeded: self._budget,
            ToolCallRequested: self._tool_requested,
            ToolArgumentsValidated: self._tool_validated,
            ToolValidationFailed: self._tool_invalid,
            ToolPermissionChecked: self._tool_permission,
            ApprovalRequested: self._approval_requested,
            ApprovalDecided: self._approval_decided,
            ConfirmationRequested: self._question_asked,
            ChoiceRequested: self._question_asked,
            QuestionAnswered: self._question_answered,
            QuestionExpired: self._question_expired,
            ToolStarted: self._tool_started,
            ToolFinished: self._tool_finished,
        }

    # -- reading -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.status in ("complete", "step_limit", "failed", "cancelled")

    @property
    def text(self) -> str:
        """The model's text of the whole turn (every call's text, in order)."""
        return "\n\n".join(b.text for b in self.blocks if isinstance(b, TextBlock) and b.text)

    @property
    def final_text(self) -> str:
        """The text of the last model call: the answer."""
        for block in reversed(self.blocks):
            if isinstance(block, TextBlock) and block.text:
                return block.text
        return ""

    def tool(self, call_id: str) -> ToolBlock | None:
        return self._tools.get(call_id)

    def pending_approvals(self) -> list[ToolBlock]:
        return [b for b in self.blocks if isinstance(b, ToolBlock) and b.approval and b.approval.pending]

    def pending_questions(self) -> list[QuestionBlock]:
        return [b for b in self.blocks if isinstance(b, QuestionBlock) and not b.answered]

    # -- folding events ------------------------------------------------------

    def apply(self, event: Any) -> bool:
        """Fold one event in; returns whether the transcript changed."""
        handler = self._handlers.get(type(event))
        if handler is None:
            for klass in type(event).__mro__[1:]:
                handler = self._handlers.get(klass)
                if handler is not None:
                    break
            else:
                return False
        if self.redactor is not None and handler != self._text_delta:
            # A secret in a tool's result, an argument or an error must not reach the cell's
            # output; streamed deltas are cheap to skip here and are redacted when shown.
            redacted = self.redactor.message(event)
            if type(redacted) is not type(event):  # could not be redacted as its class: show nothing of it
                return False
            event = redacted
        handler(event)
        self.version += 1
        return True

    def redact(self, text: str) -> str:
        """``text`` without known secrets (as it is when there is no redactor)."""
        return self.redactor.text(text) if self.redactor is not None and text else text

    def add_question(self, question: QuestionBlock) -> None:
        question.question = self.redact(question.question)
        self.blocks.append(question)
        self.version += 1

    def answer_question(self, request_id: str, answer: Any, by: str | None) -> QuestionBlock | None:
        for block in self.blocks:
            if isinstance(block, QuestionBlock) and block.request_id == request_id:
                block.answered, block.answer, block.answered_by = True, answer, by
                self.version += 1
                return block
        return None

    def ask_approval(self, request: Any) -> ToolBlock:
        """Show a ``RequestApproval`` (the event may have come first; budget questions have none)."""
        if self.redactor is not None:
            redacted = self.redactor.message(request)
            if type(redacted) is type(request):
                request = redacted
            else:  # a secret inside a field of fixed format: show the request without its details
                request = request.model_copy(update={"arguments": {}, "preview": None, "reason": ""})
        block = self._tool_block(request.call_id, request.tool_name)
        approval = block.approval
        if approval is None:
            approval = block.approval = Approval(risk=request.risk, reason=request.reason, preview=request.preview)
            block.arguments = dict(request.arguments)
            block.state = "awaiting approval"
        approval.description = request.description
        approval.permissions = list(request.permissions)
        approval.allow_always = request.allow_always
        self.version += 1
        return block

    def note_decision(self, call_id: str, decision: Any, who: str) -> None:
        """Record who decided (the event says what, not who) and show the decision at once.

        The tool layer's ``ApprovalDecided`` event, when it comes, has the
        last word (an edit may still turn out invalid).
        """
        block = self._tools.get(call_id)
        if block is None or block.approval is None:
            return
        approval = block.approval
        approval.decided_by = who
        if approval.pending:
            approval.decision = decision.kind
            approval.approved = decision.kind != "deny"
            approval.message = decision.message
            approval.edited_arguments = decision.arguments
            approval.decided_at = datetime.now().astimezone()
            block.state = "denied" if decision.kind == "deny" else "approved"
        self.version += 1

    def mark_running(self) -> None:
        if self.status == "waiting":
            self.status = "running"
            self.version += 1

    def fail_locally(self, kind: str, reason: str, error: str = "") -> None:
        """End the turn on an error that happened outside the engine (e.g. it could not start)."""
        self.failure = Failure(kind, self.redact(reason), self.redact(error))
        self.status = "failed"
        self._interrupt_open_text()
        self._out_not_set()
        self.version += 1

    # text

    def add_text(self, call_id: str, model: str, text: str) -> TextBlock:
        """A streamed piece of a call's text (``LLMTextDelta``, without the dispatch); the block it went to."""
        block = self._last_text
        if block is None or block.call_id != call_id:
            block = self._text.get(call_id) or self._new_text(call_id, model)
            self._last_text = block
        block.parts.append(text)
        self.version += 1
        return block

    def _text_delta(self, event: LLMTextDelta) -> None:
        self.add_text(event.call_id, event.model, event.text)
        self.version -= 1  # apply() counts the change

    def _new_text(self, call_id: str, model: str) -> TextBlock:
        block = TextBlock(call_id, model)
        self._text[call_id] = block
        self.blocks.append(block)
        return block

    def _call_started(self, event: LLMCallStarted) -> None:
        self.status = "running"
        self.steps += 1
        if event.model and event.model not in self.models:
            self.models.append(event.model)
        self.model = self.model or event.model

    def _call_finished(self, event: LLMCallFinished) -> None:
        block = self._text.get(event.call_id)
        if event.text:
            if block is None:
                block = self._new_text(event.call_id, event.model)
            block.final = event.text
        if block is not None and event.finish_reason == "interrupted":
            block.interrupted = True
        self.usage = self.usage + event.usage
        if event.cost_usd is None:
            self.cost_known = False
        elif self.cost_usd is not None:
            self.cost_usd += event.cost_usd
        if event.model and event.model not in self.models:
            self.models.append(event.model)

    def _call_failed(self, event: LLMCallFailed) -> None:
        if event.will_retry:
            self.blocks.append(NoticeBlock(f"{event.model}: {event.message} - trying again.", "warning"))

    def _retry(self, event: LLMRetry) -> None:
        self.blocks.append(NoticeBlock(f"Retrying {event.model} (attempt {event.attempt}): {event.message}", "warning"))

    def _fallback(self, event: LLMFallback) -> None:
        self.blocks.append(
            NoticeBlock(f"{event.from_model} failed ({event.message}); falling back to {event.to_model}.", "warning")
        )

    def _llm_notice(self, event: LLMNotice) -> None:
        self.blocks.append(NoticeBlock(event.message))

    # tools

    def _tool_delta(self, event: LLMToolCallDelta) -> None:
        key = (event.call_id, event.index)
        block = self._pending_tool_index.get(key)
        if block is None:
            call_id = event.tool_call_id or f"{event.call_id}:{event.index}"
            block = ToolBlock(call_id, event.name or "?", state="preparing")
            self._pending_tool_index[key] = block
            self._tools[call_id] = block
            self.blocks.append(block)
        if event.name and block.tool_name == "?":
            block.tool_name = event.name
        block.raw_arguments += event.arguments_delta

    def _tool_block(self, call_id: str, tool_name: str) -> ToolBlock:
        block = self._tools.get(call_id)
        if block is None:
            block = ToolBlock(call_id, tool_name)
            self._tools[call_id] = block
            self.blocks.append(block)
        return block

    def _tool_requested(self, event: ToolCallRequested) -> None:
        block = self._tool_block(event.call_id, event.tool_name)
        block.tool_name = event.tool_name
        block.raw_arguments = event.raw_arguments or block.raw_arguments
        block.state = "requested"

    def _tool_validated(self, event: ToolArgumentsValidated) -> None:
        self._tool_block(event.call_id, event.tool_name).arguments = dict(event.arguments)

    def _tool_invalid(self, event: ToolValidationFailed) -> None:
        block = self._tool_block(event.call_id, event.tool_name)
        block.state, block.error = "invalid", event.error

    def _tool_permission(self, event: ToolPermissionChecked) -> None:
        if not event.granted:
            block = self._tool_block(event.call_id, event.tool_name)
            block.state, block.error = "denied", event.reason

    def _approval_requested(self, event: ApprovalRequested) -> None:
        block = self._tool_block(event.call_id, event.tool_name)
        block.arguments = dict(event.arguments)
        block.state = "awaiting approval"
        block.approval = Approval(
            risk=event.risk, reason=event.reason, preview=event.preview, description=event.description,
            permissions=list(event.permissions), allow_always=event.allow_always, display_id=event.display_id,
            args_hash=event.args_hash,
        )

    def _question_asked(self, event: ConfirmationRequested | ChoiceRequested) -> None:
        if any(isinstance(b, QuestionBlock) and b.request_id == event.question_id for b in self.blocks):
            return
        self.blocks.append(QuestionBlock(
            request_id=event.question_id, question=event.question,
            kind="choice" if isinstance(event, ChoiceRequested) else "confirm",
            options=list(getattr(event, "options", []) or []), call_id=event.call_id, tool_name=event.tool_name,
            display_id=event.display_id,
        ))

    def _question_answered(self, event: QuestionAnswered) -> None:
        self.answer_question(event.question_id, event.answer, event.decided_by)

    def _question_expired(self, event: QuestionExpired) -> None:
        if any(isinstance(b, QuestionBlock) and b.request_id == event.question_id and not b.answered
               for b in self.blocks):
            self.answer_question(event.question_id, None, f"nobody ({event.reason})")

    def _approval_decided(self, event: ApprovalDecided) -> None:
        block = self._tool_block(event.call_id, event.tool_name)
        approval = block.approval or Approval()
        block.approval = approval
        approval.decision = event.decision
        approval.approved = event.approved
        approval.source = event.source
        approval.message = event.message
        approval.edited_arguments = event.arguments
        approval.note = event.reason
        approval.decided_at = event.timestamp
        if event.decided_by:
            approval.decided_by = event.decided_by
        elif approval.decided_by is None and event.source != "handler":
            approval.decided_by = _AUTOMATIC.get(event.source, event.source)
        if not event.approved:
            block.state = "denied"
        else:
            block.state = "approved"
            if event.arguments is not None:
                block.arguments = dict(event.arguments)

    def _tool_started(self, event: ToolStarted) -> None:
        block = self._tool_block(event.call_id, event.tool_name)
        block.state, block.arguments, block.started = "running", dict(event.arguments), time.perf_counter()

    def _tool_finished(self, event: ToolFinished) -> None:
        block = self._tool_block(event.call_id, event.tool_name)
        result = event.result
        block.duration_s = result.duration if result.ran else None
        if result.arguments is not None:
            block.arguments = dict(result.arguments)
        if result.status == "ok":
            block.state, block.result = "ok", result.content
            images = result.value.get("images") if isinstance(result.value, dict) else None
            block.images = [i for i in images if isinstance(i, dict)] if isinstance(images, list) else []
        elif result.status in ("error", "timeout"):
            block.state, block.error = result.status, result.content
        else:  # denied / invalid: the call did not run
            block.state = result.status
            block.error = block.error or result.content

    # the turn

    def _turn_started(self, event: TurnStarted) -> None:
        self.turn_id = event.turn_id
        self.model = event.model or self.model
        self.status = "running"

    def _turn_finished(self, event: TurnFinished) -> None:
        self.status = event.status
        self.usage = event.usage
        if event.cost_usd is not None:
            self.cost_usd, self.cost_known = event.cost_usd, True
        self.latency_s = event.latency_s
        self.model = event.model or self.model
        self.structured = event.structured
        self.message_id = event.message_id
        self.provenance = {"session_id": event.session_id, "request_hash": event.request_hash, "replayed": event.replayed}
        self.steps = max(self.steps, event.steps)
        # The final text is authoritative (e.g. a structured answer); keep what streamed otherwise.
        if event.text and not self.final_text:
            self.blocks.append(TextBlock("final", event.model, final=event.text))

    def _turn_failed(self, event: TurnFailed) -> None:
        self.failure = Failure(event.kind, event.reason, event.error, event.retryable)
        self.status = "failed"
        self._interrupt_open_text()
        self._out_not_set()
        self._close_latency()

    def _turn_cancelled(self, event: TurnCancelled) -> None:
        self.status = "cancelled"
        self.cancel_reason = event.reason or "cancelled"
        if event.partial_text and not self.text:
            self.blocks.append(TextBlock("partial", self.model, final=event.partial_text))
        self._interrupt_open_text()
        self._out_not_set()
        self._close_latency()

    def _out_not_set(self) -> None:
        if self.out:
            why = "was stopped" if self.status == "cancelled" else "failed"
            self.blocks.append(NoticeBlock(
                f"`{self.out}` was not set: the turn {why}, so there is no answer to put in it "
                f"(`{self.out}` is left undefined rather than set to an empty string).", "warning"))

    def _interrupt_open_text(self) -> None:
        for block in reversed(self.blocks):
            if isinstance(block, TextBlock):
                block.interrupted = block.interrupted or bool(block.text)
                break
        for block in self.blocks:
            if isinstance(block, ToolBlock) and block.approval is not None and block.approval.pending:
                block.approval.decision, block.approval.approved = "deny", False
                block.approval.decided_by = "nobody (the turn ended first)"
                block.state = "denied"

    def _close_latency(self) -> None:
        if self.latency_s is None:
            self.latency_s = time.perf_counter() - self.started

    def _step_limit(self, event: StepLimitReached) -> None:
        self.blocks.append(
            NoticeBlock(
                f"Stopped after {event.steps} steps (the step limit). Ask again to let the model continue.", "warning"
            )
        )

    def _budget(self, event: BudgetExceeded) -> None:
        what = event.limit.replace("_", " ")
        verdict = "allowed to continue" if event.approved else "stopped"
        self.blocks.append(
            NoticeBlock(f"Budget {what}: {event.used:g} of {event.allowed:g} used; the turn was {verdict}.", "warning")
        )


_AUTOMATIC = {
    "session": "always-allow for this session",
    "timeout": "nobody in time (timed out)",
    "no_handler": "nobody (no approval front end attached)",
    "handler_error": "nobody (the approval front end failed)",
    "malformed": "nobody (the answer was not a clear decision)",
}

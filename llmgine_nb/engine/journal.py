"""A session's history and everything about it that must reach the store.

The engine says what happened; the journal writes it down, without secrets,
before any front end renders it ("persist before render"): its bus
subscribers run at a higher priority than any renderer's.  One journal per
session binding; ``close()`` takes its subscribers off the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..bus import MessageBus, Registration
from ..chat import ChatMessage, ToolCall
from ..llm.events import LLMCallFailed, LLMCallFinished
from ..messages import Event
from ..secrets import Redactor
from ..store import LLMCall, Store
from ..tools.events import ApprovalDecided, ToolFinished, ToolPermissionChecked, ToolStarted
from .dialog import DialogEdits
from .turn import RunningTurn

__all__ = ["SessionJournal", "PERSIST_FIRST"]

log = logging.getLogger("llmgine_nb.engine")

#: Priority of the journal's subscribers: above every renderer's (default 0).
PERSIST_FIRST = 100


class SessionJournal:
    """The history of one session, kept in memory and on disk in step."""

    def __init__(
        self, bus: MessageBus, store: Store, session_id: str, redactor: Redactor, *,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        """``busy`` says whether a turn is running (the dialog is not edited under a running turn)."""
        self.store = store
        self.session_id = session_id
        self.redactor = redactor
        loaded = store.load_session(session_id)
        self.record = loaded.session
        self.history: list[ChatMessage] = list(loaded.messages)
        self.had_pending_calls = bool(loaded.pending_tool_calls)
        # Model calls not yet written: they go with the next message, in one transaction.
        self._unrecorded_calls: list[LLMCall] = []
        # Inline: quick writes that must land before any renderer (on a later step) sees the event.
        handlers: list[tuple[type[Event], Callable[[Any], None]]] = [
            (ApprovalDecided, self._on_decided),
            (ToolPermissionChecked, self._on_permission),
            (ToolStarted, self._on_tool_started),
            (ToolFinished, self._on_tool_finished),
            (LLMCallFinished, self._on_call_finished),
            (LLMCallFailed, self._on_call_failed),
        ]
        self._registrations: list[Registration] = [
            bus.subscribe(kind, handler, session_id=session_id, priority=PERSIST_FIRST, inline=True)
            for kind, handler in handlers
        ]
        self.edits = DialogEdits(bus, self, busy)  # forget, edit, pin: dialog.py
        self._registrations += self.edits.register()

    def close(self) -> None:
        self.flush_calls()
        for registration in self._registrations:
            registration.unregister()
        self._registrations = []

    # -- messages ---------------------------------------------------------------

    def clean(self, message: ChatMessage) -> ChatMessage:
        """The message without known secrets (a pasted key, a tool echoing one)."""
        redact = self.redactor
        texts = [message.content or "", *(call.raw_arguments for call in message.tool_calls)]
        if not any(redact.contains_secret(text) for text in texts):
            return message
        calls = [ToolCall.from_raw(c.id, c.name, redact.text(c.raw_arguments)) for c in message.tool_calls]
        content = redact.text(message.content) if message.content else message.content
        return message.model_copy(update={"content": content, "tool_calls": calls})

    def append(self, *messages: ChatMessage, replacing: ChatMessage | None = None) -> list[ChatMessage]:
        """Add messages (and any model calls waiting to be written) in one transaction.

        ``replacing`` is a draft (``save_draft``) the first message takes the place of.
        """
        cleaned = [self.clean(message) for message in messages]
        calls, self._unrecorded_calls = self._unrecorded_calls, []
        # The record, not the id: the session is known to exist, no need to look it up on every write.
        self.store.record_turn(
            self.record, cleaned, llm_calls=calls, replacing=replacing.id if replacing is not None else None
        )
        self.history.extend(cleaned)
        return cleaned

    def save_draft(self, draft: ChatMessage | None, text: str, model: str) -> ChatMessage:
        """Put a reply still streaming on disk as it stands (marked interrupted), so a crash keeps it.

        The first call writes the draft, later ones its new text.  It is not
        part of ``history``: the finished reply (or the partial one, when the
        turn is cancelled) replaces it through ``append(..., replacing=draft)``;
        ``discard_draft`` removes it when the turn fails.
        """
        text = self.redactor.text(text)
        # A secret may be arriving split across streamed pieces: hold back a tail as long as the
        # longest known one, so that no beginning of a key reaches the disk (or its WAL).
        text = text[: max(0, len(text) - self.redactor.longest_secret)]
        if draft is None:
            draft = ChatMessage(role="assistant", content=text, model=model, status="interrupted")
            self.store.record_turn(self.record, [draft])
        else:
            self.store.update_message(draft.id, content=text)
        return draft

    def discard_draft(self, draft: ChatMessage) -> None:
        """Remove a draft whose reply never came (best effort: the turn's outcome stands either way)."""
        try:
            self.store.record_turn(self.record, [], replacing=draft.id)
        except Exception:
            log.error("could not remove the draft of an unfinished reply (%s)", draft.id, exc_info=True)

    def keep_partial(self, turn: RunningTurn) -> str | None:
        """Store the text a turn streamed so far as an interrupted reply; its message id (None if there was none)."""
        message_id = None
        if turn.partial:
            partial = ChatMessage(role="assistant", content=turn.partial, model=turn.model, status="interrupted")
            message_id = self.append(partial, replacing=turn.draft)[0].id
        elif turn.draft is not None:
            self.discard_draft(turn.draft)
        turn.draft = None
        return message_id

    def flush_calls(self) -> None:
        """Write model calls that no message took along (a failed or cancelled turn)."""
        if self._unrecorded_calls:
            self.append()

    def last_user_message(self) -> ChatMessage | None:
        return next((m for m in reversed(self.history) if m.role == "user"), None)

    async def forget_the_last_answer(self) -> list[str]:
        """Leave what followed the last user message (a cut turn's replies and tool messages) out of the context.

        For a retry, which runs that message again: the messages stay in the
        store, marked forgotten (as ``ForgetMessage`` marks them), so the
        transcript still shows what happened.
        """
        last_user = next((i for i in range(len(self.history) - 1, -1, -1) if self.history[i].role == "user"), None)
        if last_user is None:
            return []
        return await self.edits.set_forgotten([m.id for m in self.history[last_user + 1 :] if not m.forgotten], True)

    def unanswered_calls(self) -> list[ToolCall]:
        """Tool calls of the last assistant message that have no answer yet."""
        for index in range(len(self.history) - 1, -1, -1):
            message = self.history[index]
            if message.role == "assistant":
                answered = {m.tool_call_id for m in self.history[index + 1 :] if m.role == "tool"}
                return [call for call in message.tool_calls if call.id not in answered]
        return []

    def close_unanswered(self, note: str) -> None:
        """Answer cut-off tool calls with ``note``, so the conversation stays well-formed."""
        open_calls = self.unanswered_calls()
        for call in open_calls:
            self.store.tool_finished(self.session_id, call.id, error=note)
        self.append(*[
            ChatMessage(role="tool", tool_call_id=c.id, name=c.name, status="interrupted", content=note)
            for c in open_calls
        ])

    # -- what the bus tells us ----------------------------------------------------------

    def _on_tool_finished(self, event: ToolFinished) -> None:
        # Written as each call finishes, so a cancel or crash keeps the results of the calls that ran.
        result = event.result
        if result.status in ("ok", "error", "timeout", "invalid"):
            self.store.tool_finished(
                self.session_id, result.call_id, result=self.redactor.text(result.content),
                error=self.redactor.text(result.content) if result.status != "ok" else None,
                duration_ms=result.duration * 1000,
            )
        self.append(result.to_chat_message())

    def _on_tool_started(self, event: ToolStarted) -> None:
        self.store.tool_started(self.session_id, event.call_id)

    def _on_decided(self, event: ApprovalDecided) -> None:
        self.store.record_approval(
            self.session_id, event.call_id, "approved" if event.approved else "denied",
            # A person's name when the decision said who made it, else how it was decided.
            who=event.decided_by or event.source,
            edited_arguments=self.redactor.data(event.arguments) if event.arguments else None,
            reason=self.redactor.text(event.message or event.reason or "") or None,
        )

    def _on_permission(self, event: ToolPermissionChecked) -> None:
        if not event.granted:
            self.store.record_approval(
                self.session_id, event.call_id, "denied", who="permission check", reason=event.reason or None
            )

    def _on_call_finished(self, event: LLMCallFinished) -> None:
        self._unrecorded_calls.append(
            LLMCall.from_usage(
                event.model, event.usage, provider=event.provider, cost=event.cost_usd,
                latency_ms=event.latency_s * 1000, ttft_ms=event.ttft_s * 1000 if event.ttft_s else None,
                id=event.call_id,
            )
        )

    def _on_call_failed(self, event: LLMCallFailed) -> None:
        self._unrecorded_calls.append(
            LLMCall(model=event.model, id=f"{event.call_id}-{event.attempt}",
                    error=self.redactor.text(f"{event.error_kind}: {event.message}"))
        )

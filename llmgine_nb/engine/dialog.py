"""Editing the dialog: forget an exchange, edit a message, pin one - each a command, an event, a stored change.

The session's journal registers these handlers (scoped to its session), so
every front end - the notebook's ``%llmgine forget/edit/pin``, the server, a
test - edits the same way.  Each change is written to the store first, then
to the history in memory (a changed message is a new value: the context
compiler's index sees it and starts again), then announced.  The context
compiler leaves forgotten messages out and keeps pinned ones.

An exchange is a user message and everything up to the next one (the
model's replies, its tool calls and their results), so forgetting never
leaves a tool result without the call it answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..messages import Event
from .commands import EditMessage, ForgetMessage, PinMessage
from .events import MessageEdited, MessagePinned, MessagesForgotten

if TYPE_CHECKING:
    from ..bus import MessageBus, Registration
    from ..chat import ChatMessage
    from ..store import Store

__all__ = ["DialogEdits", "exchange_of"]


def exchange_of(history: list[ChatMessage], index: int) -> range:
    """The positions of the exchange holding ``history[index]``: its user message up to the next one."""
    start = index
    while start > 0 and history[start].role != "user":
        start -= 1
    stop = index + 1
    while stop < len(history) and history[stop].role != "user":
        stop += 1
    return range(start, stop)


class Journal(Protocol):
    """What the edits use of a ``SessionJournal``: its session, store, history and redaction."""

    session_id: str
    store: Store
    history: list[ChatMessage]

    def clean(self, message: ChatMessage) -> ChatMessage: ...


class DialogEdits:
    """The handlers of ``ForgetMessage``, ``EditMessage`` and ``PinMessage`` for one session's journal."""

    def __init__(self, bus: MessageBus, journal: Journal, busy: Callable[[], bool] | None = None) -> None:
        self.bus = bus
        self.journal = journal
        self.busy = busy or (lambda: False)

    def register(self) -> list[Registration]:
        scoped = {"session_id": self.journal.session_id}
        return [
            self.bus.register_command_handler(ForgetMessage, self._on_forget, **scoped),
            self.bus.register_command_handler(EditMessage, self._on_edit, **scoped),
            self.bus.register_command_handler(PinMessage, self._on_pin, **scoped),
        ]

    async def _on_forget(self, command: ForgetMessage) -> list[str]:
        index = self._find(command.message_id, "forget a message")
        history = self.journal.history
        changed = [history[i].id for i in exchange_of(history, index) if history[i].forgotten != command.forgotten]
        return await self.set_forgotten(changed, command.forgotten)

    async def set_forgotten(self, message_ids: list[str], forgotten: bool) -> list[str]:
        """Mark these messages forgotten (or not): in the store, then the history, then announced."""
        if not message_ids:
            return []
        with self.journal.store.transaction():
            for message_id in message_ids:
                self._change(message_id, forgotten=forgotten)
        await self._announce(MessagesForgotten(session_id=self.journal.session_id, message_ids=message_ids, forgotten=forgotten))
        return message_ids

    async def _on_edit(self, command: EditMessage) -> str:
        index = self._find(command.message_id, "edit a message")
        if not command.text.strip():
            raise ValueError("the new text is empty; to leave the message out, forget it instead")
        message = self.journal.history[index]
        text = self.journal.clean(message.model_copy(update={"content": command.text})).content or ""
        self._change(message.id, content=text)
        await self._announce(MessageEdited(session_id=self.journal.session_id, message_id=message.id, text=text, previous=message.content or ""))
        return message.id

    async def _on_pin(self, command: PinMessage) -> str:
        message = self.journal.history[self._find(command.message_id, "pin a message")]
        self._change(message.id, pinned=command.pinned)
        await self._announce(MessagePinned(session_id=self.journal.session_id, message_id=message.id, pinned=command.pinned))
        return message.id

    # -- pieces -----------------------------------------------------------------------

    def _find(self, ref: str, what: str) -> int:
        if self.busy():
            raise RuntimeError(f"a turn is running in this session; wait for it or cancel it before you {what}")
        ref = ref.strip()
        found = [i for i, m in enumerate(self.journal.history) if m.id == ref]
        if not found and len(ref) >= 4:
            found = [i for i, m in enumerate(self.journal.history) if m.id.startswith(ref)]
        if len(found) != 1:
            problem = "is no message" if not found else "matches several messages"
            raise LookupError(f"{ref!r} {problem} of this session; the session's history shows the ids")
        return found[0]

    def _change(self, message_id: str, **changes: Any) -> None:
        stored = self.journal.store.update_message(message_id, **changes)
        history = self.journal.history
        for i, message in enumerate(history):
            if message.id == message_id:
                history[i] = message.model_copy(update={k: getattr(stored, k) for k in changes})

    async def _announce(self, event: Event) -> None:
        await self.bus.publish(event)

"""A whole turn in one transaction: its messages, model calls and events together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..chat import ChatMessage
from . import events, llm_calls, messages
from .database import Connection
from .records import LLMCall

__all__ = ["record_turn"]


def record_turn(
    conn: Connection,
    session_id: str,
    new_messages: list[ChatMessage],
    calls: Sequence[LLMCall],
    event_rows: Sequence[tuple[Any, ...]],
    replacing: str | None,
) -> list[int]:
    """Write a turn inside the caller's transaction; return the messages' positions.

    ``replacing`` names a message of the session (the draft of a reply still
    streaming) to delete first, so the reply takes its place rather than following it.
    """
    if replacing is not None:
        # Usually the session's last message; if another writer added one since, the
        # reply still replaces the draft (it then leaves a gap in the positions).
        messages.delete_in_session(conn, replacing, session_id)
    positions = messages.append(conn, session_id, new_messages)
    if calls:
        llm_calls.insert(conn, [llm_calls.row(call, session_id) for call in calls])
    if event_rows:
        events.insert(conn, event_rows)
    return positions

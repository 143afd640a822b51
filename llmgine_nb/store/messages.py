"""Messages: append in order (with the tool calls they request or answer), load, change.

Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL), on session ids (the ``Store``
facade resolves names and holds the lock and the transaction).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import from_json

from ..chat import ChatMessage, ToolCall
from ..text import clean_value
from . import search, tool_calls
from .database import Connection, integrity_errors, new_id, serialise_session
from .records import SessionNotFound, StoreError
from .rows import utc_text

__all__ = ["MESSAGE_COLUMNS", "message_row", "messages_from_rows", "append", "load", "get", "update"]

#: The columns every message SELECT reads, by these names (see ``messages_from_rows``).
#: ``tool_calls`` and ``images`` come last so that a row without either is read by the other names alone.
_NAMES = ("id", "role", "content", "tool_call_id", "name", "model", "status", "pinned", "forgotten", "created", "tool_calls",
          "images")
_PLAIN = _NAMES[:-2]
MESSAGE_COLUMNS = ", ".join(_NAMES)

_INSERT = (
    "INSERT INTO messages (id, session_id, seq, role, content, tool_calls, tool_call_id, name, model, "
    "status, pinned, created, images, forgotten) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def images_json(message: ChatMessage) -> str | None:
    """The ``images`` column: the message's image references (never their bytes), or NULL."""
    if not message.images:
        return None
    return json.dumps([image.model_dump(mode="json", exclude_none=True) for image in message.images],
                      separators=(",", ":"))


def tool_calls_json(calls: list[ToolCall]) -> str | None:
    if not calls:
        return None
    return json.dumps(
        [{"id": c.id, "name": c.name, "arguments": c.raw_arguments} for c in calls],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def message_row(message: ChatMessage, session_id: str, seq: int) -> tuple[Any, ...]:
    """Values for ``_INSERT``: (id, session_id, seq, role, content, tool_calls, tool_call_id,
    name, model, status, pinned, created, images, forgotten)."""
    return (
        message.id,
        session_id,
        seq,
        message.role,
        message.content,
        tool_calls_json(message.tool_calls),
        message.tool_call_id,
        message.name,
        message.model,
        message.status,
        1 if message.pinned else 0,
        utc_text(message.created),
        images_json(message),
        1 if message.forgotten else 0,
    )


def _parsed(text: str) -> Any:
    """JSON text, parsed by pydantic's JSON parser (several times faster than ``json`` on these
    small texts).  What it refuses (a lone surrogate's escape, say) ``json`` reads, and the text
    is cleaned as ``ToolCall.from_raw`` cleans it; what neither reads raises ``ValueError``."""
    try:
        return from_json(text)
    except ValueError:
        return clean_value(json.loads(text))


def _tool_call_fields(text: str | None) -> list[dict[str, Any]]:
    """The ``tool_calls`` column as ToolCall fields (raw arguments kept, parsed ones rebuilt)."""
    if not text:
        return []
    calls = []
    for item in _parsed(text):
        raw = item.get("arguments") or "{}"
        try:
            parsed = _parsed(raw)
        except ValueError:
            parsed = None
        calls.append(
            {"id": item["id"], "name": item["name"], "raw_arguments": raw, "arguments": parsed if isinstance(parsed, dict) else None}
        )
    return calls


def tool_calls_from_json(text: str | None) -> list[ToolCall]:
    """ToolCalls from the ``tool_calls`` column."""
    return [ToolCall.model_validate(fields) for fields in _tool_call_fields(text)]


#: One validation for a whole list: pydantic's loop runs in compiled code, not ours.
_MESSAGES = TypeAdapter(list[ChatMessage])


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a load builds its messages.

    A load of 10,000 messages makes about 50,000 new container objects, none of
    them in a reference cycle; each 700 allocations the collector would scan the
    young ones again (about 85 passes a load, a quarter of its time, measured with
    valgrind).  Reference counting still frees everything as usual.  The collector
    is switched back on only if it was on, so a program that turned it off keeps
    it off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def messages_from_rows(selected: Sequence[Sequence[Any]]) -> list[ChatMessage]:
    """ChatMessages from rows selected as ``MESSAGE_COLUMNS``, read by column name.

    Every message is validated by pydantic, through one public ``TypeAdapter``
    for the whole list: pydantic turns the 0/1 flags into bools and the ISO
    ``created`` text into a datetime in compiled code.  The rows become dicts
    of their plain columns without a Python loop (``map``, ``zip`` and
    ``dict`` run in C); only the few rows with tool calls or images are read
    again in Python.  This keeps ``session_load`` (``benchmarks/bench_store.py``)
    within three times a plain SELECT of the same rows, with the garbage
    collector paused for a large load (``_collector_paused``).
    """
    if len(selected) < 1_000:  # a small load makes too few objects for the collector to matter
        return _messages_from_rows(selected)
    with _collector_paused():
        return _messages_from_rows(selected)


def _messages_from_rows(selected: Sequence[Sequence[Any]]) -> list[ChatMessage]:
    fields = list(map(dict, map(zip, repeat(_PLAIN), selected)))
    for i in [i for i, row in enumerate(selected) if row[-1] is not None or row[-2] is not None]:
        message = fields[i]
        message["tool_calls"] = _tool_call_fields(selected[i][-2])
        images = selected[i][-1]
        message["images"] = _parsed(images) if images else []
    return _MESSAGES.validate_python(fields)


def append(conn: Connection, session_id: str, messages: list[ChatMessage]) -> list[int]:
    """Add messages at the end of the session; return their positions (0-based).

    An assistant message's tool calls are recorded as requested; a tool
    message completes the call it answers.
    """
    serialise_session(conn, session_id)
    (last,) = conn.execute("SELECT max(seq) FROM messages WHERE session_id = ?", (session_id,)).fetchone()
    seq = -1 if last is None else last
    positions = []
    for message in messages:
        if not isinstance(message, ChatMessage):
            raise TypeError(
                f"the store keeps llmgine_nb.chat.ChatMessage objects, not {type(message).__name__}; "
                "build one with ChatMessage(role=..., content=...) or ChatMessage.from_openai(...)"
            )
        seq += 1
        row = message_row(message, session_id, seq)
        try:
            conn.execute(_INSERT, row)
        except integrity_errors() as exc:
            if "foreign key" in str(exc).lower():  # a SessionRecord whose session was deleted meanwhile
                raise SessionNotFound(
                    f"session {session_id!r} no longer exists (deleted by another notebook or process?); "
                    "start a new session"
                ) from exc
            raise StoreError(
                f"message {message.id!r} is already stored; append a new ChatMessage, "
                "or change the stored one with Store.update_message()"
            ) from exc
        positions.append(seq)
        created = row[11]
        if message.tool_calls:
            tool_calls.record_requested(conn, session_id, message.id, message.tool_calls, created, new_id)
        if message.role == "tool" and message.tool_call_id:
            tool_calls.complete(conn, session_id, message.tool_call_id, message.id, message.content, created)
    if messages:
        search.index_pending_if_due(conn)
    return positions


def load(conn: Connection, session_id: str, last: int | None = None) -> list[ChatMessage]:
    """The session's messages in order (only the ``last`` N when given)."""
    if last is None:
        return messages_from_rows(
            conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)).fetchall()
        )
    selected = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq DESC LIMIT ?", (session_id, last)
    ).fetchall()
    selected.reverse()
    return messages_from_rows(selected)


def get(conn: Connection, message_id: str) -> ChatMessage:
    selected = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchall()
    if not selected:
        raise StoreError(f"no stored message has the id {message_id!r}")
    return messages_from_rows(selected)[0]


def changes(given: dict[str, Any]) -> dict[str, Any]:
    """Column values for ``update`` from ``Store.update_message``'s arguments (those given)."""
    if "status" in given and given["status"] not in ("complete", "interrupted"):
        raise ValueError(f"status must be 'complete' or 'interrupted', not {given['status']!r}")
    for flag in ("pinned", "forgotten"):
        if flag in given:
            given = {**given, flag: 1 if given[flag] else 0}
    return given


def update(conn: Connection, message_id: str, changes: dict[str, Any]) -> None:
    """Set the given columns of a stored message."""
    assignments = ", ".join(f"{column} = ?" for column in changes)
    cursor = conn.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*changes.values(), message_id))
    if cursor.rowcount == 0:
        raise StoreError(f"no stored message has the id {message_id!r}")


def delete_in_session(conn: Connection, message_id: str, session_id: str) -> None:
    conn.execute("DELETE FROM messages WHERE id = ? AND session_id = ?", (message_id, session_id))

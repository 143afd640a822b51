"""What a tool call produced, as the model and the rest of the system see it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_core import PydanticSerializationError, to_jsonable_python

from llmgine_nb.frozen import FrozenModel

from ..chat import ChatMessage

__all__ = ["ToolResult", "ToolStatus", "ToolError", "ToolOutput", "describe_binary", "jsonable", "to_content", "truncate"]

ToolStatus = Literal["ok", "error", "denied", "invalid", "timeout"]


class ToolError(Exception):
    """Raise inside a tool to send ``message`` to the model as it is.

    Other exceptions reach the model as ``"Error: <Type>: <message>"``; a
    ``ToolError`` is for errors written for the model ("no task with id 7;
    list_tasks shows the ids").  ``value`` is kept as the structured value.
    """

    def __init__(self, message: str, *, value: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.value = value


class ToolOutput:
    """Return this from a tool to choose the text the model reads separately from the value kept.

    ``ToolOutput(content="3 tasks: ...", value=[...])``: the model gets
    ``content``; ``ToolResult.value`` (and events, storage) get ``value``.
    """

    __slots__ = ("content", "value")

    def __init__(self, content: str, value: Any = None) -> None:
        self.content = content
        self.value = value

    def __repr__(self) -> str:
        return f"ToolOutput(content={self.content!r}, value={self.value!r})"


class ToolResult(FrozenModel):
    """The outcome of one tool call.

    ``content`` is the text sent back to the model; ``value`` the tool's
    return value in JSON form, when it had one.  ``status`` says how the call
    ended: ``ok``; ``error`` (the tool raised); ``invalid`` (unknown tool or
    arguments that do not fit, the tool did not run); ``denied`` (permission
    missing or approval not given, the tool did not run); ``timeout``.
    """

    call_id: str
    tool_name: str
    content: str
    status: ToolStatus = "ok"
    is_error: bool = False
    duration: float = 0.0  # seconds the tool itself ran (0 when it did not run)
    value: Any = None
    arguments: dict[str, Any] | None = None  # the arguments it ran with (after any edit)
    truncated_chars: int = 0  # how many characters of content were cut
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def ran(self) -> bool:
        """Whether the tool's code was actually executed."""
        return self.status in ("ok", "error", "timeout")

    def to_chat_message(self) -> ChatMessage:
        """The ``role="tool"`` message that answers the call in the conversation."""
        return ChatMessage(role="tool", content=self.content, tool_call_id=self.call_id, name=self.tool_name)

    def to_openai(self) -> dict[str, Any]:
        return self.to_chat_message().to_openai()


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: pydantic models, dataclasses, enums, dates, bytes ...

    Bytes that are UTF-8 text become that text; other bytes a short
    description with their length (``describe_binary``), never an error: a
    tool that ran and returned them succeeded, and must not be called again.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        return to_jsonable_python(value, fallback=str)
    except (UnicodeDecodeError, PydanticSerializationError):
        return to_jsonable_python(_text_for_binary(value), fallback=str)


def describe_binary(data: bytes | bytearray | memoryview) -> str:
    """Bytes as text: decoded when they are UTF-8, else their length and first bytes in hex."""
    raw = bytes(data)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        more = "..." if len(raw) > 16 else ""
        return f"<{len(raw):,} bytes of binary data, not UTF-8 text: {raw[:16].hex(' ')}{more}>"


def _text_for_binary(value: Any) -> Any:
    """``value`` with every bytes object in it (in containers, models, dataclasses) described as text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return describe_binary(value)
    if isinstance(value, BaseModel):
        value = value.model_dump()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {_text_for_binary(k): _text_for_binary(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_text_for_binary(item) for item in value]
    return value


def to_content(value: Any) -> tuple[str, Any]:
    """Text for the model and the JSON form of a tool's return value.

    Strings go as they are; everything else as compact JSON; a
    ``ToolOutput`` gives both explicitly.
    """
    if isinstance(value, ToolOutput):
        return value.content, jsonable(value.value)
    if isinstance(value, str):
        return value, value
    data = jsonable(value)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str), data


def truncate(text: str, limit: int | None) -> tuple[str, int]:
    """Cut ``text`` to about ``limit`` characters, ending with a note of how much was cut."""
    if limit is None or len(text) <= limit:
        return text, 0
    cut = len(text) - limit
    note = (
        f"\n[... truncated: {cut} of {len(text)} characters were cut. "
        "Ask for a smaller part (filter, page or summarise) if you need the rest.]"
    )
    return text[:limit] + note, cut

"""The shapes of a conversation shared by every layer: messages, tool calls, usage.

The LLM layer sends and receives these, the context compiler arranges them,
the store persists them and the engine moves them along.  They convert to
and from the OpenAI chat format, which litellm speaks for every provider.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmgine_nb.frozen import FrozenModel

from .text import clean_text, clean_value

__all__ = ["ToolCall", "ChatMessage", "ImageRef", "Usage", "Role", "MessageStatus", "IMAGE_URL_SCHEME"]

Role = Literal["system", "user", "assistant", "tool"]
MessageStatus = Literal["complete", "interrupted"]


def _new_id() -> str:
    return uuid.uuid4().hex


class ToolCall(FrozenModel):
    """A model's request to call a tool.

    ``arguments`` is the parsed JSON object, or None when ``raw_arguments``
    is not valid JSON (the tool layer then reports that back to the model).
    """

    id: str
    name: str
    raw_arguments: str = "{}"
    arguments: dict[str, Any] | None = None

    @classmethod
    def from_raw(cls, id: str, name: str, raw_arguments: str | None) -> ToolCall:
        raw = clean_text(raw_arguments) if raw_arguments else "{}"
        try:
            parsed = clean_value(json.loads(raw))  # a JSON escape can still make a lone surrogate
        except (TypeError, ValueError):
            parsed = None
        return cls(id=id, name=name, raw_arguments=raw, arguments=parsed if isinstance(parsed, dict) else None)

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.raw_arguments}}


#: How an image whose bytes are not at hand is named in a request (hashing it, showing it):
#: its content address, never its bytes.
IMAGE_URL_SCHEME = "llmgine-image:sha256:"


class ImageRef(FrozenModel):
    """An image in a message, as data: its content address (sha256), format, size and label.

    The bytes live in the store (``Store.put_image``), once per hash.  ``data``
    holds them only on the way to a model (``Store.with_image_data``): it is
    excluded from every dump, so an event, a record or a wire never carries them.
    """

    sha256: str
    mime: str
    size: int  # bytes
    width: int = 0
    height: int = 0
    label: str | None = None  # where it came from: a variable's name, a path, Out[3]
    data: bytes | None = Field(default=None, exclude=True, repr=False)

    @property
    def format(self) -> str:
        """PNG, JPEG, GIF or WEBP."""
        return self.mime.rpartition("/")[2].upper()

    def describe(self) -> str:
        """``PNG 640x480, 12.3 kB`` (with its label in front when it has one)."""
        size = f"{self.size / 1000:.1f} kB" if self.size >= 1000 else f"{self.size} bytes"
        text = f"{self.format} {self.width}x{self.height}, {size}"
        return f"{self.label}: {text}" if self.label else text

    def url(self) -> str:
        """A data URL when the bytes are at hand, else the image's content address."""
        if self.data is None:
            return IMAGE_URL_SCHEME + self.sha256
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


class Usage(FrozenModel):
    """Token counts for one model call (or a sum of several)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class ChatMessage(BaseModel):
    """One message of a conversation, in the order it was said."""

    id: str = Field(default_factory=_new_id)
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None  # for role="tool": the call this answers
    name: str | None = None  # for role="tool": the tool's name
    model: str | None = None  # for role="assistant": the model that wrote it
    status: MessageStatus = "complete"
    pinned: bool = False  # pinned messages survive every context cut
    images: list[ImageRef] = Field(default_factory=list)  # sent after the text, as image parts
    forgotten: bool = False  # left out of what the model is sent; still stored and shown in the history
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def to_openai(self) -> dict[str, Any]:
        """The message as the OpenAI chat API (and litellm) expects it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.images:  # OpenAI content parts: the text, then each image
            parts: list[dict[str, Any]] = [{"type": "text", "text": self.content}] if self.content else []
            parts += [{"type": "image_url", "image_url": {"url": image.url()}} for image in self.images]
            out["content"] = parts
        if self.tool_calls:
            out["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        if self.role == "tool":
            out["tool_call_id"] = self.tool_call_id
            if self.name:
                out["name"] = self.name
        return out

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> ChatMessage:
        calls = [
            ToolCall.from_raw(c["id"], c["function"]["name"], c["function"].get("arguments"))
            for c in data.get("tool_calls") or []
        ]
        content = data.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return cls(
            role=data["role"],
            content=content,
            tool_calls=calls,
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
        )

"""What a model call gives back: the reply, the pieces of a stream, and the stream itself.

``LLMResponse`` is a complete reply; a stream yields ``StreamDelta`` pieces
(text, or a fragment of tool call ``index``) and ends with a ``StreamEnd``;
``StreamAssembler`` puts the pieces back together; ``LLMStream`` is what
``llm.stream(...)`` returns.  ``base.py`` re-exports all of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..chat import ChatMessage, ToolCall, Usage
from ..text import clean_text

__all__ = ["LLMResponse", "StreamDelta", "StreamEnd", "RawReply", "StreamAssembler", "LLMStream", "clean_delta"]

# -- what comes back --------------------------------------------------------------


class LLMResponse(BaseModel):
    """A model's complete reply to one call."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None  # None: the price of this model is unknown
    latency_s: float = 0.0
    ttft_s: float | None = None  # time to first token; for an unstreamed call, the latency
    model: str = ""
    provider: str | None = None
    call_id: str = ""

    def to_message(self) -> ChatMessage:
        """The reply as an assistant ``ChatMessage`` for the conversation."""
        return ChatMessage(
            role="assistant", content=self.text or None, tool_calls=list(self.tool_calls), model=self.model
        )


@dataclass(frozen=True)
class StreamDelta:
    """One piece of a streamed reply: some text, or a fragment of tool call ``index``."""

    kind: Literal["text", "tool_call"]
    text: str = ""
    index: int = 0
    tool_call_id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class StreamEnd:
    """What a model reports once its reply is through (a stream's last item)."""

    finish_reason: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    model: str | None = None  # the model that actually answered, when it differs


@dataclass
class RawReply:
    """A model's unstreamed reply, before ``BaseLLM`` turns it into an ``LLMResponse``."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    end: StreamEnd = field(default_factory=StreamEnd)


def clean_delta(delta: StreamDelta) -> StreamDelta:
    """The delta with lone surrogates replaced: text that could not be stored or sent (see ``text.py``)."""
    return dataclasses.replace(delta, text=clean_text(delta.text), arguments=clean_text(delta.arguments))


class StreamAssembler:
    """Puts a streamed reply back together: text in order, tool calls by index.

    Parallel tool calls arrive as interleaved fragments; each fragment names
    its call's ``index``, the first one also its id and name.
    """

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, delta: StreamDelta) -> None:
        if delta.kind == "text":
            self._text.append(delta.text)
            return
        call = self._calls.setdefault(delta.index, {"id": None, "name": "", "arguments": []})
        if delta.tool_call_id:
            call["id"] = delta.tool_call_id
        if delta.name and not call["name"]:
            call["name"] = delta.name  # sent with the first fragment (some servers repeat it)
        if delta.arguments:
            call["arguments"].append(delta.arguments)

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def empty(self) -> bool:
        return not self._text and not self._calls

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall.from_raw(call["id"] or f"call_{index}", call["name"], "".join(call["arguments"]))
            for index, call in sorted(self._calls.items())
        ]


# -- streams ------------------------------------------------------------------------


class LLMStream:
    """An async iterator of ``StreamDelta``; afterwards ``.response`` is the full reply.

        stream = llm.stream(messages)
        async for delta in stream:
            ...
        stream.response.usage

    ``await stream.get_response()`` reads whatever is left and returns the
    response.  ``await stream.aclose()`` (or leaving ``async with stream``)
    stops early; the call is then recorded as interrupted.
    """

    def __init__(self, source: AsyncIterator[StreamDelta | LLMResponse]) -> None:
        self._source = source
        self._response: LLMResponse | None = None

    def __aiter__(self) -> LLMStream:
        return self

    async def __anext__(self) -> StreamDelta:
        if self._response is not None:
            raise StopAsyncIteration
        item = await self._source.__anext__()
        if isinstance(item, LLMResponse):
            self._response = item
            await self.aclose()  # the source has nothing after the response; finish it now
            raise StopAsyncIteration
        return item

    @property
    def done(self) -> bool:
        return self._response is not None

    @property
    def response(self) -> LLMResponse:
        if self._response is None:
            raise RuntimeError(
                "the stream has not finished yet; iterate it to the end or use `await stream.get_response()`"
            )
        return self._response

    async def get_response(self) -> LLMResponse:
        async for _ in self:
            pass
        return self.response

    async def aclose(self) -> None:
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> LLMStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

"""The one protocol every model implements, and the machinery they share.

A model answers ``await llm.complete(messages, tools=...)`` with an
``LLMResponse``, or streams: ``async for delta in llm.stream(...)`` yields
``StreamDelta`` pieces and, once the stream is through, ``stream.response``
holds the same ``LLMResponse`` a complete call would have returned.

``BaseLLM`` does everything that is the same for every model: it numbers the
call, publishes its events on the bus (started, deltas, finished or failed,
all with one ``call_id``), assembles streamed text and tool calls (parallel
calls by index), times latency and time to first token, turns errors into
``LLMError`` and offers ``structured()`` output.  A concrete model only says
how to get a reply (``_request``) or a stream of pieces (``_request_stream``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

from ..chat import ChatMessage, ToolCall, Usage
from ..secrets import MARKER, is_secret_name
from ..text import clean_text, estimate_tokens
from .errors import BadResponseError, LLMError, from_exception
from .events import (
    LLMCallFailed,
    LLMCallFinished,
    LLMCallStarted,
    LLMNotice,
    LLMTextDelta,
    LLMToolCallDelta,
)

if TYPE_CHECKING:
    from ..bus import MessageBus

__all__ = [
    "LLM",
    "BaseLLM",
    "LLMResponse",
    "LLMStream",
    "StreamDelta",
    "StreamEnd",
    "RawReply",
    "CallRecorder",
    "StreamAssembler",
    "MessagesLike",
    "to_messages",
    "public_settings",
    "estimate_tokens",
]

log = logging.getLogger("llmgine_nb.llm")

T = TypeVar("T", bound=BaseModel)

MessagesLike = str | ChatMessage | Mapping[str, Any] | Iterable[ChatMessage | Mapping[str, Any]]


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


# -- the protocol -------------------------------------------------------------------


@runtime_checkable
class LLM(Protocol):
    """What the engine needs of a model."""

    model: str

    async def complete(
        self, messages: MessagesLike, *, tools: list[dict[str, Any]] | None = None, bus: MessageBus | None = None,
        **settings: Any,
    ) -> LLMResponse: ...

    def stream(
        self, messages: MessagesLike, *, tools: list[dict[str, Any]] | None = None, bus: MessageBus | None = None,
        **settings: Any,
    ) -> LLMStream: ...

    async def structured(self, messages: MessagesLike, output_type: type[T], **settings: Any) -> T: ...


# -- helpers ------------------------------------------------------------------------


def to_messages(messages: MessagesLike) -> list[ChatMessage]:
    """Accept a prompt string, one message, or a list of ``ChatMessage`` / OpenAI dicts."""
    if isinstance(messages, str):
        return [ChatMessage(role="user", content=messages)]
    if isinstance(messages, (ChatMessage, Mapping)):
        messages = [messages]
    out: list[ChatMessage] = []
    for item in messages:
        if isinstance(item, ChatMessage):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(ChatMessage.from_openai(dict(item)))
        else:
            raise TypeError(
                f"a message must be a ChatMessage or an OpenAI-style dict, not {type(item).__name__}; "
                "wrap text as ChatMessage(role='user', content=...)"
            )
    if not out:
        raise ValueError("a model call needs at least one message")
    return out


def public_url(url: str) -> str:
    """A URL without user:password and query string (either may carry a key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): (MARKER if is_secret_name(str(k)) else _jsonable(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(mode="json"))
    if isinstance(value, type) and issubclass(value, BaseModel):
        return value.__name__
    return repr(value)


def public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Request settings fit for events and logs: secrets dropped, URLs cleaned, JSON values only."""
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if is_secret_name(name) or value is None:
            continue
        if name in ("api_base", "base_url") and isinstance(value, str):
            out[name] = public_url(value)
        else:
            out[name] = _jsonable(value)
    return out


def _tool_names(tools: list[dict[str, Any]] | None) -> list[str]:
    names = []
    for tool in tools or ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        name = fn.get("name") if isinstance(fn, Mapping) else None
        names.append(str(name) if name else "?")
    return names


def _clean_delta(delta: StreamDelta) -> StreamDelta:
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


# -- one call's events ----------------------------------------------------------------


class CallRecorder:
    """Publishes the events of one model call and times it.

    Without a bus it only times: no event objects are made at all.
    """

    __slots__ = (
        "llm", "bus", "call_id", "model", "provider", "stream", "start", "first_token", "attempt", "closed",
        "text_deltas", "tool_deltas",
    )

    def __init__(self, llm: BaseLLM, model: str, *, stream: bool, bus: MessageBus | None = None) -> None:
        self.llm = llm
        self.bus = bus = bus if bus is not None else llm.bus
        # Delta events are many: they are only built when someone subscribed to them
        # when the call started (an event log, say, takes everything but deltas).
        self.text_deltas = stream and bus is not None and bus.has_subscribers(LLMTextDelta)
        self.tool_deltas = stream and bus is not None and bus.has_subscribers(LLMToolCallDelta)
        self.call_id = uuid.uuid4().hex
        self.model = model
        self.provider = llm._provider_for(model)
        self.stream = stream
        self.start = time.perf_counter()
        self.first_token: float | None = None
        self.attempt = 1
        self.closed = False

    async def publish(self, event: Any) -> None:
        if self.bus is not None:
            await self.bus.publish(event)

    async def started(
        self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None, settings: Mapping[str, Any]
    ) -> None:
        if self.bus is not None:
            if self.llm.notice and not self.llm._notice_sent:
                self.llm._notice_sent = True
                await self.bus.publish(LLMNotice(call_id=self.call_id, model=self.model, message=self.llm.notice))
            await self.bus.publish(
                LLMCallStarted(
                    call_id=self.call_id,
                    model=self.model,
                    provider=self.provider,
                    settings=self.llm._public_settings(settings),
                    message_count=len(messages),
                    tool_names=_tool_names(tools),
                    stream=self.stream,
                )
            )
        self.start = time.perf_counter()  # latency counts from here, after our own bookkeeping

    async def delta(self, delta: StreamDelta) -> None:
        if self.first_token is None:
            self.first_token = time.perf_counter()
        if delta.kind == "text":
            if not self.text_deltas:
                return
            event: Any = LLMTextDelta(call_id=self.call_id, model=self.model, text=delta.text)
        else:
            if not self.tool_deltas:
                return
            event = LLMToolCallDelta(
                call_id=self.call_id,
                model=self.model,
                index=delta.index,
                tool_call_id=delta.tool_call_id,
                name=delta.name,
                arguments_delta=delta.arguments,
            )
        assert self.bus is not None  # text_deltas/tool_deltas are only set with a bus
        await self.bus.publish(event)

    def response(self, text: str, tool_calls: list[ToolCall], end: StreamEnd) -> LLMResponse:
        now = time.perf_counter()
        latency = now - self.start
        ttft = (self.first_token - self.start) if self.first_token is not None else (None if self.stream else latency)
        return LLMResponse(
            text=text,
            tool_calls=tool_calls,
            finish_reason=end.finish_reason,
            usage=end.usage or Usage(),
            cost_usd=end.cost_usd,
            latency_s=latency,
            ttft_s=ttft,
            model=end.model or self.model,
            provider=self.provider,
            call_id=self.call_id,
        )

    async def finished(self, response: LLMResponse) -> None:
        self.closed = True
        if self.bus is not None:
            await self.bus.publish(
                LLMCallFinished(
                    call_id=self.call_id,
                    model=response.model,
                    provider=response.provider,
                    finish_reason=response.finish_reason,
                    text=response.text,
                    tool_calls=response.tool_calls,
                    usage=response.usage,
                    cost_usd=response.cost_usd,
                    latency_s=response.latency_s,
                    ttft_s=response.ttft_s,
                )
            )

    async def failed(self, error: LLMError, *, will_retry: bool = False, model: str | None = None) -> None:
        if not will_retry:
            self.closed = True
        if self.bus is not None:
            await self.bus.publish(
                LLMCallFailed(
                    call_id=self.call_id,
                    model=model or self.model,
                    error_kind=error.kind,
                    error_type=error.error_type,
                    message=str(error),
                    will_retry=will_retry,
                    attempt=self.attempt,
                    status_code=error.status_code,
                )
            )


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


# -- the base class --------------------------------------------------------------------


class BaseLLM(ABC):
    """Shared behaviour of every model client; subclasses implement the two ``_request`` hooks."""

    #: Providers that cost nothing set this to 0.0; None means "look it up".
    provider: str | None = None

    def __init__(self, model: str, *, bus: MessageBus | None = None, **settings: Any) -> None:
        self.model = model
        self.bus = bus
        #: Settings sent with every call (temperature, max_tokens ...); a call's own settings win.
        self.settings: dict[str, Any] = dict(settings)
        #: A sentence the user should see once (e.g. "the offline model answers"); published
        #: as ``LLMNotice`` before the first call's events.
        self.notice: str | None = None
        self._notice_sent = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} model={self.model!r}>"

    # -- what subclasses provide

    @abstractmethod
    async def _request(
        self,
        call: CallRecorder,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None,
        settings: dict[str, Any],
    ) -> RawReply:
        """Get one unstreamed reply."""

    @abstractmethod
    def _request_stream(
        self,
        call: CallRecorder,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None,
        settings: dict[str, Any],
    ) -> AsyncIterator[StreamDelta | StreamEnd]:
        """Stream one reply: deltas, then (optionally) a ``StreamEnd``."""

    def _supports_response_schema(self) -> bool:
        """Whether ``response_format`` with a JSON schema may be sent to this model."""
        return False

    def _provider_for(self, model: str) -> str | None:
        return self.provider

    def _public_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The call's settings as ``LLMCallStarted`` shows them (no secrets)."""
        return public_settings(settings)

    async def ready(self) -> None:
        """Load what the first call needs now, off the event loop (litellm takes seconds to import).

        Awaiting it before other work that needs litellm (token counting)
        keeps the loop - and the notebook's clicks - responsive.
        """
        await self._ensure_ready()

    async def _ensure_ready(self) -> None:
        """Load what the first call needs (e.g. litellm) without blocking the loop."""
        return None  # nothing, for a model that needs no loading (a hook, not an abstract method)

    def _new_call(self, settings: dict[str, Any], *, stream: bool, bus: MessageBus | None = None) -> CallRecorder:
        # A call may name another model (``model=...``) than the client's default.
        model = settings.pop("model", None) or self.model
        return CallRecorder(self, model, stream=stream, bus=bus)

    # -- the protocol

    async def complete(
        self, messages: MessagesLike, *, tools: list[dict[str, Any]] | None = None, bus: MessageBus | None = None,
        **settings: Any,
    ) -> LLMResponse:
        """Send ``messages`` (and tool schemas, OpenAI format) and return the whole reply.

        ``bus``: where this call's events go (default: the client's own ``bus``).
        """
        chat = to_messages(messages)
        merged = {**self.settings, **settings}
        await self._ensure_ready()
        call = self._new_call(merged, stream=False, bus=bus)
        await call.started(chat, tools, merged)
        try:
            raw = await self._request(call, chat, tools, merged)
        except Exception as exc:
            error = from_exception(exc, model=call.model, provider=call.provider)
            await call.failed(error)
            if error is exc:
                raise
            raise error from exc
        except asyncio.CancelledError:
            # Stopped by the user (or a timeout around us): recorded as an interrupted, empty reply.
            await call.finished(call.response("", [], StreamEnd(finish_reason="interrupted")))
            raise
        response = call.response(clean_text(raw.text), raw.tool_calls, raw.end)
        await call.finished(response)
        return response

    def stream(
        self, messages: MessagesLike, *, tools: list[dict[str, Any]] | None = None, bus: MessageBus | None = None,
        **settings: Any,
    ) -> LLMStream:
        """Stream the reply; see ``LLMStream``.  Nothing is sent until the first ``__anext__``.

        ``bus``: where this call's events go (default: the client's own ``bus``).
        """
        chat = to_messages(messages)
        merged = {**self.settings, **settings}
        return LLMStream(self._run_stream(chat, tools, merged, bus))

    async def _run_stream(
        self, chat: list[ChatMessage], tools: list[dict[str, Any]] | None, settings: dict[str, Any],
        bus: MessageBus | None = None,
    ) -> AsyncIterator[StreamDelta | LLMResponse]:
        await self._ensure_ready()
        call = self._new_call(settings, stream=True, bus=bus)
        await call.started(chat, tools, settings)
        assembler = StreamAssembler()
        end = StreamEnd()
        pieces = self._request_stream(call, chat, tools, settings)
        try:
            async for item in pieces:
                if isinstance(item, StreamEnd):
                    end = item
                    continue
                if not (item.text.isascii() and item.arguments.isascii()):
                    item = _clean_delta(item)
                assembler.add(item)
                await call.delta(item)
                yield item
        except Exception as exc:
            error = from_exception(exc, model=call.model, provider=call.provider)
            await call.failed(error)
            if error is exc:
                raise
            raise error from exc
        except BaseException:
            # Closed early (GeneratorExit) or cancelled: what arrived is an interrupted reply.
            if not call.closed:
                end.finish_reason = "interrupted"
                await call.finished(call.response(assembler.text, assembler.tool_calls(), end))
            raise
        finally:
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()  # releases the HTTP connection of a stream left early
        if assembler.empty and end.finish_reason is None:
            error = BadResponseError("The model's server ended the stream without sending a reply", model=call.model)
            await call.failed(error)
            raise error
        response = call.response(assembler.text, assembler.tool_calls(), end)
        await call.finished(response)
        yield response

    async def structured(
        self, messages: MessagesLike, output_type: type[T], *, retries: int = 1, **settings: Any
    ) -> T:
        """Ask for a reply shaped as ``output_type`` (a pydantic model) and return it validated.

        When the reply does not validate, the model is shown the validation
        error and asked once more (``retries`` times); after that a
        ``StructuredOutputError`` says what was wrong.
        """
        from .structured import ask_structured  # with pydantic's validation machinery: on first use

        chat = to_messages(messages)
        await self._ensure_ready()
        return await ask_structured(
            self.complete, chat, output_type, model=self.model, response_schema=self._supports_response_schema(),
            retries=retries, **settings,
        )

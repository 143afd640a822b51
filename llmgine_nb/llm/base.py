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
import functools
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

from ..chat import ChatMessage, ToolCall, Usage
from ..secrets import MARKER, is_secret_name
from ..text import clean_text, estimate_tokens
from .errors import BadResponseError, LLMError, from_exception
from .events import (
    LLMCallFailed,
    LLMCallFinished,
    LLMCallStarted,
    LLMNotice,
    LLMRetry,
    LLMTextDelta,
    LLMToolCallDelta,
)
from .reply import LLMResponse, LLMStream, RawReply, StreamAssembler, StreamDelta, StreamEnd, clean_delta
from .retry import RetryPolicy

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
    "ModelRequest",
    "StreamAssembler",
    "MessagesLike",
    "to_messages",
    "public_settings",
    "estimate_tokens",
]

log = logging.getLogger("llmgine_nb.llm")

T = TypeVar("T", bound=BaseModel)

MessagesLike = str | ChatMessage | Mapping[str, Any] | Iterable[ChatMessage | Mapping[str, Any]]


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


# Every call shows its settings; their names are few and repeat, so each is judged once.
_secret_setting = functools.lru_cache(maxsize=512)(is_secret_name)


def public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Request settings fit for events and logs: secrets dropped, URLs cleaned, JSON values only."""
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if value is None or _secret_setting(name):
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


# -- one call's events ----------------------------------------------------------------


class CallRecorder:
    """Publishes the events of one model call and times it.

    Without a bus it only times: no event objects are made at all.
    """

    __slots__ = (
        "llm", "bus", "call_id", "model", "provider", "stream", "start", "first_token", "attempt", "closed",
        "text_deltas", "tool_deltas", "_held", "_last_text", "_release_timer", "_releasing",
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
        self._held: list[str] = []  # text streamed in too soon after the last text event
        self._last_text = float("-inf")  # when the last text event went out
        self._release_timer: asyncio.TimerHandle | None = None  # publishes the held text if no piece comes
        self._releasing: asyncio.Future[None] | None = None  # that publication, under way

    async def publish(self, event: Any) -> None:
        if self.bus is not None:
            await self._release_held()
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
        now = time.perf_counter()
        if self.first_token is None:
            self.first_token = now
        if delta.kind == "text":
            if not self.text_deltas:
                return
            # A piece that comes sooner than ``text_delta_interval_s`` after the last text event waits
            # for the next piece, the call's next other event or the end of the interval, whichever
            # comes first, and goes out with it: a model that sends many pieces at once (an offline
            # model, a burst of chunks in one network read) makes one event for them, not one each
            # for every subscriber to handle.
            interval = self.llm.text_delta_interval_s
            if now - self._last_text < interval:
                self._held.append(delta.text)
                if self._release_timer is None:  # a stream that stalls now still shows what came
                    delay = interval - (now - self._last_text)
                    self._release_timer = asyncio.get_running_loop().call_later(delay, self._release_soon)
                return
            await self._release_settled()  # a timed release under way goes out first
            self._cancel_release_timer()
            text = delta.text
            if self._held:
                text = "".join(self._held) + text
                self._held = []
            self._last_text = now
            event: Any = LLMTextDelta(call_id=self.call_id, model=self.model, text=text)
        else:
            await self._release_held()
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

    async def _release_held(self) -> None:
        """Publish the text held back, before any other event of the call (so the order stays true)."""
        self._cancel_release_timer()
        await self._release_settled()
        if self._held and self.bus is not None:
            text, self._held = "".join(self._held), []
            self._last_text = time.perf_counter()
            await self.bus.publish(LLMTextDelta(call_id=self.call_id, model=self.model, text=text))

    def _release_soon(self) -> None:
        """The interval ended with text held and no new piece: publish it (the stream may have stalled)."""
        self._release_timer = None
        if self._held and not self.closed:
            self._releasing = asyncio.ensure_future(self._release_after(self._releasing))

    async def _release_after(self, previous: asyncio.Future[None] | None) -> None:
        if previous is not None:  # an earlier timed release first, in order (and its failure with it)
            await previous
        await self._release_held()

    async def _release_settled(self) -> None:
        """Wait for a timed release under way (its failure, e.g. a refused write, is the caller's too)."""
        releasing, self._releasing = self._releasing, None
        if releasing is not None and releasing is not asyncio.current_task():
            await releasing

    def _cancel_release_timer(self) -> None:
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None

    async def finished(self, response: LLMResponse) -> None:
        self.closed = True
        if self.bus is not None:
            await self._release_held()
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
            await self._release_held()
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


@dataclass(frozen=True)
class ModelRequest:
    """What a client's hooks get for one call: one value instead of four arguments.

    ``model`` is where this request goes: the call's model (its events are
    named after it), or, for a route, the model behind the alias.
    """

    call: CallRecorder
    messages: list[ChatMessage]
    tools: list[dict[str, Any]] | None
    settings: dict[str, Any]
    model: str = ""

    def __post_init__(self) -> None:
        if not self.model:
            object.__setattr__(self, "model", self.call.model)

    def to(self, model: str) -> ModelRequest:
        """The same request sent to ``model`` (the call and its events stay the same)."""
        return replace(self, model=model)


# -- the base class --------------------------------------------------------------------


class BaseLLM(ABC):
    """Shared behaviour of every model client; subclasses implement the two ``_request`` hooks."""

    #: Providers that cost nothing set this to 0.0; None means "look it up".
    provider: str | None = None

    #: Retries when none is given: None (no retries) here; ``LiteLLMClient`` retries by default.
    default_retry: RetryPolicy | None = None

    #: Streamed text arriving sooner than this (seconds) after the call's last ``LLMTextDelta``
    #: waits and goes out in the next one - with the next piece, before the call's next other
    #: event, or when the interval ends, whichever is first - so at most about 60 a second:
    #: faster than anyone reads, and the joined texts are the reply all the same.  0 makes one
    #: event per streamed piece.
    text_delta_interval_s: float = 0.016

    def __init__(
        self, model: str, *, bus: MessageBus | None = None, retry: RetryPolicy | None = None, **settings: Any
    ) -> None:
        self.model = model
        self.bus = bus
        #: How failed calls are retried (see ``retry.py``); None: never.
        self.retry = retry if retry is not None else self.default_retry
        #: Settings sent with every call (temperature, max_tokens ...); a call's own settings win.
        self.settings: dict[str, Any] = dict(settings)
        #: A sentence the user should see once (e.g. "the offline model answers"); published
        #: as ``LLMNotice`` before the first call's events.
        self.notice: str | None = None
        self._notice_sent = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} model={self.model!r}>"

    # -- what subclasses provide

    def _interrupted_end(self, request: ModelRequest, end: StreamEnd, text: str, calls: list[ToolCall]) -> StreamEnd:
        """What a stream left early used and cost, where the client can tell (here: what the stream said)."""
        return end

    @abstractmethod
    async def _request(self, request: ModelRequest) -> RawReply:
        """Get one unstreamed reply."""

    @abstractmethod
    def _request_stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta | StreamEnd]:
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
        request = ModelRequest(call, chat, tools, merged)
        first_try = time.monotonic()
        while True:
            try:
                raw = await self._request(request)
                break
            except Exception as exc:
                error = from_exception(exc, model=call.model, provider=call.provider)
                if await self._retrying(request, error, first_try):
                    continue
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
        request = ModelRequest(call, chat, tools, settings)
        assembler = StreamAssembler()
        end = StreamEnd()
        first_try = time.monotonic()
        while True:
            pieces = self._request_stream(request)
            try:
                async for item in pieces:
                    if isinstance(item, StreamEnd):
                        end = item
                        continue
                    if not (item.text.isascii() and item.arguments.isascii()):
                        item = clean_delta(item)
                    assembler.add(item)
                    await call.delta(item)
                    yield item
            except Exception as exc:
                error = from_exception(exc, model=call.model, provider=call.provider)
                # Only a stream that failed before any of the reply arrived is tried again:
                # text already shown cannot be taken back.  What did arrive is kept.
                if assembler.empty and await self._retrying(request, error, first_try):
                    continue
                error.partial_text = assembler.text
                await call.failed(error)
                if error is exc:
                    raise
                raise error from exc
            except BaseException:
                # Closed early (GeneratorExit) or cancelled: what arrived is an interrupted reply.
                if not call.closed:
                    end = self._interrupted_end(request, end, assembler.text, assembler.tool_calls())
                    end.finish_reason = "interrupted"
                    await call.finished(call.response(assembler.text, assembler.tool_calls(), end))
                raise
            finally:
                close = getattr(pieces, "aclose", None)
                if close is not None:
                    await close()  # releases the HTTP connection of a stream left early
            break
        if assembler.empty and end.finish_reason is None:
            error = BadResponseError("The model's server ended the stream without sending a reply", model=call.model, what="")
            await call.failed(error)
            raise error
        response = call.response(assembler.text, assembler.tool_calls(), end)
        await call.finished(response)
        yield response

    def _retry_policy(self, request: ModelRequest) -> RetryPolicy | None:
        """How a failed ``request`` is retried: ``self.retry`` (a router says per route)."""
        return self.retry

    async def _retrying(self, request: ModelRequest, error: LLMError, first_try: float) -> bool:
        """Announce a retry and wait for it, if the policy allows one; False to give up."""
        call = request.call
        policy = self._retry_policy(request)
        wait = policy.wait(error, call.attempt, time.monotonic() - first_try) if policy is not None else None
        if wait is None:
            return False
        await call.failed(error, will_retry=True)
        await call.publish(
            LLMRetry(
                call_id=call.call_id, model=call.model, attempt=call.attempt + 1, error_kind=error.kind,
                message=str(error), delay_s=round(wait, 3),
            )
        )
        await asyncio.sleep(wait)
        call.attempt += 1
        return True

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

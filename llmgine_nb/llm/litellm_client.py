"""Real models through litellm: OpenAI, Anthropic, Gemini, Ollama, any OpenAI-compatible server.

    llm = LiteLLMClient("openai/gpt-4o-mini", bus=bus)
    llm = LiteLLMClient("openai/my-model", api_base="http://127.0.0.1:8000/v1")
    reply = await llm.complete([ChatMessage(role="user", content="hi")])

litellm is imported on the first call, not before (see ``_litellm.py``).
Retries are ours (``retry.py``: 429, 5xx and failed connections, with
backoff, each one an event); the OpenAI SDK's and litellm's own retries are
switched off (``max_retries=0``, ``num_retries=0``) so that nothing is retried
twice over.  Fallbacks and aliases are ``RoutedLLM``'s job (``router.py``).
The conversion helpers here are shared with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..chat import ChatMessage, ToolCall, Usage
from ..text import estimate_tokens, tokens_for_chars
from ._litellm import aload_litellm, load_litellm
from .base import ModelRequest, RawReply, StreamDelta, StreamEnd
from .blocking import check_real_call, is_loopback_url, real_models_allowed
from .config import provider_of
from .endpoint import EndpointLLM
from .errors import BadResponseError
from .pricing import cost_of

__all__ = ["LiteLLMClient", "cost_of", "usage_of", "reply_from_response", "stream_pieces", "streams_usage"]

log = logging.getLogger("llmgine_nb.llm")

_stream_usage_support: dict[str, bool] = {}


def _get(obj: Any, name: str) -> Any:
    """A field of a response part, whether litellm/the SDK gave an object or a dict."""
    if obj is None:
        return None
    if isinstance(obj, dict):  # before the Mapping check: a C check, and the usual dict
        return obj.get(name)
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def usage_of(raw: Any) -> Usage | None:
    """Our ``Usage`` from litellm's usage object (or dict); None when there is none."""
    if raw is None:
        return None
    cached = _get(_get(raw, "prompt_tokens_details"), "cached_tokens") or _get(raw, "cache_read_input_tokens") or 0
    return Usage(
        input_tokens=int(_get(raw, "prompt_tokens") or 0),
        output_tokens=int(_get(raw, "completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


def streams_usage(model: str) -> bool:
    """Whether ``model``'s provider accepts ``stream_options`` (usage in the last chunk)."""
    known = _stream_usage_support.get(model)
    if known is None:
        litellm = load_litellm()
        try:
            params = litellm.get_supported_openai_params(model=model) or []
        except Exception as exc:  # an unknown model name: do not ask for it
            log.debug("no parameter list for %s: %s", model, type(exc).__name__)
            params = []
        known = _stream_usage_support[model] = "stream_options" in params
    return known


def reply_from_response(response: Any, model: str) -> RawReply:
    """A ``RawReply`` from litellm's unstreamed ``ModelResponse``."""
    choices = _get(response, "choices") or []
    if not choices:
        raise BadResponseError("The model's server answered without any choices", model=model)
    choice = choices[0]
    message = _get(choice, "message")
    content = _get(message, "content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(str(_get(part, "text") or "") for part in content)
    calls = [
        ToolCall.from_raw(
            _get(tc, "id") or f"call_{i}",
            _get(_get(tc, "function"), "name") or "",
            _get(_get(tc, "function"), "arguments"),
        )
        for i, tc in enumerate(_get(message, "tool_calls") or [])
    ]
    usage = usage_of(_get(response, "usage")) or Usage()
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    answered_by = hidden.get("litellm_model_name")
    if cost is None:
        cost = cost_of(model, usage)
    return RawReply(
        text=content or "",
        tool_calls=calls,
        end=StreamEnd(
            finish_reason=_get(choice, "finish_reason"),
            usage=usage,
            cost_usd=float(cost) if cost is not None else None,
            model=answered_by if isinstance(answered_by, str) and answered_by != model else None,
        ),
    )


async def stream_pieces(
    stream: Any, model: str, messages: list[ChatMessage]
) -> AsyncIterator[StreamDelta | StreamEnd]:
    """``StreamDelta`` pieces (and a final ``StreamEnd``) from litellm's chunk stream."""
    finish: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    out_chars = 0
    saw_tool_call = False
    try:
        async for chunk in stream:
            raw_usage = _get(chunk, "usage")
            if raw_usage is not None:
                usage = usage_of(raw_usage)
                cost = _get(raw_usage, "cost")
            choices = _get(chunk, "choices") or ()
            if not choices:
                continue
            choice = choices[0]
            delta = _get(choice, "delta")
            text = _get(delta, "content")
            if text:
                out_chars += len(text)
                yield StreamDelta("text", text=text)
            for position, tc in enumerate(_get(delta, "tool_calls") or ()):
                saw_tool_call = True
                fn = _get(tc, "function")
                arguments = _get(fn, "arguments") or ""
                out_chars += len(arguments)
                index = _get(tc, "index")
                yield StreamDelta(
                    "tool_call",
                    index=index if isinstance(index, int) else position,
                    tool_call_id=_get(tc, "id"),
                    name=_get(fn, "name"),
                    arguments=arguments,
                )
            if _get(choice, "finish_reason"):
                finish = _get(choice, "finish_reason")
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    if usage is None and out_chars == 0 and not saw_tool_call:
        # litellm turns a body that was no event stream at all into an empty "stop": not a reply.
        raise BadResponseError("The model's server ended the stream without sending a reply", model=model, what="")
    if usage is None:
        # The server reported none (e.g. no stream_options support): estimate, never leave it blank.
        usage = Usage(
            input_tokens=sum(estimate_tokens(m.content) + 4 for m in messages),
            output_tokens=tokens_for_chars(out_chars),
        )
    if cost is None:
        cost = cost_of(model, usage)
    yield StreamEnd(finish_reason=finish, usage=usage, cost_usd=float(cost) if cost is not None else None)


class LiteLLMClient(EndpointLLM):
    """One model through litellm.  Keys come from the argument, the environment or ``.env``.

    ``retry=RetryPolicy(...)`` changes how failed calls are retried (``RetryPolicy(tries=1)``: never).
    """

    _warmed = False  # litellm and this model's tokenizer loaded (``_ensure_ready``)

    def _provider_for(self, model: str) -> str | None:
        return self.provider if model == self.model else provider_of(model)

    def _kwargs(self, request: ModelRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_retries": 0, "num_retries": 0}  # the SDK's and litellm's: ours own retries
        kwargs.update(request.settings)
        kwargs["model"] = model = request.model
        kwargs["messages"] = [m.to_openai() for m in request.messages]
        if request.tools:
            kwargs["tools"] = request.tools
        if self.api_base:
            kwargs.setdefault("api_base", self.api_base)
        api_key = self._api_key()
        if api_key:
            kwargs.setdefault("api_key", api_key)
        if self.timeout is not None:
            kwargs.setdefault("timeout", self.timeout)
        if "mock_response" not in kwargs:
            check_real_call(model, kwargs.get("api_base"))
        return kwargs

    async def _request(self, request: ModelRequest) -> RawReply:
        kwargs = self._kwargs(request)
        litellm = await aload_litellm()
        response = await litellm.acompletion(**kwargs)
        return reply_from_response(response, request.model)

    async def _request_stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta | StreamEnd]:
        kwargs = self._kwargs(request)
        litellm = await aload_litellm()
        kwargs["stream"] = True
        if "stream_options" not in kwargs and "mock_response" not in kwargs and streams_usage(request.model):
            kwargs["stream_options"] = {"include_usage": True}
        stream = await litellm.acompletion(**kwargs)
        async for piece in stream_pieces(stream, request.model, request.messages):
            yield piece

    async def _ensure_ready(self) -> None:
        if self._warmed:
            return
        # Not while real calls are blocked: the call is refused anyway, no need to wait for the import.
        if real_models_allowed() or is_loopback_url(self.api_base):
            # Import litellm and load this model's tokenizer in a thread: both take long
            # enough (seconds, then ~0.3 s) to freeze a notebook's clicks if done on the loop.
            await asyncio.to_thread(self._warm_up)
            self._warmed = True

    def _warm_up(self) -> None:
        litellm = load_litellm()
        try:
            litellm.token_counter(model=self.model, text="warm up")
        except Exception as exc:  # an unknown model has no tokenizer: the context counts fall back
            log.debug("no tokenizer to warm up for %s: %s", self.model, type(exc).__name__)

    def _supports_response_schema(self) -> bool:
        litellm = load_litellm()
        try:
            return bool(litellm.supports_response_schema(model=self.model))
        except Exception as exc:  # unknown model: rely on the instruction alone
            log.debug("no response-schema information for %s: %s", self.model, type(exc).__name__)
            return False

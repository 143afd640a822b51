"""The LLM layer: one protocol for every model, litellm for real ones, an offline one for the rest.

    from llmgine_nb.llm import get_llm

    llm = get_llm(bus=bus)                    # LLMGINE_MODEL, a key's default, or the offline model
    llm = get_llm("openai/gpt-4o-mini")       # one model through litellm
    llm = get_llm("smart", fallbacks={"smart": ["fast"]}, num_retries=2)   # litellm's Router
    llm = get_llm("scripted", script=["Hello!"])                           # offline, deterministic

    reply = await llm.complete("Hi there")    # LLMResponse: text, tool_calls, usage, cost_usd ...
    async for delta in (stream := llm.stream("Hi")):
        ...
    answer = await llm.structured("Name a colour", Colour)   # a validated pydantic instance

Importing this package does not import litellm; the first real call does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._litellm import preload
from .base import LLM, BaseLLM, LLMResponse, LLMStream, StreamDelta, to_messages
from .blocking import allow_real_models, block_real_models, real_models_allowed
from .config import (
    ALIAS_SETTINGS,
    OFFLINE_MODEL,
    ModelChoice,
    Settings,
    alias_help,
    choose_model,
    key_status,
    mask_key,
    resolve_aliases,
)
from .errors import (
    BadResponseError,
    ContentFilterError,
    ContextTooLongError,
    LLMAuthenticationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMServerError,
    LLMTimeoutError,
    ModelConfigError,
    RealModelsBlockedError,
    ScriptExhaustedError,
    StructuredOutputError,
)
from .events import (
    LLMCallFailed,
    LLMCallFinished,
    LLMCallStarted,
    LLMEvent,
    LLMFallback,
    LLMNotice,
    LLMRetry,
    LLMTextDelta,
    LLMToolCallDelta,
)
from .litellm_client import LiteLLMClient
from .retry import NO_RETRIES, RetryPolicy
from .router import RoutedLLM
from .scripted import ScriptedLLM, ScriptedReply, call

if TYPE_CHECKING:
    from ..bus import MessageBus

__all__ = [
    "get_llm",
    "RetryPolicy",
    "NO_RETRIES",
    "LLMServerError",
    "LLM",
    "BaseLLM",
    "LLMResponse",
    "LLMStream",
    "StreamDelta",
    "LiteLLMClient",
    "RoutedLLM",
    "ScriptedLLM",
    "ScriptedReply",
    "call",
    "to_messages",
    "preload",
    # configuration
    "Settings",
    "ModelChoice",
    "choose_model",
    "key_status",
    "mask_key",
    "resolve_aliases",
    "OFFLINE_MODEL",
    # blocking real calls
    "block_real_models",
    "allow_real_models",
    "real_models_allowed",
    # events
    "LLMEvent",
    "LLMCallStarted",
    "LLMTextDelta",
    "LLMToolCallDelta",
    "LLMCallFinished",
    "LLMCallFailed",
    "LLMRetry",
    "LLMFallback",
    "LLMNotice",
    # errors
    "LLMError",
    "LLMAuthenticationError",
    "LLMRateLimitError",
    "LLMTimeoutError",
    "ContextTooLongError",
    "ContentFilterError",
    "BadResponseError",
    "LLMConnectionError",
    "ModelConfigError",
    "ScriptExhaustedError",
    "RealModelsBlockedError",
    "StructuredOutputError",
]


def get_llm(
    model: str | None = None,
    *,
    bus: MessageBus | None = None,
    script: Iterable[Any] | Any = None,
    aliases: Mapping[str, str | Mapping[str, Any]] | None = None,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
    num_retries: int | None = None,
    timeout: float | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    config: Settings | None = None,
    **settings: Any,
) -> BaseLLM:
    """The model client to use.

    ``model`` is a litellm model string, an alias (``fast``, ``smart`` or
    one of ``aliases``) or ``"scripted"``; None means ``LLMGINE_MODEL``,
    else the ``fast`` model of a provider whose key is set, else the
    offline model (the client's ``notice`` then says so, and the first
    call publishes it as an ``LLMNotice`` event).  ``fast`` and ``smart``
    point at ``LLMGINE_FAST_MODEL`` / ``LLMGINE_SMART_MODEL``, else at the
    defaults of a provider whose key is set; with no real model configured at
    all they are the offline model (saying so), and otherwise an alias that
    points nowhere is a ``ModelConfigError`` that says how to set it.

    An alias, ``fallbacks`` or ``num_retries`` give a ``RoutedLLM``
    (litellm's Router, which then owns retries: ``num_retries``, 2 unless
    given); a plain model string gives a ``LiteLLMClient``, which retries
    rate limits, server errors and failed connections itself (``retry=``, a
    ``RetryPolicy``; each retry is an event).  ``settings`` (temperature,
    max_tokens ...) go with every call.
    """
    config = config or Settings()
    choice = choose_model(model, config, aliases)
    if choice.offline:
        llm: BaseLLM = ScriptedLLM(script, bus=bus, **settings)
    else:
        known = resolve_aliases(aliases, config)
        if choice.model in ALIAS_SETTINGS and choice.model not in known:
            raise ModelConfigError(f"No model is configured for the alias {choice.model!r}", what="", hint=alias_help())
        if choice.model in known or fallbacks or num_retries:
            routed: dict[str, Any] = dict(known)
            for name in [choice.model, *(t for targets in (fallbacks or {}).values() for t in targets)]:
                routed.setdefault(name, name)  # a plain model string routes under its own name
            for name in fallbacks or {}:
                routed.setdefault(name, name)
            if api_key is not None:
                raise ModelConfigError(
                    "api_key= applies to one model; for routing give each alias its own key: "
                    "aliases={'fast': {'model': 'openai/gpt-4o-mini', 'api_key': ...}}"
                )
            llm = RoutedLLM(
                routed,
                default=choice.model,
                fallbacks=fallbacks,
                num_retries=num_retries if num_retries is not None else 2,
                timeout=timeout,
                bus=bus,
                api_base=api_base,
                config=config,
                **settings,
            )
        else:
            llm = LiteLLMClient(
                choice.model, bus=bus, api_base=api_base, api_key=api_key, timeout=timeout, config=config, **settings
            )
    llm.notice = choice.notice
    return llm

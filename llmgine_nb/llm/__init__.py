"""The LLM layer: one protocol for every model; the openai SDK or litellm for real ones, an offline one for the rest.

    from llmgine_nb.llm import get_llm

    llm = get_llm(bus=bus)                    # LLMGINE_MODEL, a key's default, or the offline model
    llm = get_llm("openai/gpt-4o-mini")       # OpenAI (or an OpenAI-compatible api_base) through the openai SDK
    llm = get_llm("anthropic/claude-haiku-4-5")   # any other provider through litellm
    llm = get_llm("smart", fallbacks={"smart": ["fast"]}, num_retries=2)   # litellm's Router
    llm = get_llm("scripted", script=["Hello!"])                           # offline, deterministic

    reply = await llm.complete("Hi there")    # LLMResponse: text, tool_calls, usage, cost_usd ...
    async for delta in (stream := llm.stream("Hi")):
        ...
    answer = await llm.structured("Name a colour", Colour)   # a validated pydantic instance

Importing this package imports neither litellm nor the openai SDK, nor the
clients (they load when first named); the first call of a model that needs
one does (litellm only for what only it does: other providers, fallbacks,
its own settings such as ``mock_response``).
"""

from __future__ import annotations

import importlib
import threading
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
    direct_target,
    key_status,
    mask_key,
    resolve_aliases,
    through_openai_sdk,
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
from .retry import NO_RETRIES, RetryPolicy

if TYPE_CHECKING:
    from ..bus import MessageBus
    from .litellm_client import LiteLLMClient
    from .openai_client import OpenAIClient
    from .router import RoutedLLM
    from .scripted import ScriptedLLM, ScriptedReply, call

# The clients load when first named (or when get_llm first makes one): a plain import of
# this package, for its events, errors or configuration, does not wait for them.
_CLIENTS = {
    "LiteLLMClient": "litellm_client",
    "OpenAIClient": "openai_client",
    "RoutedLLM": "router",
    "ScriptedLLM": "scripted",
    "ScriptedReply": "scripted",
    "call": "scripted",
}

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
    "OpenAIClient",
    "RoutedLLM",
    "ScriptedLLM",
    "ScriptedReply",
    "call",
    "to_messages",
    "preload",
    "preload_for",
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


def __getattr__(name: str) -> Any:
    module = _CLIENTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmgine_nb.llm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # found once; later lookups do not come here
    return value


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
    given; an alias without fallbacks that points at an OpenAI model, an
    OpenAI-compatible server or the offline model is served by that client,
    without litellm).  A plain ``openai/...`` model string gives an ``OpenAIClient``
    (the openai SDK: no waiting for litellm's import), unless
    ``LLMGINE_USE_LITELLM`` is on or a litellm-only setting such as
    ``mock_response`` is given; any other model string a ``LiteLLMClient``.
    Both retry rate limits, server errors and failed connections themselves
    (``retry=``, a ``RetryPolicy``; each retry is an event).  ``settings`` (temperature,
    max_tokens ...) go with every call.
    """
    from .litellm_client import LiteLLMClient
    from .openai_client import OpenAIClient
    from .router import RoutedLLM
    from .scripted import ScriptedLLM

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
            client = OpenAIClient if through_openai_sdk(choice.model, config, settings) else LiteLLMClient
            llm = client(
                choice.model, bus=bus, api_base=api_base, api_key=api_key, timeout=timeout, config=config, **settings
            )
    llm.notice = choice.notice
    return llm


def preload_for(model: str | None = None, *, config: Settings | None = None) -> threading.Thread | None:
    """Start importing, in a background thread, the library ``model`` will be spoken to through.

    The openai SDK for an OpenAI model (half a second), litellm for the rest
    (seconds); nothing for the offline model.  ``model`` as for ``get_llm``.
    """
    config = config or Settings()
    choice = choose_model(model, config)
    if choice.offline:
        return None
    # An alias loads what its target needs: the Router's litellm only when the route needs it.
    target = direct_target(resolve_aliases(None, config).get(choice.model, choice.model), config)
    if target == OFFLINE_MODEL:
        return None
    if target is not None:
        from .openai_client import load_openai_sdk

        thread = threading.Thread(target=load_openai_sdk, name="llmgine-openai-import", daemon=True)
        thread.start()
        return thread
    return preload()

"""Our own small hierarchy of model errors, and the mapping from litellm's.

Every error a model call raises is an ``LLMError`` with a ``kind`` the
engine can act on (say what to do, retry, give up) and a message that is a
readable sentence, not a provider's stack of prefixes.  ``from_exception``
turns anything litellm, the OpenAI SDK or the network raises into one.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any, Literal

__all__ = [
    "ErrorKind",
    "LLMError",
    "LLMAuthenticationError",
    "LLMRateLimitError",
    "LLMTimeoutError",
    "ContextTooLongError",
    "ContentFilterError",
    "BadResponseError",
    "LLMConnectionError",
    "ScriptExhaustedError",
    "RealModelsBlockedError",
    "StructuredOutputError",
    "ModelConfigError",
    "ModelStringError",
    "from_exception",
]

ErrorKind = Literal[
    "authentication",
    "rate_limit",
    "timeout",
    "context_too_long",
    "content_filter",
    "bad_response",
    "connection",
    "other",
]

#: Kinds that a later attempt may well get past.
RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limit", "timeout", "connection"})


class LLMError(Exception):
    """A model call failed.  ``kind`` says how; ``str(error)`` says what to do."""

    kind: ErrorKind = "other"
    hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
        error_type: str | None = None,
    ) -> None:
        self.detail = message
        self.model = model
        self.provider = provider
        self.status_code = status_code
        self.retryable = (self.kind in RETRYABLE_KINDS) if retryable is None else retryable
        #: The class name of the original exception (e.g. litellm's), for logs and events.
        self.error_type = error_type or type(self).__name__
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        where = f" ({self.model})" if self.model else ""
        text = f"{self.detail.rstrip('.')}{where}."
        return f"{text} {self.hint}" if self.hint else text


class LLMAuthenticationError(LLMError):
    kind = "authentication"
    hint = (
        "Check the API key for this provider: `%llmgine keys` (or llmgine_nb.llm.key_status()) "
        "shows which keys are set."
    )


class LLMRateLimitError(LLMError):
    kind = "rate_limit"
    hint = "Wait a little and try again, or route to another model with fallbacks."


class LLMTimeoutError(LLMError):
    kind = "timeout"
    hint = "Try again, or allow more time with the timeout setting."


class ContextTooLongError(LLMError):
    kind = "context_too_long"
    hint = "Shorten the conversation (drop or summarise old messages) or use a model with a larger context."


class ContentFilterError(LLMError):
    kind = "content_filter"
    hint = "The provider's safety filter refused this request; rephrase it."


class BadResponseError(LLMError):
    kind = "bad_response"
    hint = "The model's server sent something that is not a valid reply; try again or check the server (api_base)."


class LLMConnectionError(LLMError):
    kind = "connection"
    hint = "Check the network and the api_base address, then try again."


class ScriptExhaustedError(LLMError):
    """The offline scripted model was called more times than its script has replies."""

    hint = "Add more replies to the script, or give ScriptedLLM a function instead of a list."


class RealModelsBlockedError(LLMError):
    """A real model was called while real model calls are blocked (test suites)."""

    hint = (
        "Use the offline model (model='scripted') here, or allow real calls with "
        "llmgine_nb.llm.allow_real_models()."
    )


class StructuredOutputError(LLMError):
    """The model's reply did not validate against the requested schema, even after a retry."""

    kind = "bad_response"
    hint = "Simplify the output model, or use a stronger model."


class ModelConfigError(LLMError):
    """A model or alias is not configured the way the call needs."""


class ModelStringError(ModelConfigError):
    """The model string names no provider litellm knows (e.g. ``gpt4`` or ``llama3`` alone)."""

    hint = (
        "Model strings look like provider/model, e.g. 'openai/gpt-4o-mini', "
        "'anthropic/claude-3-5-haiku-latest' or 'ollama/llama3'."
    )


# -- mapping ------------------------------------------------------------------

_PREFIXES = re.compile(
    r"^(?:(?:litellm\.)?[A-Za-z]*(?:Error|Exception|Timeout)(?: - |: )\s*)+", re.UNICODE
)


def clean_message(text: str) -> str:
    """The provider's own words, without litellm's stacked class-name prefixes."""
    first = text.strip().split("\n\n", 1)[0]  # litellm appends debug paragraphs after a blank line
    cleaned = _PREFIXES.sub("", first).strip()
    return cleaned or first or "no details given"


_BAD_RESPONSE_HINTS = (
    "json",
    "unterminated string",
    "expecting value",
    "empty or invalid response",
    "invalid response",
    "extra data",
)
_FILTER_HINTS = ("content_policy", "content policy", "safety system", "content filter", "content_filter")


# litellm raises these before any request when no key is configured; the
# OpenAI path wraps it as a 500 "InternalServerError", so the status code lies.
_MISSING_KEY = re.compile(
    r"missing credentials|missing [\w ]*api key|no (?:api )?key is set|api_key|"
    r"api key (?:is )?(?:missing|not set|not found|required)",
    re.IGNORECASE,
)
_NO_PROVIDER = "llm provider not provided"


def _missing_key(message: str, provider: str | None, kw: dict[str, Any]) -> LLMAuthenticationError:
    from .config import PROVIDER_KEYS  # config imports nothing of ours; lazy keeps this module standalone

    names = PROVIDER_KEYS.get(provider or "", ())
    where = f" for {provider}" if provider else ""
    if names:
        return LLMAuthenticationError(
            f"No API key was found{where}: set {' or '.join(names)} in the environment or a .env file", **kw
        )
    return LLMAuthenticationError(f"No API key was found{where} ({message.rstrip('.')})", **kw)


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def from_exception(exc: BaseException, *, model: str | None = None, provider: str | None = None) -> LLMError:
    """Our error for ``exc`` (an exception from litellm, the SDKs or the network)."""
    if isinstance(exc, LLMError):
        if model and not exc.model:
            exc.model = model
        return exc
    raw = str(exc) or type(exc).__name__
    message = clean_message(raw)
    lowered = raw.lower()
    status = _status(exc)
    kw = {"model": model, "provider": provider, "status_code": status, "error_type": type(exc).__name__}
    names = {klass.__name__ for klass in type(exc).__mro__}
    litellm = sys.modules.get("litellm")

    def isa(name: str) -> bool:
        klass = getattr(litellm, name, None) if litellm is not None else None
        return (isinstance(klass, type) and isinstance(exc, klass)) or name in names

    if _NO_PROVIDER in lowered:
        return ModelStringError("The model string names no provider litellm knows", **kw)
    if isa("ContextWindowExceededError"):
        return ContextTooLongError(message, **kw)
    if isa("ContentPolicyViolationError") or any(h in lowered for h in _FILTER_HINTS):
        return ContentFilterError(message, **kw)
    if _MISSING_KEY.search(raw):
        if provider is None and model:
            from .config import provider_of

            provider = kw["provider"] = provider_of(model)
        return _missing_key(message, provider, kw)
    if isa("AuthenticationError") or isa("PermissionDeniedError") or status in (401, 403):
        return LLMAuthenticationError(message, **kw)
    if isa("RateLimitError") or status == 429:
        return LLMRateLimitError(message, **kw)
    if isa("Timeout") or isa("APITimeoutError") or isa("TimeoutException") or isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return LLMTimeoutError(message, **kw)
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)) or any(h in lowered for h in _BAD_RESPONSE_HINTS):
        return BadResponseError(message, **kw)
    if isa("NotFoundError") or status == 404:
        return ModelConfigError(
            f"The provider does not know this model or address: {message}. "
            "Check the model name and api_base",
            **kw,
        )
    if isa("APIConnectionError") or isinstance(exc, (ConnectionError, OSError)) or "connect" in lowered:
        return LLMConnectionError(message, **kw)
    if status is not None and status >= 500:
        return LLMError(f"The model's server failed: {message}", retryable=True, **kw)
    return LLMError(message, **kw)

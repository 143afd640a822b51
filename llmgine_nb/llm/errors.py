"""Our own small hierarchy of model errors, and the mapping from litellm's.

Every error a model call raises is an ``LLMError`` with a ``kind`` the
engine can act on (say what to do, retry, give up) and a message that is a
readable sentence, not a provider's stack of prefixes.  ``from_exception``
turns anything litellm, the OpenAI SDK or the network raises into one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from typing import Any, Literal

__all__ = [
    "ErrorKind",
    "LLMError",
    "LLMAuthenticationError",
    "MissingAPIKeyError",
    "LLMRateLimitError",
    "LLMTimeoutError",
    "ContextTooLongError",
    "ContentFilterError",
    "BadResponseError",
    "LLMConnectionError",
    "LLMServerError",
    "ScriptExhaustedError",
    "RealModelsBlockedError",
    "StructuredOutputError",
    "ModelConfigError",
    "ModelStringError",
    "from_exception",
]

ErrorKind = Literal[
    "authentication",
    "no_api_key",
    "rate_limit",
    "timeout",
    "context_too_long",
    "content_filter",
    "bad_response",
    "connection",
    "server_error",
    "config",
    "other",
]

#: Kinds that a later attempt may well get past.
RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limit", "timeout", "connection", "server_error"})

#: How much of a provider's own words goes into the message; the whole text goes to the log.
MAX_DETAIL = 300

log = logging.getLogger("llmgine_nb.llm")


class LLMError(Exception):
    """A model call failed.  ``kind`` says how; ``str(error)`` says what happened and what to do.

    ``what`` opens the sentence (what happened, in words: "Rate limited by the
    provider"); ``detail`` is the provider's own words, cut to ``MAX_DETAIL``
    characters (``full_detail`` keeps them whole).  ``retry_after``: seconds
    the provider asked to wait.  ``partial_text``: the part of a streamed reply
    that arrived before the failure (kept by the engine, marked interrupted).
    """

    kind: ErrorKind = "other"
    what: str = ""
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
        retry_after: float | None = None,
        what: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.full_detail = message
        self.detail = _clip(message)
        self.model = model
        self.provider = provider
        self.status_code = status_code
        self.retryable = (self.kind in RETRYABLE_KINDS) if retryable is None else retryable
        #: The class name of the original exception (e.g. litellm's), for logs and events.
        self.error_type = error_type or type(self).__name__
        self.retry_after = retry_after
        if what is not None:
            self.what = what
        if hint is not None:
            self.hint = hint
        self.partial_text = ""
        super().__init__(message)

    @property
    def interrupted(self) -> bool:
        """Whether part of a streamed reply had arrived when the call failed."""
        return bool(self.partial_text)

    def __str__(self) -> str:
        return self._sentence()

    def _sentence(self) -> str:
        where = f" ({self.model})" if self.model else ""
        detail = self.detail.rstrip(". ")
        if detail.lower() in _GENERIC_DETAILS:
            detail = ""  # "Connection error" says less than ``what`` already does
        if self.what and detail and detail.lower() not in self.what.lower():
            head = f"{self.what}: {detail}"
        else:
            head = self.what or detail or "The model call failed"
        text = f"{head}{where}."
        if self.partial_text:
            text += f" {len(self.partial_text):,} characters of the reply had arrived; they are kept, marked interrupted."
        return f"{text} {self.hint}" if self.hint else text


_GENERIC_DETAILS = frozenset({"connection error", "error", "no details given", "internal server error"})


def _clip(text: str) -> str:
    if len(text) <= MAX_DETAIL:
        return text
    return f"{text[:MAX_DETAIL].rstrip()}... [{len(text) - MAX_DETAIL:,} more characters in the log]"


class LLMAuthenticationError(LLMError):
    kind: ErrorKind = "authentication"
    what = "The provider refused the API key"
    hint = "Check the API key for this provider (llmgine_nb.llm.key_status() shows which keys are set)."


class MissingAPIKeyError(LLMAuthenticationError):
    """No API key is configured for the provider (nothing was sent)."""

    kind = "no_api_key"
    what = ""
    hint = ""  # the message itself names the variable to set, and where (a front end adds how to check)


class LLMRateLimitError(LLMError):
    kind = "rate_limit"
    what = "Rate limited by the provider"
    hint = "Wait a little and try again, or route to another model with fallbacks."


class LLMTimeoutError(LLMError):
    kind = "timeout"
    what = "The model did not answer in time"
    hint = "Try again, or allow more time with the timeout setting."


class ContextTooLongError(LLMError):
    kind = "context_too_long"
    hint = "Shorten the conversation (drop or summarise old messages) or use a model with a larger context."


class ContentFilterError(LLMError):
    kind = "content_filter"
    hint = "The provider's safety filter refused this request; rephrase it."


class BadResponseError(LLMError):
    kind = "bad_response"
    what = "The model's server sent something that is not a valid reply"
    hint = "Try again; if it keeps happening, check the model's server (api_base)."


class LLMConnectionError(LLMError):
    kind = "connection"
    what = "The connection to the model's server failed"
    hint = "Check the network and the api_base address, then try again."


class LLMServerError(LLMError):
    """The provider's server answered 5xx: its own failure, often temporary."""

    kind = "server_error"
    what = "The model's server failed"
    hint = "This is usually temporary: try again in a moment."


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

    kind = "config"


class ModelStringError(ModelConfigError):
    """The model string names no provider litellm knows (e.g. ``gpt4`` or ``llama3`` alone)."""

    hint = (
        "Model strings look like provider/model, e.g. 'openai/gpt-4o-mini', "
        "'anthropic/claude-3-5-haiku-latest' or 'ollama/llama3'; or use an alias, fast or smart, "
        "set with LLMGINE_FAST_MODEL / LLMGINE_SMART_MODEL."
    )


# -- mapping ------------------------------------------------------------------

_PREFIXES = re.compile(
    r"^(?:(?:litellm\.)?[A-Za-z]*(?:Error|Exception|Timeout)(?: - |: )\s*)+", re.UNICODE
)


# The openai SDK opens its messages with the status: "Error code: 429 - Rate limit reached ...".
_STATUS_PREFIX = re.compile(r"^Error code: \d{3} - ")

_CHAIN = re.compile(r"\s*(?:Original exception|Received Model Group|Available Model Group Fallbacks)\b.*", re.DOTALL)


def clean_message(text: str) -> str:
    """The provider's own words, without litellm's stacked class-name prefixes or repeated chains.

    "Connection error. Original exception: APIConnectionError: litellm.APIConnectionError: ..."
    becomes "Connection error."
    """
    first = text.strip().split("\n\n", 1)[0]  # litellm appends debug paragraphs after a blank line
    cleaned = _STATUS_PREFIX.sub("", _PREFIXES.sub("", first).strip()).strip()
    unchained = _CHAIN.sub("", cleaned).strip()
    if unchained:
        cleaned = unchained
    elif cleaned:  # the chain was all there was: keep its last link only
        cleaned = _PREFIXES.sub("", cleaned.rsplit("Original exception:", 1)[-1]).strip()
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


def _missing_key(message: str, provider: str | None, common: dict[str, Any]) -> MissingAPIKeyError:
    from .config import PROVIDER_KEYS  # config imports nothing of ours; lazy keeps this module standalone

    names = PROVIDER_KEYS.get(provider or "", ())
    where = f" for {provider}" if provider else ""
    common = {**common, "provider": provider}
    if names:
        return MissingAPIKeyError(
            f"No API key was found{where}: set {' or '.join(names)} in the environment or a .env file", **common,
        )
    return MissingAPIKeyError(f"No API key was found{where} ({message.rstrip('.')})", **common)


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait (``Retry-After`` / ``retry-after-ms``), if it said."""
    for source in (exc, exc.__cause__, exc.__context__):
        if source is None:
            continue
        headers = getattr(getattr(source, "response", None), "headers", None) or getattr(
            source, "litellm_response_headers", None
        )
        if headers is None:
            continue
        try:
            millis = headers.get("retry-after-ms")
            if millis is not None:
                return max(0.0, float(millis) / 1000)
            seconds = headers.get("retry-after")
            if seconds is not None:
                return max(0.0, float(seconds))  # an HTTP date is rare from model APIs: then no hint
        except (TypeError, ValueError, AttributeError):
            continue
    return None


def _log_full_text(raw: str, model: str | None) -> None:
    """The provider's whole error text, for the log (the message carries a readable cut)."""
    if len(raw) <= MAX_DETAIL or not log.isEnabledFor(logging.INFO):
        return
    try:
        from ..secrets import Redactor  # provider errors may echo what was sent, keys included

        raw = Redactor().text(raw)
    except Exception:  # noqa: BLE001 - without a redactor, the text is not logged at all
        return
    log.info("full error text from %s (%d characters): %s", model or "the model", len(raw), raw)


def from_exception(exc: BaseException, *, model: str | None = None, provider: str | None = None) -> LLMError:
    """Our error for ``exc`` (an exception from litellm, the SDKs or the network)."""
    if isinstance(exc, LLMError):
        if model and not exc.model:
            exc.model = model
        return exc
    raw = str(exc) or type(exc).__name__
    message = clean_message(raw)
    _log_full_text(raw, model)
    lowered = raw.lower()
    status = _status(exc)
    common: dict[str, Any] = {
        "model": model, "provider": provider, "status_code": status, "error_type": type(exc).__name__,
    }
    names = {klass.__name__ for klass in type(exc).__mro__}
    litellm = sys.modules.get("litellm")

    def isa(name: str) -> bool:
        klass = getattr(litellm, name, None) if litellm is not None else None
        return (isinstance(klass, type) and isinstance(exc, klass)) or name in names

    if _NO_PROVIDER in lowered:
        return ModelStringError("The model string names no provider litellm knows", **common)
    if isa("ContextWindowExceededError") or getattr(exc, "code", None) == "context_length_exceeded":
        return ContextTooLongError(message, **common)
    if isa("ContentPolicyViolationError") or any(h in lowered for h in _FILTER_HINTS):
        return ContentFilterError(message, **common)
    if _MISSING_KEY.search(raw):
        if provider is None and model:
            from .config import provider_of

            provider = provider_of(model)
        return _missing_key(message, provider, common)
    if isa("AuthenticationError") or isa("PermissionDeniedError") or status in (401, 403):
        return LLMAuthenticationError(message, **common)
    if isa("RateLimitError") or status == 429:
        return LLMRateLimitError(message, retry_after=retry_after_of(exc), **common)
    if isa("Timeout") or isa("APITimeoutError") or isa("TimeoutException") or isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return LLMTimeoutError(message, **common)
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)) or any(h in lowered for h in _BAD_RESPONSE_HINTS):
        return BadResponseError(message, **common)
    if isa("NotFoundError") or status == 404:
        return ModelConfigError(
            f"The provider does not know this model or address: {message}. "
            "Check the model name and api_base",
            **common,
        )
    if isa("APIConnectionError") or isinstance(exc, (ConnectionError, OSError)) or "connect" in lowered:
        return LLMConnectionError(message, **common)
    if status is not None and status >= 500:
        return LLMServerError(message, retry_after=retry_after_of(exc), **common)
    return LLMError(message, **common)

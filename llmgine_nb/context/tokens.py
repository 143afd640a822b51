"""Counting tokens: litellm's tokenizers for real models once litellm is loaded, a quick estimate until then.

litellm takes seconds to import, and a model spoken to through the openai
SDK never needs it: a real model's messages are estimated (three characters
a token, erring high so a budget is not overrun) until litellm is loaded for some other reason (another provider,
routing, the user), and counted by its tokenizer from then on.  The switch
empties the cache, so a history is never counted half one way and half the
other.  Counts are cached per message (its role and a hash of what it
says), so a long history is counted once and each later turn only counts
what is new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..chat import ChatMessage
from ..images import image_tokens
from ..text import estimate_tokens

__all__ = ["TokenCounter", "is_offline_model", "estimate_text_tokens"]

log = logging.getLogger("llmgine_nb.context")

# Models that never reach a provider: the offline scripted model (and its
# variants, e.g. "scripted/echo") is counted with the estimate.
_OFFLINE_PREFIXES = ("scripted",)

# Per-message framing the chat formats add around the content (role, separators).
MESSAGE_OVERHEAD = 4
# The estimate is the package's one (llmgine_nb.text); the context package calls it by this name.
estimate_text_tokens = estimate_tokens


def _litellm_loaded() -> bool:
    from ..llm._litellm import litellm_loaded

    return litellm_loaded()


def _load_litellm() -> Any:
    """litellm, imported on first use through the LLM layer's loader (offline cost
    map, litellm's log lines kept out of cell output)."""
    from ..llm._litellm import load_litellm

    return load_litellm()


def is_offline_model(model: str | None) -> bool:
    """True for models counted with the estimate (no model, or the scripted model)."""
    return model is None or model.startswith(_OFFLINE_PREFIXES)


def cautious_text_tokens(text: str | None) -> int:
    """An estimate that errs high, for a real model until its tokenizer is there.

    Three characters a token rather than four: real text often has fewer
    characters a token than four (numbers, code, other languages), and a
    context budget must not be overrun because of an estimate.
    """
    return -(-len(text) // 3) if text else 0


def _estimate_message(message: ChatMessage, estimate: Callable[[str | None], int] = estimate_text_tokens) -> int:
    tokens = MESSAGE_OVERHEAD + estimate(message.content)
    for call in message.tool_calls:
        tokens += MESSAGE_OVERHEAD + estimate(call.name) + estimate(call.raw_arguments)
    return tokens


class TokenCounter:
    """Counts tokens of ChatMessages for one model, caching each message's count.

    ``model`` is a litellm model name; ``estimate=True`` forces the quick
    estimate (the default for offline models).  A real model is estimated
    until litellm has been loaded (the counter never imports it), then
    counted by litellm's tokenizer; ``estimate`` says which applies now.
    """

    def __init__(self, model: str | None = None, *, estimate: bool | None = None, max_cached: int = 200_000) -> None:
        self.model = model
        #: Estimate for good: an offline model, asked for, or litellm could not count this model.
        self._estimate_only = is_offline_model(model) if estimate is None else estimate
        self._exact = False  # counting with litellm (it was loaded when last asked)
        self.max_cached = max_cached
        self._cache: dict[tuple[Any, ...], int] = {}
        self._litellm_counter: Any = None
        self._priming: int | None = None
        self.counted = 0  # messages actually counted (cache misses); lets tests see the cache work

    @property
    def estimate(self) -> bool:
        """Whether counts are estimates now (rather than litellm's tokenizer's)."""
        if self._estimate_only:
            return True
        if not self._exact and _litellm_loaded():
            # litellm arrived: from now on count exactly, starting again so no history mixes the two.
            self._exact = True
            self._cache.clear()
            self._priming = None
        return not self._exact

    @estimate.setter
    def estimate(self, value: bool) -> None:
        self._estimate_only = value
        if value:
            self._exact = False
            self._cache.clear()
            self._priming = None

    @property
    def _estimator(self) -> Callable[[str | None], int]:
        """The plain estimate where it is the way to count; the cautious one while waiting for litellm."""
        return estimate_text_tokens if self._estimate_only else cautious_text_tokens

    # -- the two ways of counting ------------------------------------------

    def _count_with_litellm(self, messages: list[dict[str, Any]]) -> int:
        if self._litellm_counter is None:
            self._litellm_counter = _load_litellm().token_counter
        return int(self._litellm_counter(model=self.model, messages=messages))

    @property
    def priming(self) -> int:
        """Tokens a request costs beyond its messages (the reply primer); 0 for the estimate."""
        if self._priming is None:
            self._priming = 0 if self.estimate else self._safe_litellm_count([])
        return self._priming

    def _safe_litellm_count(self, messages: list[dict[str, Any]]) -> int:
        try:
            return self._count_with_litellm(messages)
        except Exception as exc:  # litellm raises many types for unknown models/inputs
            log.warning(
                "litellm could not count tokens for model %r (%s); using the estimate instead", self.model, exc
            )
            self.estimate = True
            return 0

    # -- public --------------------------------------------------------------

    def _key(self, message: ChatMessage) -> tuple[Any, ...]:
        # Keyed on what is counted, not on the id: a system prompt rebuilt for
        # every compile (a new message, a new id) is still counted only once.
        if message.tool_calls:
            return (
                message.role,
                message.name,
                hash(message.content),
                tuple(hash((c.id, c.name, c.raw_arguments)) for c in message.tool_calls),
            )
        return (message.role, message.name, hash(message.content))

    def count(self, message: ChatMessage) -> int:
        """Tokens of one message as sent (content, tool calls, images and framing)."""
        key = self._key(message)
        if message.images:
            key += tuple(image.sha256 for image in message.images)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.counted += 1
        # Images are counted by the provider's rule for their size, whichever way the text is counted.
        images = sum(image_tokens(image.width, image.height) for image in message.images)
        text = message.model_copy(update={"images": []}) if message.images else message
        if self.estimate:
            tokens = _estimate_message(text, self._estimator) + images
        else:
            tokens = self._safe_litellm_count([text.to_openai()]) - self.priming + images
            if self.estimate:  # litellm just failed: fall back for this one too
                tokens = _estimate_message(text) + images
        if len(self._cache) >= self.max_cached:
            self._cache.clear()  # crude but bounded; a long-lived kernel must not grow forever
        self._cache[key] = tokens
        return tokens

    def count_messages(self, messages: Iterable[ChatMessage]) -> int:
        """Tokens of a whole request made of these messages."""
        return sum(self.count(m) for m in messages) + self.priming

    def count_text(self, text: str) -> int:
        """Tokens of a bare string (no message framing)."""
        if self.estimate:
            return self._estimator(text)
        try:
            return int(_load_litellm().token_counter(model=self.model, text=text))
        except Exception as exc:
            log.warning("litellm could not count tokens for model %r (%s); using the estimate", self.model, exc)
            return estimate_text_tokens(text)

    def clear(self) -> None:
        self._cache.clear()

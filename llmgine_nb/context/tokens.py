"""Counting tokens: litellm's tokenizers for real models, a quick estimate offline.

Counts are cached per message (its id plus a hash of what it says), so a
long history is counted once and each later turn only counts what is new.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
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


def _load_litellm() -> Any:
    """litellm, imported on first use through the LLM layer's loader (offline cost
    map, litellm's log lines kept out of cell output)."""
    from ..llm._litellm import load_litellm

    return load_litellm()


def is_offline_model(model: str | None) -> bool:
    """True for models counted with the estimate (no model, or the scripted model)."""
    return model is None or model.startswith(_OFFLINE_PREFIXES)


def _estimate_message(message: ChatMessage) -> int:
    tokens = MESSAGE_OVERHEAD + estimate_text_tokens(message.content)
    for call in message.tool_calls:
        tokens += MESSAGE_OVERHEAD + estimate_text_tokens(call.name) + estimate_text_tokens(call.raw_arguments)
    return tokens


class TokenCounter:
    """Counts tokens of ChatMessages for one model, caching each message's count.

    ``model`` is a litellm model name; ``estimate=True`` forces the quick
    estimate (the default for offline models).  litellm is imported on the
    first real count, never before.
    """

    def __init__(self, model: str | None = None, *, estimate: bool | None = None, max_cached: int = 200_000) -> None:
        self.model = model
        self.estimate = is_offline_model(model) if estimate is None else estimate
        self.max_cached = max_cached
        self._cache: dict[tuple[Any, ...], int] = {}
        self._litellm_counter: Any = None
        self._priming: int | None = None
        self.counted = 0  # messages actually counted (cache misses); lets tests see the cache work

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
            tokens = _estimate_message(text) + images
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
            return estimate_text_tokens(text)
        try:
            return int(_load_litellm().token_counter(model=self.model, text=text))
        except Exception as exc:
            log.warning("litellm could not count tokens for model %r (%s); using the estimate", self.model, exc)
            return estimate_text_tokens(text)

    def clear(self) -> None:
        self._cache.clear()

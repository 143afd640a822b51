"""What a model call cost, from litellm's price list.

Before litellm is imported (a model spoken to through the openai SDK needs
no litellm), prices come from litellm's price list read as a data file
(``price_list.py``): milliseconds instead of seconds.  Once litellm is
loaded, litellm itself prices calls (so prices registered with
``litellm.register_model`` count), as follows.

``litellm.cost_per_token`` takes ~80 us a call (it resolves the model name
and walks its pricing rules every time), which on a short turn is a tenth of
the engine's whole overhead.  Most models are priced per token, flat: cost =
input x a + cached input x b + output x c.  For those, the three unit prices
are read once through ``cost_per_token`` itself and checked against it at
two mixed points (one past every context window, where tiered prices such
as "above 128k tokens" would show); a model whose prices fail the check
(tiers, a fee per request) keeps asking litellm on every call.
"""

from __future__ import annotations

import logging
import math
import threading

from ..chat import Usage
from ._litellm import litellm_loaded, load_litellm
from .price_list import FlatPrices, flat_prices

__all__ = ["cost_of"]

log = logging.getLogger("llmgine_nb.llm")

_UNIT = 1_000
# (input, output, cached) usages the flat prices must reproduce exactly.
_CHECKS = ((37, 11, 5), (1_000_000, 300_000, 400_000))


_ASK_LITELLM = object()  # the model's prices are not flat: ask litellm on every call
_prices: dict[str, object] = {}  # model -> FlatPrices, _ASK_LITELLM, or None (no price)
_lock = threading.Lock()


def _litellm_cost(model: str, input_tokens: int, output_tokens: int, cached_tokens: int) -> float:
    prompt_cost, completion_cost = load_litellm().cost_per_token(
        model=model,
        prompt_tokens=input_tokens,
        completion_tokens=output_tokens,
        cache_read_input_tokens=cached_tokens,
    )
    return float(prompt_cost) + float(completion_cost)


def _learn_prices(model: str) -> object:
    try:
        flat = FlatPrices(
            input=_litellm_cost(model, _UNIT, 0, 0) / _UNIT,
            output=_litellm_cost(model, 0, _UNIT, 0) / _UNIT,
            cached=_litellm_cost(model, _UNIT, 0, _UNIT) / _UNIT,
        )
        for input_tokens, output_tokens, cached_tokens in _CHECKS:
            expected = _litellm_cost(model, input_tokens, output_tokens, cached_tokens)
            usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cached_tokens=cached_tokens)
            if not math.isclose(flat.cost(usage), expected, rel_tol=1e-9, abs_tol=1e-12):
                return _ASK_LITELLM
    except Exception as exc:  # litellm raises several types for "no price for this model"
        log.debug("no price for %s: %s", model, type(exc).__name__)
        return None
    return flat


def cost_of(model: str, usage: Usage) -> float | None:
    """The cost in USD of ``usage`` on ``model`` from litellm's price list; None if unknown."""
    if not litellm_loaded():
        from_file = flat_prices(model, usage)
        if from_file is None:
            return None
        if isinstance(from_file, FlatPrices):
            return from_file.cost(usage)
        # Pricing the file reading does not cover (tiers this usage reaches): litellm's rules decide.
    if model not in _prices:
        with _lock:
            if model not in _prices:
                _prices[model] = _learn_prices(model)
    prices = _prices[model]
    if prices is None:
        return None
    # Cached tokens are part of the input tokens; a usage saying otherwise is litellm's to price.
    if isinstance(prices, FlatPrices) and usage.cached_tokens <= usage.input_tokens:
        return prices.cost(usage)
    try:
        return _litellm_cost(model, usage.input_tokens, usage.output_tokens, usage.cached_tokens)
    except Exception as exc:  # priced at the check, refused now: unknown rather than wrong
        log.debug("no price for %s at %s: %s", model, usage, type(exc).__name__)
        return None

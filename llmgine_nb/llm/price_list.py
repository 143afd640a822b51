"""litellm's price list, read as a data file: prices and facts about a model without importing litellm.

litellm ships its price list as a JSON file in its package
(``model_prices_and_context_window_backup.json``, the one it uses itself
when ``LITELLM_LOCAL_MODEL_COST_MAP`` is set, as we set it).  Importing
litellm takes seconds and ~250 MB; reading the one entry a model needs
takes milliseconds.  The file is found through ``importlib`` (where the
package is, without importing it) and is read once; only the entries asked
for are parsed and kept.

``flat_prices(model, usage)`` gives the unit prices that apply to a usage
when they are plain per-token prices (most models), ``ASK_LITELLM`` when the
entry has pricing this reading does not cover (tiers past a context size the
usage reaches, tiered pricing tables), and None for a model the list does not
know.  ``tests/test_price_list.py`` checks it against litellm's own
``cost_per_token`` across the list.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..chat import Usage

__all__ = ["FlatPrices", "ASK_LITELLM", "entry", "flat_prices", "supports_response_schema"]

log = logging.getLogger("llmgine_nb.llm")

_FILE_NAME = "model_prices_and_context_window_backup.json"
# The part of a price key naming a context size past which another price applies ("_above_272k_tokens").
_THRESHOLD = re.compile(r"_above_(\d+)(k?)_tokens")
# Only the three prices a chat usage needs; other keys (batches, priority, audio ...) do not apply to it.
_TIERED_KEYS = ("input_cost_per_token_above_", "output_cost_per_token_above_", "cache_read_input_token_cost_above_")


@dataclass(frozen=True)
class FlatPrices:
    """USD per token: cost = uncached input x ``input`` + cached x ``cached`` + output x ``output``."""

    input: float
    output: float
    cached: float

    def cost(self, usage: Usage) -> float:
        uncached = usage.input_tokens - usage.cached_tokens
        return uncached * self.input + usage.cached_tokens * self.cached + usage.output_tokens * self.output


ASK_LITELLM = object()  # the entry's pricing needs litellm's own rules for this usage

_lock = threading.Lock()
_text: str | None = None
_entries: dict[str, dict[str, Any] | None] = {}


def _price_file() -> Path | None:
    spec = importlib.util.find_spec("litellm")  # finds the package; does not import it
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / _FILE_NAME
        if path.is_file():
            return path
    return None


def _file_text() -> str:
    global _text
    if _text is None:
        path = _price_file()
        _text = path.read_text(encoding="utf-8") if path is not None else ""
    return _text


def _parse_entry(name: str, hops: int = 3) -> dict[str, Any] | None:
    text = _file_text()
    # Top-level keys sit at the start of a line; parse only that entry's object.
    key = json.dumps(name)
    at = text.find(f"\n    {key}: {{")
    if at < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, text.index("{", at))
    except ValueError:
        log.debug("the price list entry for %s is not readable JSON", name)
        return None
    if not isinstance(value, dict):
        return None
    alias = value.get("alias_of")  # e.g. "gpt-mini-latest" names the entry of the model it points at
    if isinstance(alias, str) and hops > 0:
        return _parse_entry(alias, hops - 1)
    return value


def entry(model: str) -> dict[str, Any] | None:
    """The price list's entry for ``model`` (``openai/gpt-4o-mini`` or ``gpt-4o-mini``), or None."""
    if model in _entries:
        return _entries[model]
    with _lock:
        if model not in _entries:
            found = _parse_entry(model)
            if found is None and "/" in model:
                provider, bare = model.split("/", 1)
                found = _parse_entry(bare)
                if found is not None and found.get("litellm_provider") != provider:
                    found = None  # the same name priced for another provider
            _entries[model] = found
    return _entries[model]


def _threshold(key: str) -> int:
    match = _THRESHOLD.search(key)
    if match is None:
        return 0
    return int(match.group(1)) * (1000 if match.group(2) else 1)


def flat_prices(model: str, usage: Usage) -> FlatPrices | object | None:
    """The per-token prices that apply to ``usage`` on ``model``; ``ASK_LITELLM``; None if unpriced."""
    info = entry(model)
    if info is None:
        return None
    input_price, output_price = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if not isinstance(input_price, (int, float)) or not isinstance(output_price, (int, float)):
        return ASK_LITELLM if info.get("tiered_pricing") else None
    if info.get("tiered_pricing"):
        return ASK_LITELLM
    tiers = [_threshold(key) for key in info if key.startswith(_TIERED_KEYS)]
    if tiers and usage.input_tokens >= min(tiers):
        return ASK_LITELLM  # past the first context size with its own price: litellm's rules decide
    cached = info.get("cache_read_input_token_cost")
    return FlatPrices(
        input=float(input_price),
        output=float(output_price),
        cached=float(cached) if isinstance(cached, (int, float)) else float(input_price),
    )


def supports_response_schema(model: str) -> bool:
    """Whether the price list says ``model`` takes a JSON schema as ``response_format``."""
    info = entry(model)
    return bool(info and info.get("supports_response_schema"))

"""litellm's price list read as a data file (no litellm import) prices OpenAI models exactly as litellm does."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from llmgine_nb.chat import Usage
from llmgine_nb.llm import price_list
from llmgine_nb.llm._litellm import load_litellm


def _litellm_price(litellm, model: str, usage: Usage) -> float | None:
    try:
        prompt, completion = litellm.cost_per_token(
            model=model, prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cached_tokens,
        )
    except Exception:  # noqa: BLE001 - litellm cannot price it: nothing to compare
        return None
    return prompt + completion


def test_every_openai_chat_model_is_priced_as_litellm_prices_it() -> None:
    litellm = load_litellm()
    models = sorted(m for m, info in litellm.model_cost.items()
                    if info.get("litellm_provider") == "openai" and info.get("mode") == "chat")
    rnd = random.Random(14)
    compared = asked = 0
    for name in models:
        for model in {name, name if name.startswith("openai/") else f"openai/{name}"}:
            for _ in range(3):
                input_tokens = rnd.choice([rnd.randint(0, 2_000), rnd.randint(0, 400_000)])
                usage = Usage(input_tokens=input_tokens, output_tokens=rnd.randint(0, 20_000),
                              cached_tokens=rnd.randint(0, input_tokens))
                expected = _litellm_price(litellm, model, usage)
                prices = price_list.flat_prices(model, usage)
                if prices is price_list.ASK_LITELLM:
                    asked += 1  # past a tier (or a tiered table): pricing.cost_of asks litellm
                    continue
                if prices is None:  # no per-token prices in the entry (e.g. a per-session fee)
                    assert not expected, (model, usage, expected)
                    continue
                if expected is None:
                    continue
                assert isinstance(prices, price_list.FlatPrices), (model, usage)
                assert prices.cost(usage) == pytest.approx(expected, rel=1e-9, abs=1e-12), (model, usage)
                compared += 1
    assert compared > 500 and asked > 5, (compared, asked)


def test_aliases_unknown_models_and_other_providers() -> None:
    # "gpt-mini-latest" is an alias entry pointing at another model's prices.
    assert price_list.entry("openai/gpt-mini-latest")["litellm_provider"] == "openai"
    assert price_list.entry("openai/my-local-model") is None
    assert price_list.flat_prices("openai/my-local-model", Usage(input_tokens=5)) is None
    # A bare name priced for another provider is not that provider's model.
    assert price_list.entry("anthropic/gpt-4o-mini") is None
    assert price_list.supports_response_schema("openai/gpt-4o-mini")
    assert not price_list.supports_response_schema("openai/my-local-model")


_NO_LITELLM = """
import sys
from llmgine_nb.chat import Usage
from llmgine_nb.llm.pricing import cost_of
print(cost_of("openai/gpt-4o-mini", Usage(input_tokens=1000, output_tokens=1000, cached_tokens=400)))
print(cost_of("openai/my-local-model", Usage(input_tokens=10)))
print("litellm" in sys.modules)
"""


def test_pricing_before_litellm_is_loaded_reads_the_file_and_imports_nothing() -> None:
    out = subprocess.run([sys.executable, "-c", _NO_LITELLM], capture_output=True, text=True, check=True).stdout
    cost, unknown, imported = out.split()
    assert float(cost) == pytest.approx(600 * 0.15e-6 + 400 * 0.075e-6 + 1000 * 0.6e-6)
    assert (unknown, imported) == ("None", "False")

"""``cost_of`` prices a call from unit prices learned once; it must agree with litellm everywhere."""

from __future__ import annotations

import random

import pytest

from llmgine_nb.chat import Usage
from llmgine_nb.llm import pricing
from llmgine_nb.llm._litellm import load_litellm


@pytest.fixture(scope="module")
def litellm():
    return load_litellm()


def _litellm_price(litellm, model: str, usage: Usage) -> float:
    prompt, completion = litellm.cost_per_token(
        model=model, prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cached_tokens,
    )
    return prompt + completion


def test_agrees_with_litellm_across_its_price_list(litellm) -> None:
    chat_models = sorted(m for m, info in litellm.model_cost.items() if info.get("mode") == "chat")
    sample = chat_models[::12]  # a few hundred models from every provider, in a few seconds
    rnd = random.Random(7)
    kinds = {"flat": 0, "tiered": 0}
    for model in sample:
        if pricing.cost_of(model, Usage(input_tokens=1)) is None:
            continue
        kinds["tiered" if pricing._prices[model] is pricing._ASK_LITELLM else "flat"] += 1
        for _ in range(4):
            input_tokens = rnd.randint(0, 400_000)
            usage = Usage(
                input_tokens=input_tokens,
                output_tokens=rnd.randint(0, 30_000),
                cached_tokens=rnd.randint(0, input_tokens),
            )
            assert pricing.cost_of(model, usage) == pytest.approx(_litellm_price(litellm, model, usage), rel=1e-9), (
                model, usage,
            )
    # Both paths were exercised: most models are flat, some are tiered.
    assert kinds["flat"] > 100 and kinds["tiered"] > 5, kinds


def test_a_tiered_model_is_priced_above_its_tier(litellm) -> None:
    model = "anthropic.claude-sonnet-4-5-20250929-v1:0"  # dearer above 200k input tokens
    assert litellm.model_cost[model]["input_cost_per_token_above_200k_tokens"]
    small, large = Usage(input_tokens=1_000), Usage(input_tokens=300_000)
    assert pricing.cost_of(model, small) == pytest.approx(_litellm_price(litellm, model, small))
    assert pricing.cost_of(model, large) == pytest.approx(_litellm_price(litellm, model, large))
    assert pricing.cost_of(model, large) > 300 * pricing.cost_of(model, small)


def test_known_prices_and_unknown_models() -> None:
    # gpt-4o-mini: $0.15 in, $0.075 cached in, $0.60 out per million tokens in litellm's price list.
    usage = Usage(input_tokens=1_000, output_tokens=1_000, cached_tokens=400)
    assert pricing.cost_of("openai/gpt-4o-mini", usage) == pytest.approx(600 * 0.15e-6 + 400 * 0.075e-6 + 1000 * 0.6e-6)
    # ... through the flat prices learned once, not by asking litellm each time.
    assert isinstance(pricing._prices["openai/gpt-4o-mini"], pricing.FlatPrices)
    assert pricing.cost_of("openai/my-local-model", usage) is None
    assert pricing.cost_of("openai/my-local-model", usage) is None  # asked once, remembered

"""Aliases served without litellm: a route to an OpenAI model (or OpenAI-compatible
server) or to the offline model, with no fallbacks, is served by that client itself;
fallbacks, litellm's own settings and other providers still go through litellm's Router.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, Reply, fake_openai, rate_limited  # noqa: F401  (fake_openai is a fixture)

from llmgine_nb import MessageBus
from llmgine_nb.llm import (
    LLMCallFailed,
    LLMCallStarted,
    LLMEvent,
    LLMRateLimitError,
    RoutedLLM,
    Settings,
    block_real_models,
)
from llmgine_nb.llm.config import direct_target

TESTS = Path(__file__).resolve().parent

# A fresh interpreter, so that "litellm was never imported" means something.
_ALIAS_WITHOUT_LITELLM = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from fake_openai import FakeOpenAI, Reply
from llmgine_nb import MessageBus
from llmgine_nb.llm import LLMCallStarted, RoutedLLM, get_llm, preload_for

async def main():
    with FakeOpenAI() as server:
        sys.modules["os"].environ.update(
            LLMGINE_FAST_MODEL="openai/local-model", LLMGINE_API_BASE=server.base_url, OPENAI_API_KEY=server.api_key
        )
        thread = preload_for("fast")
        assert thread is not None and thread.name == "llmgine-openai-import", thread
        bus = MessageBus()
        started = []
        bus.subscribe(LLMCallStarted, started.append, inline=True)
        llm = get_llm("fast", bus=bus)
        assert isinstance(llm, RoutedLLM), llm
        server.add(Reply("hello from the alias"), Reply("streamed from the alias"))
        reply = await llm.complete("hi")
        streamed = await llm.stream("hi").get_response()
        assert (reply.text, reply.model) == ("hello from the alias", "openai/local-model"), reply
        assert (streamed.text, streamed.model) == ("streamed from the alias", "openai/local-model"), streamed
        assert [r.model for r in server.requests] == ["local-model", "local-model"]
        assert [e.model for e in started] == ["fast", "fast"]
        offline = get_llm("smart", aliases={{"smart": "scripted"}})
        assert (await offline.complete("echo me")).text, "the offline model answered nothing"
        assert preload_for("scripted") is None
    print("litellm" in sys.modules)

asyncio.run(main())
"""


def test_an_alias_for_an_openai_compatible_server_or_the_offline_model_never_imports_litellm(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("LLMGINE_")}
    script = tmp_path / "alias.py"
    script.write_text(_ALIAS_WITHOUT_LITELLM.format(tests=str(TESTS)))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", "litellm was imported"


def test_which_routes_are_served_without_the_router(tmp_path) -> None:
    config = Settings(env={}, dotenv_path=tmp_path / "none")
    assert direct_target("openai/gpt-4o-mini", config) == "openai/gpt-4o-mini"
    assert direct_target({"model": "openai/x", "api_base": "http://127.0.0.1:1/v1", "api_key": "k"}, config) == "openai/x"
    assert direct_target("scripted", config) == "scripted"
    assert direct_target("anthropic/claude-haiku-4-5", config) is None  # only litellm speaks to it
    assert direct_target({"model": "openai/x", "mock_response": "hi"}, config) is None  # litellm's own setting
    via_litellm = Settings(env={"LLMGINE_USE_LITELLM": "1"}, dotenv_path=tmp_path / "none")
    assert direct_target("openai/gpt-4o-mini", via_litellm) is None


async def test_a_call_with_a_litellm_setting_goes_through_the_router() -> None:
    llm = RoutedLLM({"fast": "openai/gpt-4o-mini"})
    with block_real_models():  # litellm's mock reply never leaves the process
        assert (await llm.complete("hi", mock_response="mocked by litellm")).text == "mocked by litellm"


async def test_a_direct_route_retries_as_many_times_as_the_router_would(fake_openai: FakeOpenAI) -> None:
    bus = MessageBus()
    seen: list[LLMEvent] = []
    bus.subscribe(LLMEvent, seen.append, inline=True)
    params = {"api_base": fake_openai.base_url, "api_key": fake_openai.api_key}
    llm = RoutedLLM({"fast": {"model": "openai/gpt-4o-mini", **params}}, num_retries=0, bus=bus)
    fake_openai.add(rate_limited(), Reply("never asked for"))
    with pytest.raises(LLMRateLimitError) as info:
        await llm.complete("hi")
    assert len(fake_openai.requests) == 1, "num_retries=0 sent the request again"
    assert "openai/gpt-4o-mini" in str(info.value)
    failed = [e for e in seen if isinstance(e, LLMCallFailed)]
    assert [(f.will_retry, f.model) for f in failed] == [(False, "fast")]
    assert [e.model for e in seen if isinstance(e, LLMCallStarted)] == ["fast"]

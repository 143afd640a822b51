"""Errors from anywhere below us become one of our kinds, with a sentence that says what to do."""

from __future__ import annotations

import asyncio
import json

import pytest

from llmgine_nb.llm import LLM, LiteLLMClient, RoutedLLM, ScriptedLLM
from llmgine_nb.llm.errors import (
    BadResponseError,
    LLMConnectionError,
    LLMError,
    LLMTimeoutError,
    ModelConfigError,
    clean_message,
    from_exception,
)


def test_plain_python_errors_map_to_kinds() -> None:
    assert isinstance(from_exception(asyncio.TimeoutError()), LLMTimeoutError)
    assert isinstance(from_exception(ConnectionRefusedError("refused")), LLMConnectionError)
    try:
        json.loads("{broken")
    except ValueError as exc:
        assert isinstance(from_exception(exc), BadResponseError)
    other = from_exception(RuntimeError("something odd"), model="m")
    assert type(other) is LLMError and other.kind == "other" and str(other) == "something odd (m)."


def test_our_errors_pass_through_unchanged() -> None:
    error = LLMTimeoutError("slow")
    assert from_exception(error, model="m") is error and error.model == "m"


def test_retryable_follows_the_kind() -> None:
    assert LLMTimeoutError("x").retryable and LLMConnectionError("x").retryable
    assert not BadResponseError("x").retryable
    assert LLMError("x", retryable=True).retryable


def test_clean_message_strips_litellms_stacked_prefixes() -> None:
    raw = (
        "litellm.BadRequestError: ContextWindowExceededError: OpenAIException - This model's maximum "
        "context length is 8192 tokens.\n\nLiteLLM: model group 'm' failed with the error above."
    )
    assert clean_message(raw) == "This model's maximum context length is 8192 tokens."
    assert clean_message("") == "no details given"


def test_every_model_client_follows_the_protocol() -> None:
    assert isinstance(ScriptedLLM(), LLM)
    assert isinstance(LiteLLMClient("openai/gpt-4o-mini", api_key="sk-test-0000000000"), LLM)
    assert isinstance(RoutedLLM({"fast": "openai/gpt-4o-mini"}), LLM)


def test_router_configuration_mistakes_are_explained() -> None:
    with pytest.raises(ModelConfigError, match="at least one alias"):
        RoutedLLM({})
    with pytest.raises(ModelConfigError, match="not one of the aliases"):
        RoutedLLM({"fast": "openai/gpt-4o-mini"}, default="smart")
    with pytest.raises(ModelConfigError, match="unknown aliases"):
        RoutedLLM({"fast": "openai/gpt-4o-mini"}, fallbacks={"fast": ["nowhere"]})
    with pytest.raises(ModelConfigError, match="needs a 'model'"):
        RoutedLLM({"fast": {"api_base": "http://127.0.0.1:1"}})


# -- real litellm errors raised before any request leaves the machine -----------------


async def test_missing_openai_key_is_an_authentication_error_not_a_server_failure(monkeypatch) -> None:
    # litellm wraps the OpenAI SDK's "Missing credentials" as a 500 InternalServerError;
    # it must not read "The model's server failed" nor be retried.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from llmgine_nb.llm._litellm import aload_litellm
    from llmgine_nb.llm.errors import LLMAuthenticationError

    litellm = await aload_litellm()
    with pytest.raises(Exception) as raised:  # the SDK refuses before connecting; api_base is loopback anyway
        await litellm.acompletion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                  api_base="http://127.0.0.1:9", max_retries=0)
    assert "credentials" in str(raised.value).lower()
    error = from_exception(raised.value, model="openai/gpt-4o-mini")
    # Its own kind, so that front ends head it "No API key", not "the provider refused the key".
    assert isinstance(error, LLMAuthenticationError) and error.kind == "no_api_key" and not error.retryable
    assert "server failed" not in str(error)
    assert "OPENAI_API_KEY" in str(error) and "%llmgine" not in str(error)  # front ends add their own hint


async def test_missing_key_through_the_client_names_the_providers_variable(monkeypatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    from llmgine_nb.llm.errors import LLMAuthenticationError

    client = LiteLLMClient("anthropic/claude-3-5-haiku-latest", api_base="http://127.0.0.1:9")
    with pytest.raises(LLMAuthenticationError) as raised:
        await client.complete("hi")
    assert raised.value.provider == "anthropic" and not raised.value.retryable
    assert "ANTHROPIC_API_KEY" in str(raised.value) and "%llmgine" not in str(raised.value)


async def test_model_without_provider_is_a_configuration_error_with_an_example() -> None:
    from llmgine_nb.llm.errors import ModelStringError

    client = LiteLLMClient("llama3", api_base="http://127.0.0.1:9")  # litellm refuses it before any request
    with pytest.raises(ModelConfigError) as raised:
        await client.complete("hi")
    assert isinstance(raised.value, ModelStringError) and not raised.value.retryable
    assert "no provider" in str(raised.value) and "openai/gpt-4o-mini" in str(raised.value)


async def test_missing_openai_key_through_the_openai_sdk_is_the_same_sentence(monkeypatch, tmp_path) -> None:
    # OpenAI itself (no api_base of our own) and no key anywhere: the SDK refuses to make a client,
    # before any request; the sentence is the one the litellm path gives.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "LLMGINE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    from llmgine_nb.llm import OpenAIClient, Settings, allow_real_models
    from llmgine_nb.llm.errors import LLMAuthenticationError

    client = OpenAIClient("openai/gpt-4o-mini", config=Settings(env={}, dotenv_path=tmp_path / "none"))
    with allow_real_models(), pytest.raises(LLMAuthenticationError) as raised:
        await client.stream("hi").get_response()
    error = raised.value
    assert error.kind == "no_api_key" and not error.retryable and error.provider == "openai"
    assert "OPENAI_API_KEY" in str(error) and "%llmgine" not in str(error)  # front ends add their own hint

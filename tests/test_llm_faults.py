"""Provider faults, handled as users expect (issue 13, item 9), over the real wire.

litellm and the openai SDK (each test runs through both) call ``fake_openai``
(a real HTTP server on 127.0.0.1): rate limits,
server errors and dropped connections are retried by default with backoff,
honouring ``Retry-After``, within a few tries and a total time, each retry
an event; the SDK beneath never retries on its own.  A stream that drops
keeps the text that arrived (marked interrupted), an empty reply is reported
as one, and error text is a short sentence, not a provider's whole body or a
chain of wrapped exceptions.
"""

from __future__ import annotations

import logging

import pytest
from fake_openai import (  # noqa: F401 - fake_openai is a fixture
    Dropped,
    FakeOpenAI,
    Reply,
    Status,
    fake_openai,
    rate_limited,
    server_error,
)

from llmgine_nb import MessageBus
from llmgine_nb.engine import ChatEngine, TurnFailed
from llmgine_nb.llm import (
    LiteLLMClient,
    LLMCallFailed,
    LLMCallFinished,
    LLMConnectionError,
    LLMEvent,
    LLMRateLimitError,
    LLMRetry,
    LLMServerError,
    OpenAIClient,
    RetryPolicy,
)
from llmgine_nb.store import Store

QUICK = RetryPolicy(base_delay=0.01, max_delay=0.05)


CLIENT: type[LiteLLMClient | OpenAIClient] = LiteLLMClient


@pytest.fixture(autouse=True, params=[LiteLLMClient, OpenAIClient], ids=["litellm", "openai-sdk"])
def each_client(request, monkeypatch) -> type:
    """Every test runs through litellm and through the openai SDK: the same faults, the same handling."""
    monkeypatch.setitem(globals(), "CLIENT", request.param)
    return request.param


def client(server: FakeOpenAI, bus: MessageBus | None = None, **kw):
    return CLIENT("openai/gpt-4o-mini", bus=bus, api_base=server.base_url, api_key=server.api_key, **kw)


@pytest.fixture
def events() -> tuple[MessageBus, list[LLMEvent]]:
    bus = MessageBus()
    seen: list[LLMEvent] = []
    bus.subscribe(LLMEvent, seen.append)
    return bus, seen


def names(seen: list[LLMEvent]) -> list[str]:
    return [type(e).__name__ for e in seen]


async def test_a_429_is_retried_by_default_after_the_wait_the_provider_asked_for(fake_openai, events):
    bus, seen = events
    fake_openai.add(rate_limited(retry_after=0.2), Reply("second time lucky"))
    reply = await client(fake_openai, bus).complete("hi")  # the default policy
    assert reply.text == "second time lucky"
    assert len(fake_openai.requests) == 2  # ours is the only retry: the SDK sent each attempt once
    assert names(seen) == ["LLMCallStarted", "LLMCallFailed", "LLMRetry", "LLMCallFinished"]
    failed, retry = [e for e in seen if isinstance(e, LLMCallFailed)][0], [e for e in seen if isinstance(e, LLMRetry)][0]
    assert failed.will_retry and failed.error_kind == "rate_limit" and failed.attempt == 1
    assert retry.attempt == 2 and retry.delay_s == pytest.approx(0.2)  # Retry-After, not our backoff
    assert len({e.call_id for e in seen}) == 1


async def test_server_errors_and_a_connection_dropped_before_the_reply_are_retried_then_succeed(fake_openai, events):
    bus, seen = events
    fake_openai.add(server_error(), Dropped(chunks=0), Reply("finally", chunk_size=2))
    stream = client(fake_openai, bus, retry=QUICK).stream("hi")
    assert "".join([d.text async for d in stream]) == "finally"
    assert len(fake_openai.requests) == 3
    retries = [e for e in seen if isinstance(e, LLMRetry)]
    assert [(r.attempt, r.error_kind) for r in retries] == [(2, "server_error"), (3, "connection")]
    assert [e.finish_reason for e in seen if isinstance(e, LLMCallFinished)] == ["stop"]


async def test_retries_are_bounded_by_tries_and_the_last_failure_is_final(fake_openai, events):
    bus, seen = events
    fake_openai.add(*[server_error()] * 5)
    with pytest.raises(LLMServerError):
        await client(fake_openai, bus, retry=QUICK).complete("hi")
    assert len(fake_openai.requests) == 3
    assert [f.will_retry for f in seen if isinstance(f, LLMCallFailed)] == [True, True, False]


async def test_retries_stop_at_the_total_time_limit(fake_openai, events):
    bus, seen = events
    fake_openai.add(*[server_error()] * 10)
    policy = RetryPolicy(tries=10, base_delay=0.6, max_delay=0.6, jitter=0, total_time=1.0)
    with pytest.raises(LLMServerError):
        await client(fake_openai, bus, retry=policy).complete("hi")
    assert len(fake_openai.requests) == 2  # one wait of 0.6 s fits in 1 s; a second would not


async def test_a_retry_after_longer_than_allowed_fails_at_once_with_a_sentence(fake_openai, events):
    bus, seen = events
    fake_openai.add(rate_limited(retry_after=600), Reply("never asked for"))
    with pytest.raises(LLMRateLimitError) as info:
        await client(fake_openai, bus).complete("hi")
    assert len(fake_openai.requests) == 1
    assert str(info.value).startswith("Rate limited by the provider")


async def test_no_retries_means_one_request(fake_openai):
    fake_openai.add(rate_limited(), Reply("not reached"))
    with pytest.raises(LLMRateLimitError):
        await client(fake_openai, retry=RetryPolicy(tries=1)).complete("hi")
    assert len(fake_openai.requests) == 1


async def test_a_stream_that_drops_keeps_the_text_that_arrived_marked_interrupted(fake_openai, tmp_path):
    bus = MessageBus()
    failures: list[TurnFailed] = []
    bus.subscribe(TurnFailed, failures.append)
    # Six chunks: the role chunk, then five pieces of two characters: "Once upon " arrives, then the link goes.
    fake_openai.add(Dropped(Reply("Once upon a time there was", chunk_size=2), chunks=6))
    store = Store(tmp_path / "s.db")
    engine = await ChatEngine(bus, store=store, llm=client(fake_openai, bus, retry=QUICK)).start()
    result = await engine.send("tell me a story")
    assert len(fake_openai.requests) == 1  # text was shown: not retried
    assert result.status == "failed" and result.error_kind == "connection"
    assert result.text == "Once upon "
    assert "kept, marked interrupted" in (result.reason or "")
    with Store(tmp_path / "s.db") as reopened:
        stored = [(m.role, m.content, m.status) for m in reopened.messages(engine.session_id)]
    assert stored == [("user", "tell me a story", "complete"), ("assistant", "Once upon ", "interrupted")]
    assert failures[0].retryable


async def test_an_empty_reply_is_reported_as_such_not_a_silent_complete(fake_openai, tmp_path):
    fake_openai.add(Reply("", finish_reason="stop"))
    bus = MessageBus()
    engine = await ChatEngine(bus, store=Store(tmp_path / "s.db"), llm=client(fake_openai, bus)).start()
    result = await engine.send("hello")
    assert result.status == "failed" and result.error_kind == "empty_reply"
    assert "empty reply" in (result.reason or "") and "message is kept" in (result.reason or "")
    assert [m.role for m in engine.history] == ["user"]  # the message is kept; no empty answer stored


async def test_a_huge_error_body_is_cut_to_a_readable_sentence_with_the_full_text_in_the_log(fake_openai, caplog):
    body = "The upstream model crashed. " + "x" * 131_311
    fake_openai.add(Status(503, body))
    with caplog.at_level(logging.INFO, logger="llmgine_nb.llm"):
        with pytest.raises(LLMServerError) as info:
            await client(fake_openai, retry=RetryPolicy(tries=1)).complete("hi")
    message = str(info.value)
    assert message.startswith("The model's server failed: The upstream model crashed.")
    assert len(message) < 500 and "more characters in the log" in message
    assert any("x" * 131_311 in record.getMessage() for record in caplog.records)


async def test_a_dropped_connection_reads_as_one_sentence_not_a_chain(fake_openai):
    fake_openai.add(Dropped(Reply("partial answer here", chunk_size=4), chunks=3))
    with pytest.raises(LLMConnectionError) as info:
        await client(fake_openai, retry=RetryPolicy(tries=1)).stream("hi").get_response()
    message = str(info.value)
    assert "Original exception" not in message and "litellm." not in message and "APIConnectionError" not in message
    assert message.startswith("The connection to the model's server failed")
    assert info.value.partial_text == "partial "

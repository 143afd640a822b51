"""Real-wire tests: litellm and the openai SDK calling an OpenAI-compatible server on 127.0.0.1 over real HTTP.

Tests marked ``each_client`` run twice: through ``LiteLLMClient`` and through
``OpenAIClient`` (the openai SDK path ``get_llm`` takes for OpenAI models), so
both give the same replies, events, errors and sentences.  The server (``fake_openai.py``) is started by each test on a free port; the
requests litellm sends and the answers it gets are real JSON and real
server-sent events.  Nothing here reaches the network.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from fake_openai import (  # noqa: F401  (fake_openai is a fixture)
    Delay,
    FakeOpenAI,
    Malformed,
    Reply,
    ToolCallSpec,
    content_filtered,
    context_too_long,
    fake_openai,
    rate_limited,
    server_error,
    unauthorized,
)
from pydantic import BaseModel

from llmgine_nb import MessageBus
from llmgine_nb.chat import ChatMessage
from llmgine_nb.llm import (
    BadResponseError,
    ContentFilterError,
    ContextTooLongError,
    LiteLLMClient,
    LLMAuthenticationError,
    LLMCallFailed,
    LLMCallFinished,
    LLMCallStarted,
    LLMConnectionError,
    LLMError,
    LLMEvent,
    LLMFallback,
    LLMRateLimitError,
    LLMRetry,
    LLMTextDelta,
    LLMTimeoutError,
    LLMToolCallDelta,
    OpenAIClient,
    RetryPolicy,
    RoutedLLM,
    Settings,
    get_llm,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time in a timezone",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
        },
    },
]


@pytest.fixture
def events() -> tuple[MessageBus, list[LLMEvent]]:
    bus = MessageBus()
    seen: list[LLMEvent] = []
    bus.subscribe(LLMEvent, seen.append)
    return bus, seen


CLIENT: type[LiteLLMClient | OpenAIClient] = LiteLLMClient


@pytest.fixture(params=[LiteLLMClient, OpenAIClient], ids=["litellm", "openai-sdk"])
def each_client(request, monkeypatch) -> type:
    """Run the test once per client class: ``client()`` makes one of that class."""
    monkeypatch.setitem(globals(), "CLIENT", request.param)
    return request.param


each = pytest.mark.usefixtures("each_client")


def client(server: FakeOpenAI, bus: MessageBus | None = None, model: str = "openai/gpt-4o-mini", **kw):
    return CLIENT(model, bus=bus, api_base=server.base_url, api_key=server.api_key, **kw)


def of(kind: type, seen: list[LLMEvent]) -> list:
    return [e for e in seen if isinstance(e, kind)]


# -- replies -------------------------------------------------------------------------------


@each
async def test_plain_reply_over_http(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Reply("Hello from the wire", prompt_tokens=21, completion_tokens=5, cached_tokens=4))
    reply = await client(fake_openai, bus, temperature=0.1).complete(
        [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="hi")]
    )
    assert reply.text == "Hello from the wire" and reply.finish_reason == "stop"
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (21, 5, 4)
    assert reply.provider == "openai" and reply.model == "openai/gpt-4o-mini"
    assert reply.latency_s > 0 and reply.ttft_s == reply.latency_s
    (request,) = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert request.body["temperature"] == 0.1 and not request.body.get("stream")
    assert request.headers["authorization"] == f"Bearer {fake_openai.api_key}"
    started, finished = seen
    assert isinstance(started, LLMCallStarted) and isinstance(finished, LLMCallFinished)
    assert started.call_id == finished.call_id == reply.call_id
    assert started.settings["temperature"] == 0.1 and started.settings["api_base"] == fake_openai.base_url
    assert fake_openai.api_key not in json.dumps([e.to_record() for e in seen])


@each
async def test_streaming_reply_over_server_sent_events(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    text = "Streaming works one small chunk at a time."
    fake_openai.add(Reply(text, chunk_size=5, prompt_tokens=9, completion_tokens=10))
    stream = client(fake_openai, bus).stream("tell me")
    pieces = [d.text async for d in stream]
    assert "".join(pieces) == text and len(pieces) == len(range(0, len(text), 5))
    reply = stream.response
    assert reply.text == text and reply.finish_reason == "stop"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (9, 10)  # from the last chunk
    assert reply.ttft_s is not None and 0 < reply.ttft_s <= reply.latency_s
    (request,) = fake_openai.requests
    assert request.body["stream"] is True and request.body["stream_options"] == {"include_usage": True}
    # Chunks that arrive together (here: in one read) make one event; the events join to the reply.
    events = [e.text for e in of(LLMTextDelta, seen)]
    assert events[0] == pieces[0] and "".join(events) == text and len(events) <= len(pieces)
    assert len({e.call_id for e in seen}) == 1


@each
async def test_single_tool_call(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Perth"}, id="call_w1")]))
    reply = await client(fake_openai, bus).complete("weather in Perth?", tools=TOOLS)
    assert reply.finish_reason == "tool_calls" and reply.text == ""
    (tool_call,) = reply.tool_calls
    assert (tool_call.id, tool_call.name, tool_call.arguments) == ("call_w1", "get_weather", {"city": "Perth"})
    assert tool_call.raw_arguments == '{"city": "Perth"}'
    assert fake_openai.requests[0].body["tools"] == TOOLS
    assert of(LLMCallStarted, seen)[0].tool_names == ["get_weather", "get_time"]
    # The reply goes back into the conversation and out over the wire again.
    fake_openai.add(Reply("It is sunny."))
    follow = await client(fake_openai).complete(
        [
            ChatMessage(role="user", content="weather in Perth?"),
            reply.to_message(),
            ChatMessage(role="tool", tool_call_id="call_w1", name="get_weather", content="sunny"),
        ],
        tools=TOOLS,
    )
    assert follow.text == "It is sunny."
    sent = fake_openai.requests[1].body["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Perth"}'}
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_w1", "name": "get_weather"}


@each
async def test_two_parallel_tool_calls_with_interleaved_fragments_in_one_stream(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    weather = {"city": "Perth", "units": "metric", "detail": "full forecast please"}
    time_args = {"tz": "Australia/Perth", "format": "24h"}
    fake_openai.add(
        Reply(
            "Checking both.",
            tool_calls=[ToolCallSpec("get_weather", weather, id="call_a"), ToolCallSpec("get_time", time_args, id="call_b")],
            chunk_size=3,
            interleave=True,
        )
    )
    stream = client(fake_openai, bus).stream("weather and time in Perth", tools=TOOLS)
    deltas = [d async for d in stream]
    fragment_order = [d.index for d in deltas if d.kind == "tool_call" and d.arguments]
    assert fragment_order[:4] == [0, 1, 0, 1]  # really interleaved on the wire
    reply = stream.response
    assert reply.text == "Checking both." and reply.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("call_a", "get_weather", weather),
        ("call_b", "get_time", time_args),
    ]
    tool_events = of(LLMToolCallDelta, seen)
    assert {e.index for e in tool_events} == {0, 1}
    assert "".join(e.arguments_delta for e in tool_events if e.index == 1) == json.dumps(time_args)
    assert of(LLMCallFinished, seen)[0].tool_calls == reply.tool_calls


# -- cost ------------------------------------------------------------------------------------


@each
async def test_cost_of_a_known_model_and_unknown_for_an_unknown_one(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Reply("a", prompt_tokens=1000, completion_tokens=1000), Reply("b"), Reply("c"), Reply("d"))
    known = await client(fake_openai, bus).complete("x")
    # gpt-4o-mini: $0.15 / $0.60 per million tokens in litellm's bundled price list.
    assert known.cost_usd == pytest.approx(1000 * 0.15e-6 + 1000 * 0.60e-6)
    unknown = await client(fake_openai, bus, model="openai/my-local-model").complete("x")
    assert unknown.cost_usd is None
    streamed_known = await client(fake_openai).stream("x").get_response()
    streamed_unknown = await client(fake_openai, model="openai/my-local-model").stream("x").get_response()
    assert streamed_known.cost_usd and streamed_known.cost_usd > 0
    assert streamed_unknown.cost_usd is None
    assert [e.cost_usd for e in of(LLMCallFinished, seen)] == [known.cost_usd, None]


# -- failures ------------------------------------------------------------------------------


@each
@pytest.mark.parametrize(
    ("behaviour", "error_type", "kind", "words"),
    [
        (unauthorized(), LLMAuthenticationError, "authentication", "API key"),
        (context_too_long(), ContextTooLongError, "context_too_long", "Shorten the conversation"),
        (content_filtered(), ContentFilterError, "content_filter", "safety"),
        (rate_limited(), LLMRateLimitError, "rate_limit", "try again"),
        (Malformed(), BadResponseError, "bad_response", "not a valid reply"),
        (Malformed(b"<html>502 Bad Gateway</html>", "text/html"), BadResponseError, "bad_response", "valid reply"),
    ],
    ids=["401", "context", "content-filter", "429", "malformed-json", "html"],
)
async def test_errors_map_to_our_kinds_with_readable_messages(
    fake_openai: FakeOpenAI, events, behaviour, error_type, kind, words
) -> None:
    bus, seen = events
    fake_openai.add(behaviour)
    with pytest.raises(error_type) as info:
        await client(fake_openai, bus, retry=RetryPolicy(tries=1)).complete("hi")
    error = info.value
    assert error.kind == kind and words in str(error)
    assert "litellm." not in str(error) and "OpenAIException" not in str(error)
    assert len(fake_openai.requests) == 1  # one request: no hidden retries underneath
    (failed,) = of(LLMCallFailed, seen)
    assert failed.error_kind == kind and failed.will_retry is False and failed.message == str(error)


@pytest.mark.parametrize(
    "behaviour",
    [unauthorized(), context_too_long(), content_filtered(), rate_limited(), server_error(), Malformed()],
    ids=["401", "context", "content-filter", "429", "500", "malformed-json"],
)
async def test_both_clients_say_the_same_sentence_for_the_same_failure(fake_openai: FakeOpenAI, behaviour) -> None:
    said = []
    for kind in (LiteLLMClient, OpenAIClient):
        fake_openai.add(behaviour)
        llm = kind("openai/gpt-4o-mini", api_base=fake_openai.base_url, api_key=fake_openai.api_key,
                   retry=RetryPolicy(tries=1))
        with pytest.raises(LLMError) as info:
            await llm.complete("hi")
        said.append((info.value.kind, str(info.value)))
    assert said[0] == said[1]


@each
async def test_malformed_stream_is_a_clear_error_and_the_next_call_works(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Malformed(stream=True), Malformed(), Reply("recovered"))
    llm = client(fake_openai, bus)
    with pytest.raises(BadResponseError):
        await llm.stream("hi").get_response()
    # A non-SSE body where a stream was asked for: litellm sees no chunks at all.
    with pytest.raises(BadResponseError, match="without sending a reply") as empty:
        await llm.stream("hi").get_response()
    assert "not a valid reply" not in str(empty.value), "an empty stream is not called garbage too"
    assert (await llm.complete("hi")).text == "recovered"
    assert [e.error_kind for e in of(LLMCallFailed, seen)] == ["bad_response", "bad_response"]


@each
async def test_timeout(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Delay(5, Reply("too late")))
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(LLMTimeoutError) as info:
        await client(fake_openai, bus, timeout=0.5).complete("hi")
    assert loop.time() - start < 4  # gave up at the timeout, did not wait for the reply
    assert info.value.kind == "timeout" and "timeout" in str(info.value)
    assert of(LLMCallFailed, seen)[0].error_kind == "timeout"


@each
async def test_nothing_listening_is_a_connection_error(unused_tcp_port: int) -> None:
    llm = CLIENT("openai/x", api_base=f"http://127.0.0.1:{unused_tcp_port}/v1", api_key="sk-none-000000000")
    with pytest.raises(LLMConnectionError) as info:
        await llm.complete("hi")
    assert "api_base" in str(info.value)


# -- routing: retries and fallbacks ----------------------------------------------------------


def routed(server: FakeOpenAI, bus: MessageBus, **kw) -> RoutedLLM:
    params = {"api_base": server.base_url, "api_key": server.api_key}
    return RoutedLLM(
        {"smart": {"model": "openai/gpt-4o", **params}, "fast": {"model": "openai/gpt-4o-mini", **params}},
        bus=bus,
        **kw,
    )


async def test_rate_limit_then_success_is_retried_and_the_retry_is_an_event(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(rate_limited(), Reply("second time lucky"))
    reply = await routed(fake_openai, bus, num_retries=2).complete("hi")
    assert reply.text == "second time lucky" and reply.model == "openai/gpt-4o"
    assert len(fake_openai.requests) == 2
    kinds = [type(e).__name__ for e in seen]
    assert kinds == ["LLMCallStarted", "LLMCallFailed", "LLMRetry", "LLMCallFinished"]
    failed, retry = of(LLMCallFailed, seen)[0], of(LLMRetry, seen)[0]
    assert failed.will_retry is True and failed.error_kind == "rate_limit" and failed.attempt == 1
    assert retry.attempt == 2 and retry.error_kind == "rate_limit"
    assert len({e.call_id for e in seen}) == 1


async def test_server_error_on_the_primary_falls_back_to_the_other_model(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(server_error(), model="gpt-4o")
    fake_openai.add(Reply("from the fallback"), model="gpt-4o-mini")
    llm = routed(fake_openai, bus, num_retries=0, fallbacks={"smart": ["fast"]})
    reply = await llm.complete("hi")
    assert reply.text == "from the fallback"
    assert reply.model == "openai/gpt-4o-mini" and reply.cost_usd and reply.cost_usd > 0
    assert [r.model for r in fake_openai.requests] == ["gpt-4o", "gpt-4o-mini"]
    kinds = [type(e).__name__ for e in seen]
    assert kinds == ["LLMCallStarted", "LLMCallFailed", "LLMFallback", "LLMCallFinished"]
    failed = of(LLMCallFailed, seen)[0]
    assert failed.will_retry is True and failed.status_code == 500 and failed.model == "openai/gpt-4o"
    fallback = of(LLMFallback, seen)[0]
    assert (fallback.from_model, fallback.to_model) == ("smart", "fast")
    assert of(LLMCallFinished, seen)[0].model == "openai/gpt-4o-mini"
    assert len({e.call_id for e in seen}) == 1


async def test_streamed_fallback(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(server_error(), model="gpt-4o")
    fake_openai.add(Reply("streamed by the fallback"), model="gpt-4o-mini")
    stream = routed(fake_openai, bus, num_retries=0, fallbacks={"smart": ["fast"]}).stream("hi")
    assert "".join([d.text async for d in stream]) == "streamed by the fallback"
    assert stream.response.model == "openai/gpt-4o-mini"
    assert len(of(LLMFallback, seen)) == 1


async def test_when_everything_fails_the_last_failure_is_final(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(server_error(), model="gpt-4o")
    fake_openai.add(unauthorized(), model="gpt-4o-mini")
    with pytest.raises(LLMAuthenticationError):
        await routed(fake_openai, bus, num_retries=0, fallbacks={"smart": ["fast"]}).complete("hi")
    failures = of(LLMCallFailed, seen)
    assert [f.will_retry for f in failures] == [True, False]
    assert failures[-1].error_kind == "authentication"


async def test_routed_timeout_without_retries(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Delay(5))
    with pytest.raises(LLMTimeoutError):
        await routed(fake_openai, bus, num_retries=0, timeout=0.5).complete("hi")
    assert [f.will_retry for f in of(LLMCallFailed, seen)] == [False]


async def test_aliases_choose_the_model_per_call(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Reply("a"), Reply("b"))
    llm = routed(fake_openai, bus)
    await llm.complete("x")
    await llm.complete("x", model="fast")
    assert [r.model for r in fake_openai.requests] == ["gpt-4o", "gpt-4o-mini"]
    assert [e.model for e in of(LLMCallStarted, seen)] == ["smart", "fast"]
    with pytest.raises(Exception, match="not an alias"):
        await llm.complete("x", model="huge")


async def test_get_llm_routes_an_openai_compatible_server_from_the_environment(fake_openai: FakeOpenAI, tmp_path) -> None:
    config = Settings(
        env={"LLMGINE_MODEL": "openai/local-model", "LLMGINE_API_BASE": fake_openai.base_url},
        dotenv_path=tmp_path / "none",
    )
    fake_openai.add(Reply("local answer"))
    llm = get_llm(config=config)
    assert isinstance(llm, OpenAIClient) and llm.notice is None  # an OpenAI model: the openai SDK, no litellm
    assert (await llm.complete("hi")).text == "local answer"
    assert fake_openai.requests[0].body["model"] == "local-model"


# -- structured output over the wire ---------------------------------------------------------


class Forecast(BaseModel):
    city: str
    high_c: float


@each
async def test_structured_output_over_the_wire_with_one_corrective_retry(fake_openai: FakeOpenAI) -> None:
    fake_openai.add(Reply('{"city": "Perth"}'), Reply('{"city": "Perth", "high_c": 31.5}'))
    forecast = await client(fake_openai).structured("Forecast for Perth", Forecast)
    assert forecast == Forecast(city="Perth", high_c=31.5)
    first, second = (r.body for r in fake_openai.requests)
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"]["required"] == ["city", "high_c"]
    assert "high_c" in second["messages"][-1]["content"]


# -- interrupting --------------------------------------------------------------------------------


@each
async def test_cancelling_a_stream_midway_records_the_partial_reply(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Reply("one two three four five six seven", chunk_size=4, chunk_delay=0.2))
    first_piece = asyncio.Event()

    async def consume() -> None:
        async for _ in client(fake_openai, bus).stream("count"):
            first_piece.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_piece.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (finished,) = of(LLMCallFinished, seen)
    assert finished.finish_reason == "interrupted"
    assert finished.text and "one two three four five six seven".startswith(finished.text)
    assert finished.text == "".join(e.text for e in of(LLMTextDelta, seen))
    assert not of(LLMCallFailed, seen)


@each
async def test_cancelling_a_complete_call_records_an_interrupted_call(fake_openai: FakeOpenAI, events) -> None:
    bus, seen = events
    fake_openai.add(Delay(5))
    task = asyncio.create_task(client(fake_openai, bus).complete("slow"))
    while not fake_openai.requests:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.finish_reason for e in of(LLMCallFinished, seen)] == ["interrupted"]


# -- nothing of litellm's reaches the user's output ----------------------------------------------

_QUIET_SCRIPT = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from fake_openai import FakeOpenAI, Reply, ToolCallSpec, rate_limited, server_error, unauthorized
from llmgine_nb.llm import LiteLLMClient, RoutedLLM, LLMError

async def main():
    with FakeOpenAI() as server:
        p = {{"api_base": server.base_url, "api_key": server.api_key}}
        llm = LiteLLMClient("openai/gpt-4o-mini", **p)
        server.add(Reply("hi"), Reply("streamed", tool_calls=[ToolCallSpec("f", {{"a": 1}})]), unauthorized())
        await llm.complete("x")
        await llm.stream("x").get_response()
        try:
            await llm.complete("x")
        except LLMError:
            pass
        routed = RoutedLLM({{"a": {{"model": "openai/gpt-4o", **p}}, "b": {{"model": "openai/gpt-4o-mini", **p}}}},
                           fallbacks={{"a": ["b"]}}, num_retries=0)
        server.add(server_error(), model="gpt-4o")
        server.add(unauthorized(), model="gpt-4o-mini")
        try:
            await routed.stream("x").get_response()
        except LLMError:
            pass

asyncio.run(main())
"""


def test_litellm_prints_nothing_to_the_users_output(tmp_path) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "quiet.py"
    script.write_text(_QUIET_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {k: v for k, v in os.environ.items() if k not in ("LITELLM_LOG", "LITELLM_LOCAL_MODEL_COST_MAP")}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


@each
async def test_a_tool_call_with_broken_json_keeps_the_raw_arguments(fake_openai: FakeOpenAI) -> None:
    fake_openai.add(Reply(tool_calls=[ToolCallSpec("get_weather", '{"city": "Per')]))
    fake_openai.add(Reply(tool_calls=[ToolCallSpec("get_weather", '{"city": "Per')]))
    for reply in (
        await client(fake_openai).complete("x", tools=TOOLS),
        await client(fake_openai).stream("x", tools=TOOLS).get_response(),
    ):
        (tool_call,) = reply.tool_calls
        assert tool_call.arguments is None and tool_call.raw_arguments == '{"city": "Per'

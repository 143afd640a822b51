"""The offline model: scripts, functions, running out, the default echo, streaming, usage, events,
structured output and the notice it publishes when chosen because nothing is configured."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from llmgine_nb import MessageBus
from llmgine_nb.chat import ChatMessage, ToolCall
from llmgine_nb.llm import (
    LLMCallFailed,
    LLMCallFinished,
    LLMCallStarted,
    LLMEvent,
    LLMNotice,
    LLMRateLimitError,
    LLMTextDelta,
    LLMToolCallDelta,
    ScriptedLLM,
    ScriptedReply,
    ScriptExhaustedError,
    Settings,
    StructuredOutputError,
    call,
    get_llm,
)


def recording_bus() -> tuple[MessageBus, list[LLMEvent]]:
    bus = MessageBus()
    seen: list[LLMEvent] = []
    bus.subscribe(LLMEvent, seen.append)
    return bus, seen


async def test_script_replays_replies_in_order_and_records_what_it_was_asked() -> None:
    llm = ScriptedLLM(["first", ScriptedReply(text="second")])
    one = await llm.complete("hello")
    two = await llm.complete([ChatMessage(role="user", content="again")], temperature=0.2)
    assert (one.text, two.text) == ("first", "second")
    assert one.finish_reason == "stop" and one.model == "scripted" and one.provider == "scripted"
    assert [c.messages[-1].content for c in llm.calls] == ["hello", "again"]
    assert llm.calls[1].settings == {"temperature": 0.2}
    assert llm.remaining == 0


async def test_script_tool_calls_have_parsed_arguments_and_deterministic_ids() -> None:
    llm = ScriptedLLM([ScriptedReply(text="checking", tool_calls=[call("add", a=1, b=2), call("neg", {"x": 3})])])
    reply = await llm.complete("add")
    assert reply.text == "checking"
    assert reply.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("call_1_0", "add", {"a": 1, "b": 2}),
        ("call_1_1", "neg", {"x": 3}),
    ]
    assert reply.to_message().tool_calls == reply.tool_calls


async def test_a_lone_tool_call_dict_or_toolcall_is_a_reply() -> None:
    llm = ScriptedLLM([{"name": "ping"}, ToolCall.from_raw("my-id", "pong", '{"n": 1}')])
    first = await llm.complete("x")
    second = await llm.complete("y")
    assert first.tool_calls[0].name == "ping" and first.tool_calls[0].arguments == {}
    assert second.tool_calls[0].id == "my-id" and second.tool_calls[0].arguments == {"n": 1}


async def test_running_out_of_script_is_a_clear_error_and_an_event() -> None:
    bus, seen = recording_bus()
    llm = ScriptedLLM(["only one"], bus=bus)
    await llm.complete("a")
    with pytest.raises(ScriptExhaustedError) as info:
        await llm.complete("b")
    message = str(info.value)
    assert "1 reply" in message and "call 2" in message and "Add more replies" in message
    failed = [e for e in seen if isinstance(e, LLMCallFailed)]
    assert len(failed) == 1 and failed[0].will_retry is False and failed[0].error_type == "ScriptExhaustedError"


async def test_an_exception_in_the_script_is_raised_as_that_error() -> None:
    llm = ScriptedLLM([LLMRateLimitError("slow down"), "fine"])
    with pytest.raises(LLMRateLimitError):
        await llm.complete("a")
    assert (await llm.complete("b")).text == "fine"


async def test_function_model_sees_messages_and_tools_and_may_be_async() -> None:
    def reply(messages: list[ChatMessage], tools: list[dict] | None) -> str:
        return f"{len(messages)} messages, tools={[t['function']['name'] for t in tools or []]}"

    async def areply(messages: list[ChatMessage], tools: list[dict] | None) -> dict:
        return {"text": messages[-1].content.upper()}

    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    assert (await ScriptedLLM(reply).complete("a", tools=tools)).text == "1 messages, tools=['search']"
    assert (await ScriptedLLM(areply).complete("shout")).text == "SHOUT"


async def test_default_reply_quotes_the_prompt_and_says_it_is_offline() -> None:
    reply = await ScriptedLLM().complete([ChatMessage(role="system", content="be nice"), ChatMessage(role="user", content="What is  2+2?")])
    assert '"What is 2+2?"' in reply.text
    assert "offline model" in reply.text


async def test_streaming_comes_in_word_chunks_and_interleaved_tool_fragments() -> None:
    bus, seen = recording_bus()
    text = "The quick brown fox jumps"
    llm = ScriptedLLM(
        [ScriptedReply(text=text, tool_calls=[call("a", q="x" * 20), call("b", q="y" * 20)])], bus=bus
    )
    stream = llm.stream("go")
    deltas = [d async for d in stream]
    texts = [d.text for d in deltas if d.kind == "text"]
    assert texts == ["The ", "quick ", "brown ", "fox ", "jumps"]
    tool_indexes = [d.index for d in deltas if d.kind == "tool_call" and d.arguments]
    assert tool_indexes[:4] == [0, 1, 0, 1]  # fragments of the two calls alternate
    response = stream.response
    assert response.text == text
    assert [c.arguments for c in response.tool_calls] == [{"q": "x" * 20}, {"q": "y" * 20}]
    # The same text went out as events, all with one call id: the first piece at once, the pieces
    # that came right after it (an offline model sends them all at once) joined into one event.
    events = [e.text for e in seen if isinstance(e, LLMTextDelta)]
    assert events[0] == "The " and "".join(events) == text and len(events) <= len(texts)
    assert len([e for e in seen if isinstance(e, LLMToolCallDelta)]) == len([d for d in deltas if d.kind == "tool_call"])
    assert len({e.call_id for e in seen}) == 1
    assert response.ttft_s is not None and response.ttft_s <= response.latency_s


async def test_usage_is_estimated_and_cost_is_zero() -> None:
    short = await ScriptedLLM(["ok"]).complete("hi")
    long = await ScriptedLLM(["ok " * 100]).complete("hi " * 100)
    assert short.usage.input_tokens > 0 and short.usage.output_tokens > 0
    assert long.usage.input_tokens > short.usage.input_tokens
    assert long.usage.output_tokens > short.usage.output_tokens
    assert short.cost_usd == 0.0


async def test_events_of_a_complete_call() -> None:
    bus, seen = recording_bus()
    await ScriptedLLM(["done"], bus=bus).complete("hi", temperature=0)
    started, finished = seen
    assert isinstance(started, LLMCallStarted) and isinstance(finished, LLMCallFinished)
    assert started.call_id == finished.call_id
    assert started.settings == {"temperature": 0} and started.stream is False
    assert finished.text == "done" and finished.usage.output_tokens > 0 and finished.cost_usd == 0.0


async def test_leaving_a_stream_early_records_an_interrupted_reply() -> None:
    bus, seen = recording_bus()
    stream = ScriptedLLM(["one two three four"], bus=bus).stream("go")
    async with stream:
        async for _ in stream:
            break
    finished = [e for e in seen if isinstance(e, LLMCallFinished)]
    assert len(finished) == 1 and finished[0].finish_reason == "interrupted" and finished[0].text == "one "


async def test_response_is_only_available_after_the_stream_ends() -> None:
    stream = ScriptedLLM(["a b"]).stream("x")
    with pytest.raises(RuntimeError, match="not finished"):
        _ = stream.response
    assert (await stream.get_response()).text == "a b"


class City(BaseModel):
    name: str
    population: int


async def test_structured_output_validates_and_retries_once_with_the_error() -> None:
    llm = ScriptedLLM(['{"name": "Perth"}', 'Sure! ```json\n{"name": "Perth", "population": 2300000}\n```'])
    city = await llm.structured("Biggest city in WA?", City)
    assert city == City(name="Perth", population=2300000)
    first, second = llm.calls
    assert first.messages[0].role == "system" and '"population"' in first.messages[0].content
    # The retry showed the model its bad reply and what was wrong with it.
    assert second.messages[-2].content == '{"name": "Perth"}'
    assert "population" in second.messages[-1].content and "Field required" in second.messages[-1].content


async def test_structured_output_gives_up_with_a_clear_error() -> None:
    llm = ScriptedLLM(["not json", "still not json"])
    with pytest.raises(StructuredOutputError) as info:
        await llm.structured("x", City)
    assert "not a valid City after 2 tries" in str(info.value)
    assert "still not json" in str(info.value)
    assert info.value.kind == "bad_response"


async def test_structured_output_needs_a_model_class() -> None:
    with pytest.raises(TypeError, match="pydantic model class"):
        await ScriptedLLM(["{}"]).structured("x", dict)  # type: ignore[arg-type]


async def test_get_llm_falls_back_to_the_offline_model_and_says_so(tmp_path) -> None:
    bus, seen = recording_bus()
    llm = get_llm(bus=bus, config=Settings(env={}, dotenv_path=tmp_path / ".env"))
    assert isinstance(llm, ScriptedLLM)
    assert llm.notice and "offline model" in llm.notice and "LLMGINE_MODEL" in llm.notice
    await llm.complete("hi")
    await llm.complete("again")
    notices = [e for e in seen if isinstance(e, LLMNotice)]
    assert len(notices) == 1 and notices[0].message == llm.notice  # once, before the first call
    assert isinstance(seen[0], LLMNotice)


async def test_get_llm_scripted_with_a_script_has_no_notice(tmp_path) -> None:
    llm = get_llm("scripted", script=["hi"], config=Settings(env={}, dotenv_path=tmp_path / ".env"))
    assert isinstance(llm, ScriptedLLM) and llm.notice is None
    assert (await llm.complete("x")).text == "hi"


def test_bad_script_inputs_are_explained() -> None:
    with pytest.raises(TypeError, match="wrap a single reply in a list"):
        ScriptedLLM("just a string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="either as a dict or as keywords"):
        call("f", {"a": 1}, b=2)


async def test_every_event_survives_the_json_round_trip() -> None:
    from llmgine_nb import Message

    bus, seen = recording_bus()
    llm = ScriptedLLM([ScriptedReply(text="hi there", tool_calls=[call("f", a=[1, 2])])], bus=bus)
    llm.notice = "a notice"
    await llm.stream("go", tools=[{"type": "function", "function": {"name": "f"}}]).get_response()
    assert {type(e).__name__ for e in seen} >= {"LLMNotice", "LLMCallStarted", "LLMTextDelta", "LLMToolCallDelta", "LLMCallFinished"}
    for event in seen:
        again = Message.from_json(event.to_json())
        assert type(again) is type(event) and again == event


ADD_SCHEMA = [{"type": "function", "function": {"name": "add", "parameters": {"properties": {"a": {}, "b": {}}}}},
              {"type": "function", "function": {"name": "note", "parameters": {"properties": {"text": {}}}}}]


async def test_the_default_model_calls_the_tools_a_prompt_writes_out() -> None:
    llm = ScriptedLLM()
    reply = await llm.complete('Please add(a=1, b=2.5) then note("hi", ) and add(3, b=true)', tools=ADD_SCHEMA)
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("add", {"a": 1, "b": 2.5}), ("note", {"text": "hi"}), ("add", {"a": 3, "b": True}),
    ]
    assert [c.id for c in reply.tool_calls] == ["call_1_0", "call_1_1", "call_1_2"]
    assert reply.finish_reason == "tool_calls" and reply.text.startswith("Calling `add(a=1, b=2.5)`")
    # A name that is not an offered tool is only text; without tools nothing is called.
    assert not (await llm.complete("subtract(a=1)", tools=ADD_SCHEMA)).tool_calls
    assert not (await llm.complete("add(a=1)")).tool_calls


async def test_the_default_model_explains_a_call_it_cannot_read() -> None:
    llm = ScriptedLLM()
    for prompt, why in [("add(a=x)", "x in the call of add is not a plain value"),
                        ("add(a=1", "not closed"), ("add(1, 2, 3)", "add takes 2 arguments")]:
        reply = await llm.complete(prompt, tools=ADD_SCHEMA)
        assert not reply.tool_calls and why in reply.text and "`add(a=..., b=...)`" in reply.text


async def test_the_default_model_reports_tool_results_in_call_order_and_stops() -> None:
    asked = ChatMessage(role="assistant", tool_calls=[ToolCall.from_raw("c1", "add", "{}"), ToolCall.from_raw("c2", "note", "{}")])
    messages = [ChatMessage(role="user", content="add(a=1, b=2) note(text='x')"), asked,
                ChatMessage(role="tool", tool_call_id="c2", content="noted"),
                ChatMessage(role="tool", tool_call_id="c1", name="add", content="3")]
    reply = await ScriptedLLM().complete(messages, tools=ADD_SCHEMA)
    assert not reply.tool_calls
    assert reply.text == 'The tools answered:\n\n- add returned "3"\n- note returned "noted"'
    one = await ScriptedLLM().complete(messages[:3], tools=ADD_SCHEMA)
    assert one.text == 'The tool answered: note returned "noted".'


async def test_the_echo_names_a_tool_as_an_example_when_there_are_tools() -> None:
    reply = await ScriptedLLM().complete("hello", tools=ADD_SCHEMA)
    assert reply.text.startswith('You said: "hello".') and "`add(a=..., b=...)`" in reply.text


async def test_text_events_join_pieces_that_come_faster_than_the_interval_and_keep_their_order() -> None:
    text = "The quick brown fox jumps"
    pieces = ["The ", "quick ", "brown ", "fox ", "jumps"]

    async def events_of(delay_s: float, interval_s: float | None = None) -> list[Any]:
        bus, seen = recording_bus()
        llm = ScriptedLLM([ScriptedReply(text=text, tool_calls=[call("a", q="x" * 20)])], bus=bus, delay_s=delay_s)
        if interval_s is not None:
            llm.text_delta_interval_s = interval_s
        [_ async for _ in llm.stream("go")]
        return [e for e in seen if isinstance(e, (LLMTextDelta, LLMToolCallDelta, LLMCallFinished))]

    def texts(events: list[Any]) -> list[str]:
        return [e.text for e in events if isinstance(e, LLMTextDelta)]

    # Pieces slower than the interval, or the interval 0: one event per piece.
    assert texts(await events_of(delay_s=0.03)) == pieces
    assert texts(await events_of(delay_s=0, interval_s=0)) == pieces
    # Faster than the interval (here a long one, so a slow machine cannot spread the pieces out): fewer
    # events, the same text, every held piece out before the tool call's fragments and the end.
    events = await events_of(delay_s=0, interval_s=10)
    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["LLMTextDelta", "LLMTextDelta"] and "LLMTextDelta" not in kinds[2:]
    assert "LLMToolCallDelta" in kinds and kinds[-1] == "LLMCallFinished"
    assert "".join(texts(events)) == text


async def test_text_held_back_goes_out_when_the_stream_stalls_not_with_the_next_piece() -> None:
    """A burst followed by a pause: what the burst brought is published within the interval, while the
    model is still silent; the order of the events stays that of the pieces."""
    from llmgine_nb.llm.base import BaseLLM, ModelRequest
    from llmgine_nb.llm.reply import StreamDelta, StreamEnd

    class Stalling(BaseLLM):
        provider = "test"

        async def _request(self, request: ModelRequest) -> Any:
            raise NotImplementedError

        async def _request_stream(self, request: ModelRequest) -> Any:
            for piece in ("one ", "two ", "three "):  # a burst
                yield StreamDelta("text", text=piece)
            await asyncio.sleep(0.4)  # the provider stalls
            yield StreamDelta("text", text="four")
            yield StreamEnd("stop")

    bus, seen = recording_bus()
    shown_during_the_stall: list[str] = []

    async def watch() -> None:
        await asyncio.sleep(0.2)
        shown_during_the_stall.extend(e.text for e in seen if isinstance(e, LLMTextDelta))

    watcher = asyncio.ensure_future(watch())
    [_ async for _ in Stalling("stalling", bus=bus).stream("go")]
    await watcher
    assert "".join(shown_during_the_stall) == "one two three "  # not kept until "four" came
    assert [e.text for e in seen if isinstance(e, LLMTextDelta)] == ["one ", "two three ", "four"]

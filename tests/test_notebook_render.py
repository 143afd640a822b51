"""A turn's events -> transcript -> Markdown, text and live updates (no kernel needed).

Turns are real: the chat engine with the offline scripted model, real tools
and approval commands on a real bus.  Only IPython's ``display`` is replaced,
by a recorder of what would have been sent to the frontend.
"""

from __future__ import annotations

import asyncio
import io
import re
import time

import pytest

from llmgine_nb import Event, MessageBus, ToolManager, tool
from llmgine_nb.engine import ChatEngine, TurnStarted
from llmgine_nb.llm import LLMAuthenticationError
from llmgine_nb.llm.events import LLMTextDelta
from llmgine_nb.llm.scripted import ScriptedLLM, ScriptedReply, call
from llmgine_nb.notebook import markdown, render
from llmgine_nb.notebook.live import WIDGET_MIME, DisplaySink, LiveCell
from llmgine_nb.notebook.text_sink import TextSink
from llmgine_nb.notebook.transcript import TextBlock, ToolBlock, Transcript
from llmgine_nb.store import Store
from llmgine_nb.tools import ApprovalQueue, AutoApproval
from llmgine_nb.tools.pending import first_display_id


@tool(risk="destructive")
def remove(path: str) -> str:
    """Remove a file.

    Args:
        path: The file to remove.
    """
    return f"removed {path}"


async def run_turn(script, *, prompt="Please remove a.txt", answer=None, delay_s=0.0, tools=(remove,)):
    """One real engine turn; returns (events, result)."""
    bus = MessageBus()
    events: list[Event] = []
    bus.subscribe(Event, events.append)
    if answer is not None:
        AutoApproval(answer).attach(bus)
    engine = await ChatEngine(
        bus, store=Store(":memory:"), tools=ToolManager(list(tools), bus=bus, approval_timeout=5),
        llm=ScriptedLLM(script, bus=bus, delay_s=delay_s),
    ).start()
    result = await engine.send(prompt)
    return events, result


def fold(events) -> Transcript:
    transcript = Transcript("prompt")
    for event in events:
        transcript.apply(event)
    return transcript


class Recorder:
    """Stands in for IPython's display: keeps every bundle a frontend would receive."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def __call__(self, data, raw=True, display_id=None, **kwargs):
        self.sent.append({"data": data, "metadata": kwargs.get("metadata")})
        return self

    def update(self, data, raw=True, **kwargs):
        self.sent.append({"data": data, "metadata": kwargs.get("metadata"), "update": True})

    @property
    def last(self) -> dict:
        return self.sent[-1]


SCRIPT = [ScriptedReply("Sure, removing it.", [call("remove", path="a.txt")]), "Done: **a.txt** is gone."]


async def test_transcript_of_an_approved_tool_turn_is_in_order_with_usage():
    events, result = await run_turn(SCRIPT, answer=lambda request: True)
    t = fold(events)
    kinds = [type(b).__name__ for b in t.blocks]
    assert kinds == ["TextBlock", "ToolBlock", "TextBlock"]
    tool_block = t.blocks[1]
    assert isinstance(tool_block, ToolBlock)
    assert tool_block.state == "ok" and tool_block.result == "removed a.txt"
    assert tool_block.approval is not None and tool_block.approval.decision == "approve"
    assert t.status == "complete" and t.final_text == "Done: **a.txt** is gone."
    assert t.usage == result.usage and t.usage.input_tokens > 0


async def test_markdown_shows_tool_box_and_footer_and_text_fallback_reads_well():
    events, result = await run_turn(SCRIPT, answer=lambda request: True)
    t = fold(events)
    md = render.transcript_markdown(t)
    assert md.startswith("Sure, removing it.")
    box = next(line for line in md.split("\n\n") if line.startswith("<details"))
    assert "\n" not in box, "a tool box is one line, so Markdown keeps it one HTML block"
    assert "remove(path=&quot;a.txt&quot;)" in box and "removed a.txt" in box
    assert "scripted · " in md and f"{result.usage.input_tokens} in" in md
    text = render.transcript_text(t)
    assert '[tool] remove(path="a.txt") - ok' in text
    assert "result: removed a.txt" in text
    assert text.endswith(f"-- scripted · {result.usage.input_tokens} in / {result.usage.output_tokens} out tokens · $0.00")


async def test_text_fallback_is_the_same_run_after_run():
    """nbval compares text/plain: no latencies or clock times in it."""
    first = render.transcript_text(fold((await run_turn(SCRIPT, answer=lambda r: True))[0]))
    await asyncio.sleep(0.02)
    second = render.transcript_text(fold((await run_turn(SCRIPT, answer=lambda r: True))[0]))
    assert first == second
    assert not re.search(r"\d+ ms|\d\.\d s|\d\d:\d\d:\d\d", first)


async def test_denied_call_shows_the_decision_and_reason():
    events, _ = await run_turn(
        [call("remove", path="a.txt"), "OK, I left it."],
        answer=lambda request: {"kind": "deny", "message": "keep that file"},
    )
    t = fold(events)
    block = next(b for b in t.blocks if isinstance(b, ToolBlock))
    assert block.state == "denied" and block.result is None
    assert 'Denied by' in render.decision_sentence(block.approval) and "keep that file" in render.decision_sentence(block.approval)
    assert "denied by" in render.transcript_markdown(t)


def test_model_html_is_escaped_but_code_is_left_alone():
    md = markdown.safe_markdown('Hi <img src=x onerror="alert(1)"> and `<b>` and\n```html\n<div>x</div>\n```\nafter <script>')
    assert "<img" not in md and "&lt;img" in md
    assert "`<b>`" in md, "code spans keep their text"
    assert "<div>x</div>" in md, "fenced code keeps its text"
    assert "&lt;script>" in md


def test_streaming_markdown_closes_an_open_fence_and_shows_a_cursor():
    t = Transcript("q")
    t.apply(TurnStarted(turn_id="t", text="q", model="scripted", user_message_id="m"))
    for piece in ["Here:\n", "```python\n", "print(1)\n"]:
        t.apply(LLMTextDelta(call_id="c", model="scripted", text=piece))
    live = render.transcript_markdown(t, live=True)
    assert live.rstrip().endswith("```\n ▍") or live.count("```") == 2
    assert "▍" in live


@pytest.mark.parametrize(
    ("fmt", "reply", "expected"),
    [
        ("json", '{"a": 1, "b": [1, 2]}', '```json\n{\n  "a": 1,'),
        ("code", "Here you go:\n```python\nx = 1\n```\nEnjoy.", "```python\nx = 1\n```"),
        ("text", "*not* markdown", "```text\n*not* markdown\n```"),
    ],
)
def test_output_formats(fmt, reply, expected):
    t = Transcript("q")
    t.blocks.append(TextBlock("c", final=reply))
    assert expected in render.transcript_markdown(t, fmt)
    if fmt == "json":
        assert render.bundle(t, fmt, live=False)["application/json"] == {"a": 1, "b": [1, 2]}


async def test_a_missing_key_says_where_to_set_it_once_and_retry_once():
    from llmgine_nb.llm.errors import MissingAPIKeyError

    missing = MissingAPIKeyError("No API key was found for openai: set OPENAI_API_KEY in the environment or a .env file")
    events, result = await run_turn([missing])
    assert "%llmgine" not in (result.reason or "")  # the engine's reason is front-end neutral
    t = fold(events)
    for shown in (render.transcript_markdown(t), render.transcript_text(t)):
        assert shown.count("environment or a") == 1 and shown.count("retry") == 1, shown
        assert "%llmgine keys" in shown and "%llmgine model NAME" in shown


async def test_money_in_a_reply_is_not_typeset_as_maths_and_maths_stays():
    events, result = await run_turn(["Costs $5 and $6 for x; the area is $x^2$, in code `$7`."], prompt="Costs $5 and $6?")
    t = fold(events)
    md = render.transcript_markdown(t)
    assert "$5" not in md and "$6" not in md and "&#36;5 and &#36;6" in md
    assert "$x^2$" in md and "`$7`" in md  # maths the model meant, and code, are left as they are
    assert "Costs $5 and $6 for x" in render.transcript_text(t)  # plain text shows the dollars


async def test_failed_turn_renders_a_sentence_and_what_to_do_not_a_traceback():
    events, result = await run_turn([LLMAuthenticationError("The API key was rejected", model="x")])
    assert result.status == "failed"
    t = fold(events)
    md = render.transcript_markdown(t)
    assert "The model provider refused the API key." in md
    assert "%llmgine keys" in md and "Traceback" not in md
    assert "Error:" in render.transcript_text(t)


def test_the_first_words_of_a_reply_show_at_once_and_the_rest_waits_its_turn():
    recorder = Recorder()
    cell = LiveCell(Transcript("q"), DisplaySink(interactive=False, display=recorder), max_updates_per_s=0.1)
    cell.start()
    cell.feed(TurnStarted(turn_id="t", text="q", model="scripted", user_message_id="m"))  # waits: 10 s apart
    shown = len(recorder.sent)
    cell.feed(LLMTextDelta(call_id="c", model="scripted", text="Zebras"))
    assert len(recorder.sent) == shown + 1 and "Zebras" in recorder.last["data"]["text/plain"]
    cell.feed(LLMTextDelta(call_id="c", model="scripted", text=" run."))
    assert len(recorder.sent) == shown + 1, "later pieces keep to the rate"
    cell.feed(LLMTextDelta(call_id="c2", model="scripted", text="Next call."))  # a new model call's first words
    assert len(recorder.sent) == shown + 2 and "Next call." in recorder.last["data"]["text/plain"]
    cell.finish()


async def test_live_cell_throttles_updates_and_ends_with_all_the_text():
    recorder = Recorder()
    cell = LiveCell(Transcript("q"), DisplaySink(interactive=False, display=recorder), max_updates_per_s=20)
    cell.start()
    cell.feed(TurnStarted(turn_id="t", text="q", model="scripted", user_message_id="m"))
    pieces = [f"w{i} " for i in range(3000)]
    started = time.perf_counter()
    for i, piece in enumerate(pieces):
        cell.feed(LLMTextDelta(call_id="c", model="scripted", text=piece))
        if i % 30 == 0:
            await asyncio.sleep(0.004)  # a model streaming over about half a second
    elapsed = time.perf_counter() - started
    from llmgine_nb.engine import TurnFinished

    cell.feed(TurnFinished(turn_id="t", text="".join(pieces), model="scripted"))
    assert cell.finished and cell.done.is_set()
    assert cell.updates <= 20 * elapsed + 3, f"{cell.updates} updates in {elapsed:.2f} s"
    assert cell.updates >= 3, "the output did update while it streamed"
    final = recorder.last
    assert final["data"]["text/markdown"].startswith("".join(pieces).rstrip()) or "".join(pieces) in final["data"]["text/markdown"]
    assert "".join(pieces) in final["data"]["text/plain"]
    assert final["metadata"]["llmgine"]["status"] == "complete"


async def test_cancelled_stream_keeps_the_partial_text_marked():
    bus = MessageBus()
    events: list[Event] = []
    bus.subscribe(Event, events.append)
    long_reply = " ".join(f"word{i}" for i in range(200))
    engine = await ChatEngine(bus, store=Store(":memory:"), llm=ScriptedLLM([long_reply], bus=bus, delay_s=0.005)).start()
    task = asyncio.ensure_future(engine.send("talk"))
    while not any(isinstance(e, LLMTextDelta) for e in events):
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    await engine.cancel()
    result = await task
    assert result.status == "cancelled"
    t = fold(events)
    assert t.status == "cancelled"
    text_block = next(b for b in t.blocks if isinstance(b, TextBlock))
    assert text_block.interrupted and 0 < len(text_block.text) < len(long_reply)
    assert "Stopped here - the reply above is partial." in render.transcript_markdown(t)
    assert "[stopped: the reply above is partial]" in render.transcript_text(t)


async def test_display_sink_turns_into_widgets_for_an_approval_and_back_into_markdown():
    """The approval card is a widget only while a person must answer; the saved output is static."""
    recorder = Recorder()
    bus = MessageBus()
    queue = ApprovalQueue()
    queue.attach(bus)
    decisions = []

    def decide(call_id, decision, who):  # what NotebookRuntime.decide does, without a runtime
        decisions.append((call_id, decision.kind, who))
        request = queue.decide(call_id, decision, decided_by=who)
        cell.change(lambda t: t.note_decision(request.call_id, decision, who))

    sink = DisplaySink(interactive=True, decide=decide, display=recorder, user="ada")
    cell = LiveCell(Transcript("q"), sink, max_updates_per_s=1000)
    cell.start()
    bus.subscribe(Event, cell.feed, inline=True)  # it schedules redraws on the loop
    engine = await ChatEngine(
        bus, store=Store(":memory:"), tools=ToolManager([remove], bus=bus, approval_timeout=5),
        llm=ScriptedLLM(SCRIPT, bus=bus), approvals=queue,
    ).start()
    task = asyncio.ensure_future(engine.send("Please remove a.txt"))
    while not queue.pending():
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)
    assert WIDGET_MIME in recorder.last["data"], "an approval turns the output into widgets"
    card = sink.cards["call_1_0"]
    assert card.display_id == first_display_id("call_1_0") and card.args_hash
    assert [b.description for b in card.buttons.children] == [
        "Approve", "Deny", "Edit arguments", "Always allow for this session"]
    assert not task.done(), "nothing runs before the click"
    card.approve_button.click()  # what a comm click from the frontend ends up calling
    result = await asyncio.wait_for(task, 5)
    assert result.status == "complete"
    assert decisions == [(first_display_id("call_1_0"), "approve", "ada via button")]
    assert card.decided and all(b.disabled for b in card.buttons.children)
    assert "Approved by ada via button" in card.status.value
    final = recorder.last["data"]
    assert WIDGET_MIME not in final and "removed a.txt" in final["text/markdown"]
    assert sink.root is None, "the widgets are closed once the output is static"


async def test_text_sink_prints_the_stream_and_how_to_answer():
    out = io.StringIO()
    bus = MessageBus()
    queue = ApprovalQueue()
    queue.attach(bus)
    cell = LiveCell(Transcript("q"), TextSink(out), max_updates_per_s=1000)
    bus.subscribe(Event, cell.feed, inline=True)  # it schedules redraws on the loop
    engine = await ChatEngine(
        bus, store=Store(":memory:"), tools=ToolManager([remove], bus=bus, approval_timeout=5),
        llm=ScriptedLLM(SCRIPT, bus=bus), approvals=queue,
    ).start()
    task = asyncio.ensure_future(engine.send("Please remove a.txt"))
    while not queue.pending():
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)
    shown = out.getvalue()
    assert shown.startswith("Sure, removing it.")
    assert f"%llmgine approve {first_display_id('call_1_0')}" in shown and "removed a.txt" not in shown
    queue.approve("call_1_0")  # the whole id works too
    await asyncio.wait_for(task, 5)
    shown = out.getvalue()
    assert "result: removed a.txt" in shown
    assert "Done: **a.txt** is gone." in shown
    assert re.search(r"-- scripted · \d+ in / \d+ out tokens · \$0\.00 · ", shown)


def test_costs_keep_two_significant_digits_and_never_round_to_zero():
    from llmgine_nb.notebook.style import fmt_cost, fmt_total_cost

    assert [fmt_cost(c) for c in (0, 0.00004, 0.0000412, 0.00123, 0.0999, 0.5, 0.012, 3.14159, 1234.5)] == [
        "$0.00", "$0.00004", "$0.000041", "$0.0012", "$0.10", "$0.50", "$0.012", "$3.14", "$1,234.50",
    ]
    assert fmt_cost(None) == fmt_cost(0.1, known=False) == "cost unknown"
    assert fmt_total_cost(0.00004, 2) == ">= $0.00004 (+2 unpriced)"

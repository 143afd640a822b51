"""Any text survives (issue 13, item 8).

A lone surrogate (``"\\ud800"``: UTF-8 cannot encode it) in a prompt, a
model's reply, a tool call's arguments or a tool's result never fails the
turn or loses the message: it is replaced with U+FFFD where it enters, and
everything is stored, logged and written as usual.
"""

from __future__ import annotations

import json

from fake_openai import FAKE_API_KEY, FakeOpenAI, Reply, ToolCallSpec, fake_openai  # noqa: F401

from llmgine_nb import MessageBus
from llmgine_nb.engine import ChatEngine
from llmgine_nb.llm import ScriptedLLM, get_llm
from llmgine_nb.llm.scripted import call
from llmgine_nb.observe import observe
from llmgine_nb.store import Store
from llmgine_nb.text import clean_text, clean_value
from llmgine_nb.tools import ToolManager

LONE = "\ud800"
OTHER_LONE = "\udcff"


def echo(text: str) -> str:
    """Echo the text back, with a lone surrogate of its own (as surrogateescape decoding makes)."""
    return f"echo {text} {OTHER_LONE}"


def _all_text_encodes(store: Store, session_id: str, jsonl) -> None:
    for message in store.messages(session_id):
        (message.content or "").encode("utf-8")
    jsonl.read_text(encoding="utf-8")  # written, and valid UTF-8


async def test_a_lone_surrogate_in_prompt_reply_arguments_and_result_loses_nothing(tmp_path):
    bus = MessageBus()
    store = Store(tmp_path / "s.db")
    observe(bus, store, jsonl=tmp_path / "events.jsonl")
    llm = ScriptedLLM(
        [
            call("echo", text=f"arg {LONE}"),
            f"reply {OTHER_LONE} end",
        ],
        bus=bus,
    )
    engine = await ChatEngine(bus, store=store, llm=llm, tools=ToolManager([echo], bus=bus)).start()
    result = await engine.send(f"prompt {LONE} here")
    assert result.status == "complete"
    assert result.text == "reply \ufffd end"
    with Store(tmp_path / "s.db") as reopened:  # on disk, every message of the turn
        stored = [(m.role, m.content) for m in reopened.messages(engine.session_id)]
    assert stored == [
        ("user", "prompt \ufffd here"),
        ("assistant", None),
        ("tool", "echo arg \ufffd \ufffd"),
        ("assistant", "reply \ufffd end"),
    ]
    _all_text_encodes(store, engine.session_id, tmp_path / "events.jsonl")


async def test_a_lone_surrogate_over_the_real_wire_is_kept_replaced(tmp_path, fake_openai: FakeOpenAI):
    # json.dumps escapes a lone surrogate as \ud800: what a server really sends, and the client decodes.
    fake_openai.add(
        Reply(tool_calls=[ToolCallSpec("echo", {"text": f"wire {LONE}"}, id="call_wire")]),
        Reply(f"streamed {OTHER_LONE} reply", chunk_size=3),
    )
    bus = MessageBus()
    store = Store(tmp_path / "s.db")
    llm = get_llm("openai/gpt-4o-mini", bus=bus, api_base=fake_openai.base_url, api_key=FAKE_API_KEY)
    engine = await ChatEngine(bus, store=store, llm=llm, tools=ToolManager([echo], bus=bus)).start()
    result = await engine.send("hello")
    assert result.status == "complete", result.reason
    assert result.text == "streamed \ufffd reply"
    tool_message = next(m for m in store.messages(engine.session_id) if m.role == "tool")
    assert tool_message.content == "echo wire \ufffd \ufffd"
    # The replaced text goes back to the model as valid JSON on the next request.
    second = fake_openai.requests[1].body
    assert json.dumps(second, ensure_ascii=False).encode("utf-8")


def test_clean_text_joins_pairs_replaces_lone_halves_and_keeps_everything_else():
    assert clean_text("plain") == "plain"
    assert clean_text("é ü 😀") == "é ü 😀"
    assert clean_text("x\ud83d\ude00y") == "x😀y"  # a pair split out of UTF-16 is the character again
    assert clean_text(f"a{LONE}b{OTHER_LONE}") == "a\ufffdb\ufffd"
    assert clean_value({f"k{LONE}": [f"v{LONE}", 1, None]}) == {"k\ufffd": ["v\ufffd", 1, None]}

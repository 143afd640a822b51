"""Token counting: litellm for real models once it is loaded, an estimate until then and offline, cached per message."""

from __future__ import annotations

import os
import subprocess
import sys

# litellm fetches its price list over the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from llmgine_nb.chat import ChatMessage, ToolCall
from llmgine_nb.context import TokenCounter, estimate_text_tokens, is_offline_model


def test_offline_models_use_the_estimate():
    assert is_offline_model("scripted") and is_offline_model("scripted/echo") and is_offline_model(None)
    assert not is_offline_model("gpt-4o-mini")
    counter = TokenCounter("scripted")
    assert counter.estimate and counter.priming == 0
    assert estimate_text_tokens("abcdefgh") == 2 and estimate_text_tokens("abcdefghi") == 3
    msg = ChatMessage(role="user", content="x" * 40)
    assert counter.count(msg) == 4 + 10
    call = ChatMessage(role="assistant", tool_calls=[ToolCall.from_raw("c", "name", '{"a": 1}')])
    assert counter.count(call) == 4 + (4 + 1 + 2)


def test_counts_are_cached_per_message_and_content():
    counter = TokenCounter("scripted")
    msgs = [ChatMessage(role="user", content=f"message number {i}") for i in range(100)]
    first = counter.count_messages(msgs)
    assert counter.counted == 100
    assert counter.count_messages(msgs) == first and counter.counted == 100  # nothing re-counted
    reloaded = [m.model_copy() for m in msgs]  # same id and content, new objects (as after a reload)
    counter.count_messages(reloaded)
    assert counter.counted == 100
    edited = msgs[0].model_copy(update={"content": "a much longer text " * 10})
    assert counter.count(edited) > counter.count(msgs[0]) and counter.counted == 101


def test_real_models_are_counted_by_litellm():
    from llmgine_nb.llm._litellm import load_litellm

    token_counter = load_litellm().token_counter
    counter = TokenCounter("gpt-4o-mini")
    assert not counter.estimate
    msg = ChatMessage(role="user", content="The quick brown fox jumps over the lazy dog.")
    whole = token_counter(model="gpt-4o-mini", messages=[msg.to_openai()])
    assert counter.count(msg) + counter.priming == whole
    assert counter.count_messages([msg, msg.model_copy(update={"id": "other"})]) == (
        token_counter(model="gpt-4o-mini", messages=[msg.to_openai()] * 2)
    )
    call = ChatMessage(role="assistant", tool_calls=[ToolCall.from_raw("c1", "lookup", '{"q": "fox"}')])
    assert counter.count(call) > 0
    assert counter.count_text("hello world") == token_counter(model="gpt-4o-mini", text="hello world")


def test_importing_the_context_package_does_not_import_litellm():
    code = "import sys, llmgine_nb.context, llmgine_nb.store; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


_UNTIL_LOADED = """
import sys
from llmgine_nb.chat import ChatMessage
from llmgine_nb.context import ContextCompiler
from llmgine_nb.llm._litellm import load_litellm

compiler = ContextCompiler("gpt-4o-mini")
history = [ChatMessage(role="user", content="The quick brown fox jumps over the lazy dog. " * 20)]
before = compiler.compile_sync(history).report.tokens["history"]
print(compiler.counter.estimate, "litellm" in sys.modules, before)
litellm = load_litellm()
after = compiler.compile_sync(history).report.tokens["history"]
exact = litellm.token_counter(model="gpt-4o-mini", messages=[history[0].to_openai()]) - compiler.counter.priming
print(compiler.counter.estimate, after == exact, after != before)
"""


def test_a_real_model_is_estimated_until_litellm_is_loaded_then_counted_exactly():
    out = subprocess.run([sys.executable, "-c", _UNTIL_LOADED], capture_output=True, text=True, check=True).stdout
    first, second = out.strip().splitlines()
    estimating, imported, before = first.split()
    # Before: no litellm imported by counting, and the cautious estimate (4 framing + 900 chars / 3).
    assert (estimating, imported, int(before)) == ("True", "False", 4 + 900 // 3)
    # After: the same history, counted again by litellm's tokenizer (the cache was emptied).
    assert second.split() == ["False", "True", "True"]


def test_switching_the_compilers_model_switches_its_tokenizer():
    from llmgine_nb.context import ContextCompiler
    from llmgine_nb.llm._litellm import load_litellm

    load_litellm()

    compiler = ContextCompiler("scripted")
    assert compiler.counter.estimate
    compiler.model = "gpt-4o-mini"
    assert compiler.counter.model == "gpt-4o-mini" and not compiler.counter.estimate
    history = [ChatMessage(role="user", content="hello there")]
    assert compiler.compile_sync(history).report.tokens["history"] == compiler.counter.count(history[0])

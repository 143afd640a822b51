"""The opt-in request cache and the request hash: the same exact request replays; any difference pays.

The engine runs its real turn loop over a store on each backend (a SQLite
file, a PostgreSQL schema); the model
is the offline one, whose ``call_count`` says whether it was really asked.
"""

from __future__ import annotations

import pytest

from llmgine_nb import MessageBus
from llmgine_nb.engine import ChatEngine, ContextCompiled, TurnFinished
from llmgine_nb.engine.events import RequestReplayed
from llmgine_nb.llm import LLMCallFinished, ScriptedLLM, ScriptedReply, call
from llmgine_nb.secrets import Redactor
from llmgine_nb.store import Store
from llmgine_nb.tools import ToolManager


@pytest.fixture
def world(db_target):
    bus = MessageBus()
    seen: list = []
    for kind in (ContextCompiled, RequestReplayed, TurnFinished, LLMCallFinished):
        bus.subscribe(kind, seen.append)
    store = Store(db_target)  # each backend: a SQLite file, a PostgreSQL schema (tests/services.py)
    yield bus, store, seen
    store.close()


async def ask(bus, store, llm, text, **options):
    engine = ChatEngine(bus, store=store, llm=llm, **options)
    await engine.start()
    try:
        return await engine.send(text)
    finally:
        await engine.close()


def of(kind, seen):
    return [e for e in seen if isinstance(e, kind)]


async def test_without_the_cache_every_request_is_paid_for(world):
    bus, store, seen = world
    llm = ScriptedLLM()
    await ask(bus, store, llm, "hello")
    await ask(bus, store, llm, "hello")
    assert llm.call_count == 2 and of(RequestReplayed, seen) == []
    first, second = of(ContextCompiled, seen)
    assert first.request_hash == second.request_hash and len(first.request_hash) == 64  # the same request


async def test_the_same_request_in_a_new_session_replays_the_stored_answer(world):
    bus, store, seen = world
    llm = ScriptedLLM(["The answer is 42.", "A second, paid answer."])
    paid = await ask(bus, store, llm, "What is six times seven?", request_cache=True)
    replayed = await ask(bus, store, llm, "What is six times seven?", request_cache=True)
    assert llm.call_count == 1  # the model was asked once
    assert replayed.text == paid.text == "The answer is 42."
    (event,) = of(RequestReplayed, seen)
    first, second = of(TurnFinished, seen)
    assert not first.replayed and second.replayed
    assert event.request_hash == first.request_hash == second.request_hash
    assert event.usage == first.usage and event.usage.total_tokens > 0  # what the stored answer had cost
    assert second.usage.total_tokens == 0 and second.cost_usd == 0.0  # nothing paid now
    assert [e.provider for e in of(LLMCallFinished, seen)] == ["scripted", "cache"]
    assert store.llm_calls()[-1].provider == "cache"


async def test_any_difference_in_the_request_misses_the_cache(world):
    bus, store, seen = world
    llm = ScriptedLLM(["one", "two", "three", "four"])
    await ask(bus, store, llm, "hi", request_cache=True)
    await ask(bus, store, llm, "hi!", request_cache=True)  # other words
    await ask(bus, store, llm, "hi", request_cache=True, system_prompt="Be brief.")  # another message
    llm.settings["temperature"] = 0.2
    await ask(bus, store, llm, "hi", request_cache=True)  # other options
    assert llm.call_count == 4 and of(RequestReplayed, seen) == []
    assert len({e.request_hash for e in of(ContextCompiled, seen)}) == 4


async def test_tools_are_part_of_the_request_and_replayed_tool_calls_run_again(world):
    bus, store, seen = world
    ran: list[str] = []

    def tools() -> ToolManager:
        manager = ToolManager(bus=bus)

        @manager.register
        def shout(word: str) -> str:
            """Say a word loudly."""
            ran.append(word)
            return word.upper()

        return manager

    script = [ScriptedReply(tool_calls=[call("shout", word="hey")]), "Shouted."]
    llm = ScriptedLLM(script + script)
    await ask(bus, store, llm, "shout hey", request_cache=True, tools=tools())
    await ask(bus, store, llm, "shout hey", request_cache=True, tools=tools())
    assert llm.call_count == 2 and len(of(RequestReplayed, seen)) == 2  # both steps replayed
    assert ran == ["hey", "hey"]  # a replayed answer is the model's; the tool itself runs each time
    compiled = of(ContextCompiled, seen)
    assert "shout" in compiled[0].tools and compiled[0].tools["shout"] > 0
    await ask(bus, store, llm, "shout hey", request_cache=True)  # no tools offered: other requests
    assert llm.call_count == 4 and len(of(RequestReplayed, seen)) == 2  # both its steps paid for


async def test_a_secret_the_model_echoes_is_not_kept_in_the_cache(world):
    bus, store, seen = world
    secret = "sk-test-cache-0123456789abcdefABCDEF"
    redactor = Redactor()
    redactor.add(secret)
    llm = ScriptedLLM([f"Your key is {secret}."])
    await ask(bus, store, llm, "what is my key?", request_cache=True, redactor=redactor)
    replayed = await ask(bus, store, llm, "what is my key?", request_cache=True, redactor=redactor)
    assert llm.call_count == 1 and replayed.text == "Your key is [REDACTED]."
    (stored,) = store.conn.execute("SELECT response FROM request_cache").fetchall()
    assert secret not in stored[0] and "[REDACTED]" in stored[0]


async def test_a_failed_or_empty_answer_is_not_cached(world):
    bus, store, seen = world
    llm = ScriptedLLM([RuntimeError("the provider fell over"), "Now it works."])
    failed = await ask(bus, store, llm, "try", request_cache=True)
    assert failed.status == "failed"
    assert (await ask(bus, store, llm, "try", request_cache=True)).text == "Now it works."
    assert llm.call_count == 2 and of(RequestReplayed, seen) == []

"""A prompt over data (``MapJob``): order, bounded concurrency, resume from the store, the cost cap, retries,
structured output into columns, and bad input refused with a sentence before anything is paid."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest
from pydantic import BaseModel

from llmgine_nb.batch import MapFinished, MapJob, MapRowFinished, MapStarted
from llmgine_nb.bus import MessageBus
from llmgine_nb.llm import ScriptedLLM
from llmgine_nb.store import Store
from llmgine_nb.tools.events import ConfirmationRequested, QuestionAnswered
from llmgine_nb.tools.queue import ApprovalQueue


@pytest.fixture
def store(db_target):  # a SQLite file, and a PostgreSQL schema (tests/services.py)
    with Store(db_target) as s:
        yield s


@pytest.fixture
async def bus():
    b = MessageBus("test-map")
    yield b
    b.close()


def upper(messages, tools):
    return messages[-1].content.upper()


async def test_rows_are_answered_in_order_with_at_most_concurrency_at_once(store):
    running = peak = 0

    async def slow(messages, tools):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return messages[-1].content.upper()

    frame = pd.DataFrame({"city": [f"town{i}" for i in range(12)], "size": range(12)})
    job = MapJob(ScriptedLLM(slow), "name {city}", frame, store=store.map_jobs, concurrency=3)
    result = await job.run()
    assert result.texts == [f"NAME TOWN{i}" for i in range(12)]
    assert peak == 3
    table = result.to_frame()
    assert list(table.columns) == ["city", "size", "answer", "error"]
    assert table["answer"][5] == "NAME TOWN5" and list(frame.columns) == ["city", "size"]  # the data is copied


async def test_a_second_run_asks_only_the_rows_not_answered(store):
    def flaky(messages, tools):
        if "3" in messages[-1].content or "4" in messages[-1].content:
            raise RuntimeError("the provider is down")
        return "ok"

    rows = [f"row {i}" for i in range(6)]
    first = await MapJob(ScriptedLLM(flaky), "echo {item}", rows, store=store.map_jobs, retries=0).run()
    assert [r.index for r in first.failed] == [3, 4]
    assert "the provider is down" in first.failed[0].error
    assert not first.complete

    again = ScriptedLLM(upper)
    second = await MapJob(again, "echo {item}", rows, store=store.map_jobs, retries=0).run()
    assert again.call_count == 2  # the four answered rows came from the store
    assert second.job_id == first.job_id and second.reused == 4 and second.complete
    assert second.texts == ["ok", "ok", "ok", "ECHO ROW 3", "ECHO ROW 4", "ok"]

    changed = rows[:5] + ["row 5, edited"]
    third_model = ScriptedLLM(upper)
    await MapJob(third_model, "echo {item}", changed, store=store.map_jobs, name=second.job_id).run()
    assert third_model.call_count == 1  # same job by name: only the row whose prompt changed is asked


async def test_a_failing_row_is_tried_again(store):
    attempts: dict[str, int] = {}

    def once_broken(messages, tools):
        prompt = messages[-1].content
        attempts[prompt] = attempts.get(prompt, 0) + 1
        if attempts[prompt] == 1:
            raise RuntimeError("try again")
        return "fine"

    result = await MapJob(ScriptedLLM(once_broken), "{item}", ["a", "b"], retries=1, retry_delay_s=0).run()
    assert result.complete and [r.attempts for r in result.rows] == [2, 2]


async def cap_job(store, bus, answer):
    """Ten rows at $0.01 each, a $0.03 cap, one at a time; ``answer`` is said to the cap's question."""
    queue = ApprovalQueue()
    queue.attach(bus)
    seen: list = []
    bus.subscribe(ConfirmationRequested, seen.append)
    bus.subscribe(QuestionAnswered, seen.append)
    llm = ScriptedLLM(upper, cost_per_call=0.01)
    job = MapJob(llm, "{item}", [f"r{i}" for i in range(10)], store=store.map_jobs, bus=bus, concurrency=1,
                 max_cost=0.03)
    task = asyncio.ensure_future(job.run())
    for _ in range(500):
        if queue.pending_questions():
            break
        await asyncio.sleep(0.01)
    question = queue.pending_questions()[0]
    assert "spent $0.0300 of its $0.0300 cap" in question.question and "7 rows are left" in question.question
    queue.answer(question.display_id, answer, decided_by="ada")
    return await task, llm, seen


async def test_the_cost_cap_asks_and_no_stops_the_job(store, bus):
    result, llm, seen = await cap_job(store, bus, False)
    assert llm.call_count == 3 and len(result.answered) == 3 and len(result.skipped) == 7
    assert "cost cap" in result.stopped and result.cost_usd == pytest.approx(0.03)
    assert [type(e).__name__ for e in seen] == ["ConfirmationRequested", "QuestionAnswered"]
    assert seen[1].answer is False and seen[1].decided_by == "ada"
    assert "not asked" in result.to_frame()["error"][9]


async def test_the_cost_cap_asks_and_yes_goes_on(store, bus):
    result, llm, _ = await cap_job(store, bus, True)
    assert result.complete and llm.call_count == 10 and result.cost_usd == pytest.approx(0.10)


async def test_nobody_to_ask_about_the_cap_stops_it(store, bus):
    llm = ScriptedLLM(upper, cost_per_call=0.5)
    result = await MapJob(llm, "{item}", ["a", "b", "c"], bus=bus, concurrency=1, max_cost=0.4).run()
    assert llm.call_count == 1 and "cost cap" in result.stopped  # fail closed: no front end said yes


async def test_the_job_publishes_its_progress(store, bus):
    events: list = []
    for kind in (MapStarted, MapRowFinished, MapFinished):
        bus.subscribe(kind, events.append)
    await MapJob(ScriptedLLM(upper), "{item}", ["a", "b"], bus=bus).run()
    assert [type(e).__name__ for e in events] == ["MapStarted", "MapRowFinished", "MapRowFinished", "MapFinished"]
    assert events[-1].answered == 2 and events[0].total == 2


class Sentiment(BaseModel):
    label: str
    score: float


async def test_structured_answers_become_columns(store):
    def judge(messages, tools):
        text = messages[-1].content
        return '{"label": "good", "score": 0.9}' if "love" in text else '{"label": "bad", "score": 0.1}'

    frame = pd.DataFrame({"review": ["I love it", "Broken on arrival"]})
    result = await MapJob(ScriptedLLM(judge), "Review: {review}", frame, schema=Sentiment, store=store.map_jobs).run()
    assert result.values == [Sentiment(label="good", score=0.9), Sentiment(label="bad", score=0.1)]
    table = result.to_frame()
    assert list(table["label"]) == ["good", "bad"] and list(table["score"]) == [0.9, 0.1]
    again = ScriptedLLM(judge)
    resumed = await MapJob(again, "Review: {review}", frame, schema=Sentiment, store=store.map_jobs).run()
    assert again.call_count == 0 and resumed.values == result.values  # structured values come back from the store


async def test_files_are_rows(tmp_path):
    for name, text in [("a.txt", "alpha"), ("b.txt", "beta")]:
        (tmp_path / name).write_text(text)
    result = await MapJob(ScriptedLLM(upper), "{name}: {text}", str(tmp_path / "*.txt")).run()
    assert result.texts == ["A.TXT: ALPHA", "B.TXT: BETA"]


def test_bad_input_is_refused_with_a_sentence():
    llm = ScriptedLLM(upper)
    with pytest.raises(ValueError, match=r"names \{town\} but row 0 has no such field \(it has: city\)"):
        MapJob(llm, "{town}", [{"city": "Oslo"}])
    with pytest.raises(TypeError, match="a DataFrame, a list"):
        MapJob(llm, "{item}", {"a": 1})
    with pytest.raises(ValueError, match="no file matches"):
        MapJob(llm, "{text}", "/nonexistent/*.txt")
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        MapJob(llm, "{item}", [1], concurrency=0)
    with pytest.raises(ValueError, match="needs a prompt template"):
        MapJob(llm, " ", [1])
    assert llm.call_count == 0

"""Store and context benchmarks: each figure beside a baseline measured in the same run.

- store_turn: one complete turn through ``Store.record_turn`` vs the same rows
  written with plain sqlite3 in one transaction (same schema, same pragmas).
- session_load: ``Store.load_session`` of a 10,000-message session as
  ChatMessages (validated as one list by a pydantic ``TypeAdapter``) vs the plain
  sqlite3 SELECT of the same rows.
- search_long_message: a search whose snippet comes from one 10 MB message vs
  ten times the same search over a 1 MB message (linear: ratio about 1).
- context_compile: compiling a 10,000-message history into an 8,000-token
  budget on the second turn (counts cached) vs the first compile (uncached).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

# litellm would try to download its price list at import; the local copy is enough here.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from _common import Figure, best_of  # noqa: E402

from llmgine_nb.chat import ChatMessage, ToolCall  # noqa: E402
from llmgine_nb.messages import Event  # noqa: E402
from llmgine_nb.store import LLMCall, Store  # noqa: E402
from llmgine_nb.store.messages import MESSAGE_COLUMNS, message_row  # noqa: E402
from llmgine_nb.store.rows import utc_text  # noqa: E402


class TurnStep(Event):
    """A stand-in for the engine's per-turn events."""

    step: int
    text: str


def _tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="llmgine-bench-"))


def _turn(i: int, session_id: str) -> tuple[list[ChatMessage], LLMCall, list[TurnStep]]:
    call = ToolCall.from_raw(f"call-{i}-{uuid.uuid4().hex[:6]}", "get_weather", '{"city": "Oslo", "unit": "C"}')
    messages = [
        ChatMessage(role="user", content=f"What's the weather in Oslo today? ({i})"),
        ChatMessage(role="assistant", model="gpt-4o-mini", tool_calls=[call]),
        ChatMessage(role="tool", tool_call_id=call.id, name="get_weather", content='{"temp": 4, "sky": "rain"}'),
    ]
    llm = LLMCall(model="gpt-4o-mini", provider="openai", input_tokens=120, output_tokens=18, cost=0.0001,
                  latency_ms=420.0, ttft_ms=180.0)
    events = [TurnStep(session_id=session_id, step=k, text=f"step {k} of turn {i}") for k in range(5)]
    return messages, llm, events


def bench_store_turn() -> Figure:
    turns_per_round = 200
    folder = _tmpdir()
    try:
        store = Store(folder / "store.db")
        session = store.create_session("bench")
        plain_store = Store(folder / "plain.db")  # same schema and pragmas, written with plain sqlite3
        plain_session = plain_store.create_session("bench").id
        plain_store.close()
        conn = sqlite3.connect(folder / "plain.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")

        def store_round() -> None:
            batch = [_turn(i, session.id) for i in range(turns_per_round)]
            start = time.perf_counter()
            for messages, llm, events in batch:
                store.record_turn(session.id, messages, llm_calls=[llm], events=events)
            timings.append(time.perf_counter() - start)

        def plain_round() -> None:
            batch = []
            for i in range(turns_per_round):
                messages, llm, events = _turn(i, plain_session)
                batch.append(
                    (
                        [message_row(m, plain_session, 0)[:2] + message_row(m, plain_session, 0)[3:] for m in messages],
                        messages[1].tool_calls[0],
                        messages[1].id,
                        messages[2].id,
                        (uuid.uuid4().hex, plain_session, None, llm.model, llm.provider, llm.input_tokens,
                         llm.output_tokens, llm.cached_tokens, llm.cost, llm.latency_ms, llm.ttft_ms, None, utc_text()),
                        [(e.id, e.type_name, e.session_id, e.to_json(), utc_text(e.timestamp)) for e in events],
                    )
                )
            start = time.perf_counter()
            for rows, call, call_msg, result_msg, llm_row, event_rows in batch:
                conn.execute("BEGIN IMMEDIATE")
                (last,) = conn.execute("SELECT max(seq) FROM messages WHERE session_id = ?", (plain_session,)).fetchone()
                seq = -1 if last is None else last
                for row in rows:
                    seq += 1
                    conn.execute(
                        "INSERT INTO messages (id, session_id, seq, role, content, tool_calls, tool_call_id, name, "
                        "model, status, pinned, created, images, forgotten) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (row[0], row[1], seq, *row[2:]),
                    )
                conn.execute(
                    "INSERT INTO tool_calls (id, call_id, session_id, message_id, tool, arguments, status, requested) "
                    "VALUES (?,?,?,?,?,?,'requested',?)",
                    (uuid.uuid4().hex, call.id, plain_session, call_msg, call.name, call.raw_arguments, rows[1][10]),
                )
                conn.execute(
                    "UPDATE tool_calls SET result_message_id = ?, result = ?, status = 'done', finished = ? "
                    "WHERE session_id = ? AND call_id = ?",
                    (result_msg, rows[2][3], rows[2][10], plain_session, call.id),
                )
                conn.execute(
                    "INSERT INTO llm_calls (id, session_id, message_id, model, provider, input_tokens, output_tokens, "
                    "cached_tokens, cost, latency_ms, ttft_ms, error, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    llm_row,
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO events (id, type, session_id, payload, created) VALUES (?,?,?,?,?)", event_rows
                )
                conn.execute("COMMIT")
            timings.append(time.perf_counter() - start)

        timings: list[float] = []
        for _ in range(5):
            store_round()
        store_time = min(timings) / turns_per_round
        timings = []
        for _ in range(5):
            plain_round()
        plain_time = min(timings) / turns_per_round
        store.close()
        conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    value, baseline = store_time * 1e6, plain_time * 1e6
    return Figure(
        name="store_turn",
        value=value,
        baseline=baseline,
        unit="us/turn",
        goal="ratio <= 3 vs plain sqlite3",
        ok=value / baseline <= 3,
        note="3 messages + tool call + LLM call + 5 events, one transaction",
    )


def _long_history(n: int) -> list[ChatMessage]:
    history: list[ChatMessage] = []
    i = 0
    while len(history) < n:
        history.append(ChatMessage(role="user", content=f"Question {i}: how does step {i} of the analysis work? " * 2))
        if i % 5 == 0:
            call = ToolCall.from_raw(f"c{i}", "run_query", f'{{"sql": "select * from sales where week = {i}"}}')
            history.append(ChatMessage(role="assistant", model="gpt-4o-mini", tool_calls=[call]))
            history.append(ChatMessage(role="tool", tool_call_id=call.id, name="run_query", content="week,total\n" * 8))
        history.append(
            ChatMessage(role="assistant", model="gpt-4o-mini", content=f"Step {i} groups the rows by week and sums. " * 3)
        )
        i += 1
    return history[:n]


def bench_session_load() -> Figure:
    folder = _tmpdir()
    try:
        with Store(folder / "load.db") as store:
            session = store.create_session("ten thousand")
            store.append_messages(session, _long_history(10_000))
        store = Store(folder / "load.db")
        conn = sqlite3.connect(folder / "load.db")
        sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq"
        loaded = store.load_session("ten thousand")
        assert len(loaded.messages) == 10_000 and len(conn.execute(sql, (session.id,)).fetchall()) == 10_000
        value = best_of(lambda: store.load_session("ten thousand"), repeat=7)
        baseline = best_of(lambda: conn.execute(sql, (session.id,)).fetchall(), repeat=7)
        store.close()
        conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    value_ms, baseline_ms = value * 1e3, baseline * 1e3
    return Figure(
        name="session_load",
        value=value_ms,
        baseline=baseline_ms,
        unit="ms",
        # The goal set with the store (issue 5).  Messages are built through pydantic's public API
        # (one TypeAdapter validation of the whole list, issue 12); pydantic's validation of 10,000
        # messages alone takes about 1.2 times the SELECT, so this ratio sits near 3 on a quiet machine.
        goal="< 150 ms and ratio <= 3 vs plain SELECT",
        ok=value_ms < 150 and value_ms / baseline_ms <= 3,
        note="10,000 messages as ChatMessages (pydantic TypeAdapter), with pending tool calls",
    )


def bench_context_compile() -> Figure:
    from llmgine_nb.context import ContextCompiler, TokenCounter

    model = "gpt-4o-mini"
    TokenCounter(model).count(ChatMessage(role="user", content="warm up litellm and its tokenizer"))
    history = _long_history(10_000)
    second_turn = history + [
        ChatMessage(role="assistant", model=model, content="Here is what step 9999 does."),
        ChatMessage(role="user", content="And what comes after that?"),
    ]
    firsts, seconds = [], []
    for _ in range(5):
        compiler = ContextCompiler(model, budget=8000)  # a fresh compiler: nothing counted yet
        start = time.perf_counter()
        compiler.compile_sync(history, system="You explain data analyses step by step.")
        firsts.append(time.perf_counter() - start)
        start = time.perf_counter()
        compiled = compiler.compile_sync(second_turn, system="You explain data analyses step by step.")
        seconds.append(time.perf_counter() - start)
    assert compiled.report.total <= 8000 and compiled.messages[-1] is second_turn[-1]
    value, baseline = min(seconds) * 1e3, min(firsts) * 1e3
    return Figure(
        name="context_compile",
        value=value,
        baseline=baseline,
        unit="ms",
        goal="< 30 ms on the second turn (baseline: first compile, uncached)",
        ok=value < 30,
        note=f"{model} counts via litellm; {len(compiled.messages)} messages sent, {compiled.report.total} tokens",
    )


def _search_seconds(folder: Path, megabytes: int) -> float:
    store = Store(folder / f"search-{megabytes}.db")
    session = store.create_session()
    text = ("alpha beta gamma delta needle " * (megabytes * 1_000_000 // 30 + 1))[: megabytes * 1_000_000]
    store.append_messages(session, [ChatMessage(role="user", content=text), ChatMessage(role="user", content="needle")])
    try:
        return best_of(lambda: store.search("needle"), repeat=3)
    finally:
        store.close()


def bench_search_long_message() -> Figure:
    folder = _tmpdir()
    try:
        small, large = _search_seconds(folder, 1), _search_seconds(folder, 10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    value, baseline = large * 1e3, small * 10 * 1e3
    return Figure(
        name="search_long_message",
        value=value,
        baseline=baseline,
        unit="ms",
        goal="ratio <= 1.5 (linear) vs 10 x the 1 MB search",
        ok=value / baseline <= 1.5,
        note=f"search with a snippet over one 10 MB message (a match every 30 characters); 1 MB: {small * 1e3:.0f} ms",
    )


BENCHMARKS = [bench_store_turn, bench_session_load, bench_context_compile, bench_search_long_message]

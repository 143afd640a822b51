"""The store: sessions, messages, tool calls, approvals, LLM calls, events, queries, housekeeping."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmgine_nb.chat import ChatMessage, ToolCall, Usage
from llmgine_nb.messages import Event
from llmgine_nb.store import (
    LLMCall,
    SessionNotFound,
    Store,
    StoreError,
    ToolCallNotFound,
    UnknownEvent,
    default_db_path,
)


class NoteTaken(Event):
    """An application event with typed fields, for the event-log round trip."""

    text: str
    count: int = 0
    tags: list[str] = []


@pytest.fixture
def store(db_target: str | Path) -> Store:
    """A new store on each backend (tests/services.py: a SQLite file, a PostgreSQL schema)."""
    s = Store(db_target)
    yield s
    s.close()


def user(text: str, **kw) -> ChatMessage:
    return ChatMessage(role="user", content=text, **kw)


def assistant(text: str | None = None, calls: list[ToolCall] = (), **kw) -> ChatMessage:
    return ChatMessage(role="assistant", content=text, tool_calls=list(calls), **kw)


def tool_result(call_id: str, text: str, name: str = "add") -> ChatMessage:
    return ChatMessage(role="tool", tool_call_id=call_id, name=name, content=text)


# -- where the database lives ---------------------------------------------------


def test_default_path_follows_xdg_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMGINE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "llmgine-nb" / "llmgine.db"

    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "llmgine-nb" / "llmgine.db"

    monkeypatch.setenv("LLMGINE_DB", str(tmp_path / "env.db"))
    assert default_db_path() == tmp_path / "env.db"
    with Store() as s:  # no argument: the env var decides, and the file is created
        assert s.path == tmp_path / "env.db"
    assert (tmp_path / "env.db").exists()

    monkeypatch.setenv("LLMGINE_DB", ":memory:")
    with Store() as s:
        assert s.path == ":memory:"
        s.create_session("in memory")
        assert [x.name for x in s.list_sessions()] == ["in memory"]


def test_argument_wins_and_creates_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMGINE_DB", str(tmp_path / "env.db"))
    with Store(tmp_path / "deep" / "er" / "x.db") as s:
        assert s.path == tmp_path / "deep" / "er" / "x.db"
    assert (tmp_path / "deep" / "er" / "x.db").exists()
    assert not (tmp_path / "env.db").exists()


def test_opening_a_file_that_is_not_a_database_says_what_to_do(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("this is not sqlite, just text long enough to fill a header page " * 20)
    with pytest.raises(StoreError, match="LLMGINE_DB"):
        Store(bad)


@pytest.mark.sqlite_only
def test_pragmas_wal_and_busy_timeout(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


# -- sessions and messages -------------------------------------------------------------


def test_messages_round_trip_in_order(store):
    session = store.create_session("chat", model="gpt-4o-mini", notebook="analysis.ipynb", metadata={"k": 1})
    sent = [
        user("hello"),
        assistant(None, [ToolCall.from_raw("c1", "add", '{"a": 1, "b": 2}')], model="gpt-4o-mini"),
        tool_result("c1", "3"),
        assistant("it is 3", model="gpt-4o-mini", status="interrupted", pinned=True),
    ]
    assert store.append_messages(session.id, sent[:2]) == [0, 1]
    assert store.append_message("chat", sent[2]) == 2
    assert store.append_message(session, sent[3]) == 3

    loaded = store.messages("chat")
    assert loaded == sent  # every field, tool calls and timestamps included
    assert loaded[1].tool_calls[0].arguments == {"a": 1, "b": 2}
    assert [m.model_dump() for m in loaded] == [ChatMessage.model_validate(m.model_dump()).model_dump() for m in sent]
    assert store.messages(session.id, last=2) == sent[2:]
    assert store.get_session("chat").notebook == "analysis.ipynb"
    assert store.get_session(session.id).metadata == {"k": 1}


def test_loaded_messages_behave_like_validated_ones(store):
    """The fast row->ChatMessage path must give real, fully working models."""
    s = store.create_session()
    original = assistant("x", [ToolCall.from_raw("c9", "f", "not json")])
    store.append_message(s, original)
    (loaded,) = store.messages(s)
    assert loaded.tool_calls[0].arguments is None and loaded.tool_calls[0].raw_arguments == "not json"
    assert loaded.to_openai() == original.to_openai()
    assert loaded.model_dump_json() == original.model_dump_json()
    assert loaded.model_fields_set == original.model_fields_set | set(ChatMessage.model_fields)
    copy = loaded.model_copy(update={"content": "y"})
    assert copy.content == "y" and loaded.content == "x"
    loaded.pinned = True  # assignable like any model
    assert loaded.pinned is True
    # Loaded models share one "fields set" (all fields); copies must not share it.
    other = store.messages(s)[0]
    assert copy.model_fields_set is not loaded.model_fields_set
    assert other.model_fields_set == set(ChatMessage.model_fields) and other.pinned is False
    assert ChatMessage.model_validate(loaded.model_dump()) == loaded


def test_session_names_are_unique_and_errors_say_what_to_do(store):
    store.create_session("work")
    with pytest.raises(StoreError, match=r"load_session\('work'\)"):
        store.create_session("work")
    with pytest.raises(SessionNotFound, match="list_sessions"):
        store.get_session("nope")
    with pytest.raises(SessionNotFound):
        store.append_message("nope", user("hi"))
    assert store.get_or_create_session("work").name == "work"
    assert store.get_or_create_session("play", model="m").model == "m"
    assert store.find_session("missing") is None
    renamed = store.rename_session("play", "fun")
    assert renamed.name == "fun" and store.find_session("play") is None


def test_appending_the_same_message_twice_is_refused(store):
    s = store.create_session()
    m = user("once")
    store.append_message(s, m)
    with pytest.raises(StoreError, match="update_message"):
        store.append_message(s, m)
    assert len(store.messages(s)) == 1


def test_update_and_pin(store):
    s = store.create_session()
    m = assistant("partial", status="interrupted")
    store.append_message(s, m)
    updated = store.update_message(m.id, content="partial and more", status="complete")
    assert (updated.content, updated.status) == ("partial and more", "complete")
    assert store.pin_message(m.id).pinned is True
    with pytest.raises(ValueError, match="complete"):
        store.update_message(m.id, status="weird")
    with pytest.raises(StoreError, match="no stored message"):
        store.update_message("zzz", content="x")


def test_a_model_switch_is_saved_with_the_session(store):
    s = store.create_session("switching", model="scripted")
    store.set_session_model("switching", "openai/gpt-4o-mini")  # by name or id
    assert store.get_session(s.id).model == "openai/gpt-4o-mini"
    assert [x.session.model for x in store.list_sessions()] == ["openai/gpt-4o-mini"]
    with pytest.raises(SessionNotFound):
        store.set_session_model("nobody", "scripted")


def everything_stored(store: Store, tmp_path: Path) -> bytes:
    """All the store keeps, as bytes: its SQLite files, or every row of every PostgreSQL table as text.

    Closes the store (SQLite's WAL is folded into the file on close)."""
    if store.backend == "sqlite":
        store.close()
        return b"".join(p.read_bytes() for p in tmp_path.glob("llmgine.db*"))
    tables = [r[0] for r in store.database.read("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    assert "sessions" in tables and "events" in tables
    text = "".join(row[0] for table in tables for row in store.database.read(f"SELECT t::text FROM {table} t"))
    store.close()
    return text.encode()


def test_engine_state_and_metadata_keep_secrets_out(store, tmp_path):
    s = store.create_session("s", metadata={"api_key": "sk-live-123", "team": "x"})
    store.set_engine_state(s, {"model": "gpt", "OPENAI_API_KEY": "sk-live-456", "nested": {"password": "pw"}})
    store.update_session_metadata(s, authorization="Bearer sk-live-789", input_tokens=5)
    got = store.get_session("s")
    assert got.engine_state == {"model": "gpt", "OPENAI_API_KEY": "[REDACTED]", "nested": {"password": "[REDACTED]"}}
    assert got.metadata == {"api_key": "[REDACTED]", "team": "x", "authorization": "[REDACTED]", "input_tokens": 5}

    class Configured(Event):
        settings: dict[str, str]

    store.log_event(Configured(session_id=s.id, settings={"api_key": "sk-live-000", "model": "gpt"}))
    raw = everything_stored(store, tmp_path)
    assert b"team" in raw and b"sk-live" not in raw


SECRET_NAMES = [
    "token", "api_token", "openai_key", "private_key", "aws_session_token", "X-Key", "x-api-key", "api_key",
    "OPENAI_API_KEY", "Authorization", "password", "aws_secret_access_key", "vertex_credentials", "refresh_token",
    "azure_ad_token", "extra_headers", "passwd", "client_secret",
]
COUNT_NAMES = [
    "input_tokens", "output_tokens", "max_tokens", "cached_tokens", "session_tokens", "paid_tokens", "total_tokens",
    "max_completion_tokens", "cache_read_input_tokens", "keys", "key_count", "tokens", "monkey", "tokenizer",
    "model", "team",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_the_store_and_the_llm_layer_hide_the_same_secret_names(name):
    from llmgine_nb.llm.base import public_settings
    from llmgine_nb.secrets import MARKER as REDACTED
    from llmgine_nb.secrets import redact_named as redact_secrets

    assert redact_secrets({"outer": {name: "sk-live-123"}}) == {"outer": {name: REDACTED}}
    assert name not in public_settings({name: "sk-live-123", "model": "gpt"})


@pytest.mark.parametrize("name", COUNT_NAMES)
def test_counts_and_ordinary_names_stay_visible_in_both(name):
    from llmgine_nb.llm.base import public_settings
    from llmgine_nb.secrets import redact_named as redact_secrets

    assert redact_secrets({name: 12}) == {name: 12}
    assert public_settings({name: 12}) == {name: 12}


def test_new_secret_names_never_reach_the_disk(store, tmp_path):
    s = store.create_session("s", metadata={name: f"sk-live-{i:03}" for i, name in enumerate(SECRET_NAMES)})
    store.update_session_metadata(s, input_tokens=5, max_tokens=9)

    class Configured(Event):
        settings: dict[str, str]

    store.log_event(Configured(session_id=s.id, settings={"token": "sk-live-xyz", "X-Key": "sk-live-abc"}))
    got = store.get_session("s")
    assert {got.metadata[n] for n in SECRET_NAMES} == {"[REDACTED]"}
    assert (got.metadata["input_tokens"], got.metadata["max_tokens"]) == (5, 9)
    raw = everything_stored(store, tmp_path)
    assert b"input_tokens" in raw and b"sk-live" not in raw


@given(st.text(max_size=30) | st.sampled_from(SECRET_NAMES + COUNT_NAMES))
@settings(max_examples=300, deadline=None)
def test_the_cheap_pre_check_never_misses_a_secret_name(name):
    from llmgine_nb.secret_names import is_secret_name
    from llmgine_nb.secrets import json_names_secret as might_hold_secret

    for ensure_ascii in (True, False):  # the store sees JSON as json.dumps and pydantic write it
        payload = json.dumps({"outer": [{name: "x"}]}, ensure_ascii=ensure_ascii)
        assert might_hold_secret(payload) == is_secret_name(name), payload


# The Kelvin sign lower-cases to 'k' and the dotted capital I to two characters: escaped (ensure_ascii) or not.
_NAME_PARTS = st.sampled_from(["api_key", "token", "x_token", "input_tokens", "secret", "key", ":", '"', "\\", " ", "é", "a",
                               "\u212a", "\u0130"])
_ODD_NAMES = st.lists(_NAME_PARTS, max_size=3).map("".join)


@given(st.dictionaries(_ODD_NAMES, _ODD_NAMES, max_size=4), st.booleans())
@settings(max_examples=300, deadline=None)
def test_the_fast_key_scan_never_misses_a_key_the_exact_pattern_finds(obj, ensure_ascii):
    from llmgine_nb.secrets import _JSON_KEY, _json_keys, _secret_key

    text = json.dumps({"outer": obj, "list": [obj]}, ensure_ascii=ensure_ascii)
    if any(_secret_key(key) for key in _JSON_KEY.findall(text)):
        assert any(_secret_key(key) for key in _json_keys(text)), text



def test_tool_call_arguments_load_as_they_were_parsed_when_made(store):
    """Arguments that are not a JSON object, odd numbers and a lone surrogate's escape (which
    ``ToolCall.from_raw`` turns into U+FFFD) read back exactly as made."""
    s = store.create_session()
    raws = ['{"a": "\\ud800 and \\u00e9"}', "[1, 2]", '{"n": 123456789012345678901234567890, "x": 1e400}', "", "{oops"]
    made = assistant(None, [ToolCall.from_raw(f"c{i}", "f", raw) for i, raw in enumerate(raws)])
    store.append_messages(s, [user("go"), made])
    loaded = store.messages(s)[1]
    assert loaded == made
    assert loaded.tool_calls[0].arguments == {"a": "\ufffd and \u00e9"}
    assert [c.arguments for c in loaded.tool_calls[1:]] == [None, {"n": 123456789012345678901234567890, "x": float("inf")}, {}, None]

# -- tool calls, approvals, resume -----------------------------------------------------


def test_tool_call_lifecycle(store):
    s = store.create_session()
    store.append_message(s, user("add 1 and 2"))
    store.append_message(s, assistant(None, [ToolCall.from_raw("c1", "add", '{"a": 1, "b": 2}')]))
    (call,) = store.pending_tool_calls(s)
    assert (call.call_id, call.tool, call.status, call.call.arguments) == ("c1", "add", "requested", {"a": 1, "b": 2})

    decision = store.record_approval(s, "c1", "approved", who="alice", edited_arguments={"a": 1, "b": 5}, reason="ok")
    assert decision.edited_arguments == {"a": 1, "b": 5}
    call = store.get_tool_call(s, "c1")
    assert call.status == "approved" and call.decided is not None
    assert call.effective_arguments == {"a": 1, "b": 5}
    assert store.pending_tool_calls(s)[0].status == "approved"  # decided but never run: still pending

    store.tool_started(s, "c1")
    assert store.get_tool_call(s, "c1").status == "running"
    store.tool_finished(s, "c1", result="6")
    store.append_message(s, tool_result("c1", "6"))
    call = store.get_tool_call(s, "c1")
    assert (call.status, call.result) == ("done", "6")
    assert call.duration_ms is not None and call.duration_ms >= 0
    assert call.approval.who == "alice" and call.approval.reason == "ok"
    assert store.pending_tool_calls(s) == []


def test_denied_and_failed_calls_keep_their_status(store):
    s = store.create_session()
    store.append_message(
        s, assistant(None, [ToolCall.from_raw("a", "rm", "{}"), ToolCall.from_raw("b", "div", '{"x": 0}')])
    )
    store.record_approval(s, "a", "denied", who="bob", reason="too risky")
    store.tool_started(s, "b")
    store.tool_finished(s, "b", error="ZeroDivisionError: division by zero")
    store.append_messages(s, [tool_result("a", "denied by bob", "rm"), tool_result("b", "error", "div")])
    calls = {c.call_id: c for c in store.tool_calls(s)}
    assert calls["a"].status == "denied" and calls["a"].approval.reason == "too risky"
    assert calls["b"].status == "error" and calls["b"].error.startswith("ZeroDivisionError")
    with pytest.raises(ValueError, match="approved"):
        store.record_approval(s, "a", "maybe")
    with pytest.raises(ToolCallNotFound, match="append the assistant message"):
        store.record_approval(s, "zzz", "approved")


def test_a_call_left_running_by_a_restart_then_denied_is_denied(store):
    s = store.create_session()
    store.append_message(s, assistant(None, [ToolCall.from_raw("r", "rm", "{}"), ToolCall.from_raw("d", "ls", "{}")]))
    store.tool_started(s, "r")  # the kernel died while it ran: it may or may not have finished
    store.tool_started(s, "d")
    store.tool_finished(s, "d", result="a b c")
    store.append_message(s, tool_result("d", "a b c", "ls"))
    assert [c.call_id for c in store.pending_tool_calls(s)] == ["r"]
    store.record_approval(s, "r", "denied", who="alice", reason="do not run it twice")  # asked again
    store.record_approval(s, "d", "denied", who="alice")  # a late duplicate for a call that finished
    store.append_message(s, tool_result("r", "denied by alice", "rm"))
    calls = {c.call_id: c for c in store.tool_calls(s)}
    assert calls["r"].status == "denied" and calls["d"].status == "done"
    assert store.pending_tool_calls(s) == []


def test_reused_call_ids_resolve_to_the_latest_call(store):
    s = store.create_session()
    store.append_messages(s, [assistant(None, [ToolCall.from_raw("call_0", "f", "{}")]), tool_result("call_0", "1", "f")])
    store.append_message(s, assistant(None, [ToolCall.from_raw("call_0", "g", "{}")]))
    (pending,) = store.pending_tool_calls(s)
    assert pending.tool == "g"
    assert [c.status for c in store.tool_calls(s)] == ["done", "requested"]


def test_resume_after_restart_presents_the_undecided_call_again(db_target):
    path = db_target
    with Store(path) as first:
        s = first.create_session("trip", model="scripted")
        history = [
            user("book a flight"),
            assistant(None, [ToolCall.from_raw("c1", "search", '{"to": "Oslo"}')]),
            tool_result("c1", "3 flights", "search"),
            assistant(None, [ToolCall.from_raw("c2", "book", '{"flight": 2}')]),
        ]
        first.append_messages(s, history)
        first.set_engine_state(s, {"turn": 2})
    # A new Store on the same file is what a kernel restart sees.
    with Store(path) as second:
        resumed = second.load_session("trip")
        assert resumed.messages == history
        assert resumed.session.engine_state == {"turn": 2}
        (pending,) = resumed.pending_tool_calls
        assert (pending.call_id, pending.tool, pending.status) == ("c2", "book", "requested")
        assert pending.effective_arguments == {"flight": 2}
        # Nothing ran it: no result, no decision.
        assert pending.result is None and pending.approval is None
        assert second.load_session(s.id).id == s.id  # by id too
        second.record_approval("trip", "c2", "approved", who="user")
    with Store(path) as third:
        assert third.pending_tool_calls("trip")[0].status == "approved"


# -- forks ---------------------------------------------------------------------------------


def test_fork_copies_history_up_to_the_message(store):
    s = store.create_session("base", model="m", notebook="nb.ipynb")
    msgs = [
        user("q1"),
        assistant(None, [ToolCall.from_raw("c1", "f", "{}")]),
        tool_result("c1", "r1", "f"),
        assistant("a1"),
        user("q2"),
        assistant(None, [ToolCall.from_raw("c2", "g", "{}")]),
        tool_result("c2", "r2", "g"),
        assistant("a2"),
    ]
    store.append_messages(s, msgs)
    store.record_approval(s, "c1", "approved", who="me")
    store.record_approval(s, "c2", "approved", who="me")
    store.add_memory("likes tea", session=s)

    fork = store.fork_session("base", msgs[5].id, name="alt")
    assert (fork.forked_from_session, fork.forked_from_message) == (s.id, msgs[5].id)
    assert (fork.model, fork.notebook) == ("m", "nb.ipynb")
    copied = store.messages("alt")
    assert [(m.role, m.content) for m in copied] == [(m.role, m.content) for m in msgs[:6]]
    assert not {m.id for m in copied} & {m.id for m in msgs}  # new ids
    calls = {c.call_id: c for c in store.tool_calls("alt")}
    assert calls["c1"].status == "done" and calls["c1"].approval.who == "me"
    # c2's result came after the fork point: in the fork it waits for a decision again.
    assert calls["c2"].status == "requested" and calls["c2"].approval is None
    assert [p.call_id for p in store.pending_tool_calls("alt")] == ["c2"]
    assert [n.text for n in store.memory("alt")] == ["likes tea"]
    assert len(store.messages("base")) == 8  # the original is untouched
    with pytest.raises(StoreError, match="fork at one of"):
        store.fork_session("base", "not-a-message")


# -- LLM calls, usage and listing -----------------------------------------------------


def test_usage_per_session_model_and_day(store):
    a = store.create_session("a")
    b = store.create_session("b")
    day1 = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
    day2 = datetime(2025, 3, 2, 9, tzinfo=timezone.utc)
    store.record_llm_call(LLMCall.from_usage("gpt-4o", Usage(input_tokens=100, output_tokens=10), cost=0.01,
                                             latency_ms=200, created=day1), session="a")
    store.record_llm_call(LLMCall(model="gpt-4o", session_id=b.id, input_tokens=50, output_tokens=5, cached_tokens=20,
                                  cost=0.005, latency_ms=100, ttft_ms=40, created=day2))
    store.record_llm_call(LLMCall(model="claude", input_tokens=7, error="rate limited", created=day2), session=b)

    by_session = {r.key: r for r in store.usage("session")}
    assert by_session[a.id].input_tokens == 100 and by_session[a.id].calls == 1
    assert by_session[b.id].calls == 2 and by_session[b.id].errors == 1 and by_session[b.id].cached_tokens == 20
    by_model = {r.key: r for r in store.usage("model")}
    assert by_model["gpt-4o"].total_tokens == 165 and by_model["gpt-4o"].cost == pytest.approx(0.015)
    assert by_model["gpt-4o"].mean_latency_ms == pytest.approx(150)
    by_day = {r.key: r.calls for r in store.usage("day")}
    assert by_day == {"2025-03-01": 1, "2025-03-02": 2}
    assert [r.key for r in store.usage("model", session="b")] == ["claude", "gpt-4o"]
    assert {r.key for r in store.usage("day", since=date(2025, 3, 2))} == {"2025-03-02"}
    with pytest.raises(ValueError, match="'day'"):
        store.usage("week")
    assert [c.ttft_ms for c in store.llm_calls("b")] == [40, None]


def test_list_sessions_with_counts_and_totals(store):
    old = store.create_session("old")
    new = store.create_session("new")
    store.append_messages(new, [user("1"), assistant("2")])
    store.record_llm_call(LLMCall(model="m", input_tokens=3, output_tokens=4, cost=0.5), session=new)
    store.append_message(old, user("latest activity is here"))
    listed = store.list_sessions()
    assert [x.name for x in listed] == ["old", "new"]  # most recent activity first
    by_name = {x.name: x for x in listed}
    assert by_name["new"].message_count == 2 and by_name["new"].llm_calls == 1
    assert (by_name["new"].input_tokens, by_name["new"].output_tokens, by_name["new"].cost) == (3, 4, 0.5)
    assert by_name["old"].message_count == 1 and by_name["old"].cost == 0.0
    assert by_name["old"].last_activity >= by_name["new"].last_activity
    assert len(store.list_sessions(limit=1)) == 1


# -- the event log ----------------------------------------------------------------------


def test_events_come_back_typed_and_filtered(store):
    e1 = NoteTaken(session_id="s1", text="first", count=2, tags=["a"], metadata={"via": "test"})
    e2 = NoteTaken(session_id="s2", text="second")

    class Other(Event):
        value: float

    e3 = Other(session_id="s1", value=1.5)
    store.log_events([e1, e2, e3])
    store.log_event(e1)  # logging twice keeps one row
    got = store.events("s1")
    assert got == [e1, e3]
    assert isinstance(got[0], NoteTaken) and got[0].tags == ["a"] and got[0].metadata == {"via": "test"}
    assert store.events(types=[NoteTaken]) == [e1, e2]
    assert store.events(types=[Other.type_name]) == [e3]
    assert store.events(limit=1) == [e1]


def test_unknown_event_types_are_kept_not_dropped(store):
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO events (id, type, session_id, payload, created) VALUES (?,?,?,?,?)",
            ("x1", "some_app.events.Gone", "s", '{"id": "x1", "session_id": "s", "type": "some_app.events.Gone", '
             '"timestamp": "2025-01-01T00:00:00Z", "metadata": {}, "size": 3}', "2025-01-01T00:00:00.000000+00:00"),
        )
    (event,) = store.events("s")
    assert isinstance(event, UnknownEvent)
    assert event.stored_type == "some_app.events.Gone" and event.payload["size"] == 3


def test_prune_events_before_a_date(store):
    now = datetime.now(timezone.utc)
    old = NoteTaken(text="old", timestamp=now - timedelta(days=40))
    recent = NoteTaken(text="recent", timestamp=now - timedelta(days=1))
    store.log_events([old, recent])
    assert store.prune_events(now - timedelta(days=30)) == 1
    assert [e.text for e in store.events()] == ["recent"]
    assert store.prune_events((now - timedelta(days=30)).replace(tzinfo=None)) == 0  # naive = UTC


# -- atomic turns --------------------------------------------------------------------------


def test_record_turn_writes_everything_or_nothing(store):
    s = store.create_session()
    turn = [user("hi"), assistant(None, [ToolCall.from_raw("c1", "f", "{}")]), tool_result("c1", "ok", "f"), assistant("done")]
    events = [NoteTaken(session_id=s.id, text=str(i)) for i in range(5)]
    store.record_turn(s, turn, llm_calls=[LLMCall(model="m", input_tokens=1)], events=events)
    assert len(store.messages(s)) == 4 and len(store.events(s.id)) == 5 and len(store.llm_calls(s)) == 1
    assert store.get_tool_call(s, "c1").status == "done"

    # A turn that fails half-way (duplicate message id) leaves no trace at all.
    bad = [user("again"), turn[0]]
    with pytest.raises(StoreError):
        store.record_turn(s, bad, llm_calls=[LLMCall(model="m")], events=[NoteTaken(session_id=s.id, text="x")])
    assert len(store.messages(s)) == 4 and len(store.events(s.id)) == 5 and len(store.llm_calls(s)) == 1


def test_transaction_rolls_back_on_error(store):
    s = store.create_session()
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.append_message(s, user("inside"))
            store.add_memory("also inside", session=s)
            raise RuntimeError("boom")
    assert store.messages(s) == [] and store.memory(s) == []
    store.append_message(s, user("after"))  # the connection is out of the failed transaction
    assert [m.content for m in store.messages(s)] == ["after"]
    if store.backend == "sqlite":
        assert not store.conn.in_transaction


# -- search, memory, housekeeping ------------------------------------------------------------


def test_full_text_search_with_snippets(store):
    a = store.create_session("cooking")
    b = store.create_session("travel")
    store.append_messages(a, [user("How long should I boil pasta?"), assistant("Boil the pasta for 9 minutes.")])
    store.append_messages(b, [user("What's the best train from Oslo to Bergen?")])
    hits = store.search("pasta")
    assert {h.session_name for h in hits} == {"cooking"} and len(hits) == 2
    assert "**pasta**" in hits[0].snippet
    assert store.search("boiling")  # porter stemming: boiling ~ boil
    assert [h.session_name for h in store.search("Oslo")] == ["travel"]
    assert store.search("pasta", session="travel") == []
    assert store.search("what's the best") and store.search('"quoted" -dash OR')  == []  # typed text is safe
    assert [h.role for h in store.search("boil AND minutes", raw=True)] == ["assistant"]
    # The index follows edits and deletions.
    hit = store.search("Bergen")[0]
    store.update_message(hit.message_id, content="Take the night train")
    assert store.search("Bergen") == [] and store.search("night")


@pytest.mark.sqlite_only  # FTS5's query syntax; PostgreSQL's web-search syntax has no errors
def test_raw_fts5_syntax_errors_say_what_to_do(store):
    store.append_message(store.create_session(), user("How long should I boil pasta?"))
    with pytest.raises(StoreError, match="raw=False"):
        store.search('"unbalanced', raw=True)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["append", "append", "edit", "delete_session", "search"]),
            st.sampled_from(["apple", "banana", "cherry"]),
            st.integers(min_value=0, max_value=9),
        ),
        max_size=25,
    )
)
def test_search_index_is_exact_whatever_the_order_of_writes_and_searches(tmp_path_factory, steps):
    """Messages reach the index in batches (migration m004, store/search.py) and search also
    looks at the ones still queued; edits and deletes of messages indexed or still queued
    must leave both exactly matching the messages table."""
    store = Store(tmp_path_factory.mktemp("search") / "s.db")
    sessions = [store.create_session() for _ in range(2)]
    for action, word, n in steps:
        if action == "append":
            store.append_message(sessions[n % 2], user(f"{word} number {n}"))
        elif action == "edit":
            stored = store.messages(sessions[n % 2])
            if stored:
                store.update_message(stored[n % len(stored)].id, content=f"{word} edited")
        elif action == "delete_session":
            store.delete_session(sessions[n % 2])
            sessions[n % 2] = store.create_session()
        else:
            store.search(word)
    for word in ("apple", "banana", "cherry", "edited"):
        found = {hit.message_id for hit in store.search(word, limit=1000)}
        expected = {
            m.id for session in sessions for m in store.messages(session) if word in (m.content or "").split()
        }
        assert found == expected, word
    # Raises if the index differs from the messages table in any way (rank 1: compare with the content).
    store.index_for_search()
    store.db.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    store.close()


def test_memory_notes_per_session_and_global(store):
    s = store.create_session()
    g = store.add_memory("The user is called Ada")
    n = store.add_memory("This notebook is about sales", session=s)
    assert [m.text for m in store.memory(s)] == [g.text, n.text]
    assert [m.text for m in store.memory(s, include_global=False)] == [n.text]
    assert [m.text for m in store.memory()] == [g.text]
    store.delete_memory(g.id)
    assert [m.id for m in store.memory(s)] == [n.id]
    with pytest.raises(ValueError):
        store.add_memory("   ")


def test_delete_session_removes_every_row_and_vacuum_shrinks(store):
    keep = store.create_session("keep")
    gone = store.create_session("gone")
    for s in (keep, gone):
        store.record_turn(
            s,
            [user("word " * 2000), assistant(None, [ToolCall.from_raw("c", "f", "{}")])],
            llm_calls=[LLMCall(model="m")],
            events=[NoteTaken(session_id=s.id, text="e")],
        )
        store.record_approval(s, "c", "approved")
        store.add_memory("note", session=s)
        store.save_summary(s.id, store.messages(s)[0].id, "sum", 1)
    store.delete_session("gone")
    for table in ("messages", "tool_calls", "approvals", "llm_calls", "events", "memory", "summaries"):
        rows = store.conn.execute(f"SELECT count(*) FROM {table} WHERE session_id = ?", (gone.id,)).fetchone()[0]
        assert rows == 0, table
    assert store.find_session("gone") is None
    assert store.search("word") and all(h.session_id == keep.id for h in store.search("word"))
    assert len(store.messages("keep")) == 2

    pages_before = store.conn.execute("PRAGMA page_count").fetchone()[0] if store.backend == "sqlite" else 0
    store.vacuum()
    if store.backend == "sqlite":
        assert store.conn.execute("PRAGMA page_count").fetchone()[0] <= pages_before
    assert store.integrity_check() == []
    assert store.search("word")  # rowids survived VACUUM: the index still matches
    assert store.messages("keep")[0].content.startswith("word")


def test_store_is_safe_to_share_between_threads(store):
    import threading

    s = store.create_session()
    errors = []

    def writer(tag: str) -> None:
        try:
            for i in range(50):
                store.append_message(s, user(f"{tag}{i}"))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    msgs = store.messages(s)
    assert len(msgs) == 100
    assert [m.content for m in msgs if m.content.startswith("a")] == [f"a{i}" for i in range(50)]


def test_summaries_round_trip(store):
    s = store.create_session()
    assert store.latest_summary(s.id) is None
    store.save_summary(s.id, "m1", "first", 3)
    store.save_summary(s.id, "m9", "second", 9)
    latest = store.latest_summary(s.id)
    assert (latest.upto_message_id, latest.text, latest.covered) == ("m9", "second", 9)


def test_sqlite_is_reachable_with_plain_sqlite3(tmp_path):
    """The file is an ordinary SQLite database other tools can read."""
    path = tmp_path / "plain.db"
    with Store(path) as s:
        s.append_message(s.create_session("x"), user("readable"))
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT content FROM messages").fetchall() == [("readable",)]


def test_resume_in_a_fresh_process_after_the_writer_exited(db_target):
    """The kernel that wrote the session is gone; a new process picks it up."""
    import subprocess
    import sys

    path = db_target
    writer = (
        "import sys\n"
        "from llmgine_nb.chat import ChatMessage, ToolCall\n"
        "from llmgine_nb.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "session = s.create_session('notebook-chat', model='scripted', notebook='demo.ipynb')\n"
        "s.append_messages(session, [ChatMessage(role='user', content='delete old logs'),\n"
        "    ChatMessage(role='assistant', tool_calls=[ToolCall.from_raw('c7', 'delete_logs', '{\"days\": 30}')])])\n"
        "print(session.id)\n"
    )
    out = subprocess.run([sys.executable, "-c", writer, str(path)], capture_output=True, text=True, check=True)
    session_id = out.stdout.strip()
    with Store(path) as store:
        resumed = store.load_session("notebook-chat")
        assert resumed.id == session_id and resumed.session.notebook == "demo.ipynb"
        assert [m.content for m in resumed.messages] == ["delete old logs", None]
        (pending,) = resumed.pending_tool_calls
        assert (pending.tool, pending.effective_arguments, pending.status) == ("delete_logs", {"days": 30}, "requested")


def test_only_chat_messages_are_accepted(store):
    s = store.create_session()
    with pytest.raises(TypeError, match="ChatMessage"):
        store.append_message(s, {"role": "user", "content": "hi"})


def test_unknown_costs_are_counted_not_summed_as_zero(store):
    # A local model missing from litellm's price list records cost None: the
    # totals must say "unknown", not "$0.00".
    s = store.create_session("mixed")
    store.record_llm_call(LLMCall.from_usage("ollama/llama3", Usage(input_tokens=10, output_tokens=5), cost=None,
                                             latency_ms=100), session=s)
    store.record_llm_call(LLMCall(model="gpt-4o", input_tokens=3, output_tokens=4, cost=0.25), session=s)
    # Failed before using any tokens: nothing was billed, so its price is not "unknown".
    store.record_llm_call(LLMCall(model="gpt-4o", error="rate limited"), session=s)
    priced = store.create_session("priced")
    store.record_llm_call(LLMCall(model="gpt-4o", input_tokens=1, cost=0.5), session=priced)

    by_model = {r.key: r for r in store.usage("model")}
    assert by_model["ollama/llama3"].unpriced_calls == 1 and by_model["ollama/llama3"].cost == 0.0
    assert not by_model["ollama/llama3"].cost_known
    assert by_model["gpt-4o"].unpriced_calls == 0 and by_model["gpt-4o"].cost_known
    by_session = {r.key: r for r in store.usage("session")}
    assert (by_session[s.id].cost, by_session[s.id].unpriced_calls) == (0.25, 1)
    assert (by_session[priced.id].cost, by_session[priced.id].unpriced_calls) == (0.5, 0)
    listed = {x.name: x for x in store.list_sessions()}
    assert (listed["mixed"].cost, listed["mixed"].unpriced_calls, listed["mixed"].cost_known) == (0.25, 1, False)
    assert (listed["priced"].unpriced_calls, listed["priced"].cost_known) == (0, True)
    assert store.create_session("empty") and {x.name: x for x in store.list_sessions()}["empty"].unpriced_calls == 0


def test_writing_to_a_session_deleted_meanwhile_says_so(store):
    record = store.create_session("gone")
    store.delete_session(record)  # say, from another notebook
    with pytest.raises(SessionNotFound, match="no longer exists"):
        store.record_turn(record, [user("hello?")])
    with pytest.raises(SessionNotFound):  # model calls alone are not filed under a missing session either
        store.record_turn(record, [], llm_calls=[LLMCall(model="m", input_tokens=1)])
    assert store.llm_calls() == []


@pytest.mark.sqlite_only  # SQLite's deferred FTS5 index (PostgreSQL indexes each row as it is written)
def test_a_long_queue_of_new_messages_is_indexed_in_short_transactions(store):
    s = store.create_session()
    # A queue as an older version left it: rows written without indexing any of them.
    store.conn.executemany(
        "INSERT INTO messages (id, session_id, seq, role, content, status, pinned, created) "
        "VALUES (?, ?, ?, 'user', ?, 'complete', 0, '2025-01-01T00:00:00.000000+00:00')",
        [(f"m{i}", s.id, i, f"message number {i} about kiwis") for i in range(1_203)],
    )
    store.conn.commit()
    commits: list[str] = []
    store.db.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    store.index_for_search(per_transaction=500)
    store.db.conn.set_trace_callback(None)
    assert len(commits) == 3  # 500 + 500 + 203
    assert len(store.search("kiwis", limit=5_000)) == 1_203
    store.db.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")

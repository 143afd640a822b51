"""Secrets never reach the database file, JSONL files or OpenTelemetry spans.

The end-to-end test sets fake keys in the environment, publishes events whose
payloads echo them (an error message, tool arguments, a traceback, metadata),
and scans the raw bytes of the SQLite files, both JSONL files and every string
of every span.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import Field
from test_observe_otel import all_strings
from test_observe_scenarios import FAKE_ANTHROPIC_KEY, FAKE_CONFIGURED_SECRET, FAKE_OPENAI_KEY, run_scenario

from llmgine_nb.bus import MessageBus
from llmgine_nb.llm.events import LLMCallFinished, LLMCallStarted
from llmgine_nb.messages import Event, HandlerFailed
from llmgine_nb.observe import REDACTED, Redactor, export_jsonl, observe
from llmgine_nb.secrets import use_dotenv
from llmgine_nb.store import Store, UnknownEvent
from llmgine_nb.tools.events import ToolStarted

FAKE_GITHUB_TOKEN = "ghp_testtoken_ABCDEFGHIJKLMNOP"


def forms(secret: str) -> list[bytes]:
    """The byte strings a secret could be found as on disk."""
    escaped = json.dumps(secret)[1:-1]
    return [secret.encode(), escaped.encode(), secret[:16].encode()]


@pytest.fixture
def in_tmp_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Work in ``tmp_path``, whose ``.env`` configuration finds (once, as it would on loading)."""
    monkeypatch.chdir(tmp_path)
    use_dotenv(None)
    yield tmp_path
    use_dotenv(None)


@pytest.fixture
def fake_keys(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> list[str]:
    tmp_path = in_tmp_dir  # its .env holds one more key, never put in os.environ
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    (tmp_path / ".env").write_text(f"GITHUB_TOKEN={FAKE_GITHUB_TOKEN}\n", encoding="utf-8")
    return [FAKE_OPENAI_KEY, FAKE_ANTHROPIC_KEY, FAKE_GITHUB_TOKEN, FAKE_CONFIGURED_SECRET]


async def test_no_secret_in_database_jsonl_or_spans(fake_keys: list[str], tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    db_path = tmp_path / "observed.db"
    store = Store(db_path)
    bus = MessageBus()
    watch = observe(bus, store, otel=provider, jsonl=tmp_path / "live.jsonl", capture_content=True,
                    log_deltas=True)
    watch.redactor.add(FAKE_CONFIGURED_SECRET)  # a secret the application configures

    scenario = await run_scenario(bus)  # its error messages and tool arguments echo the keys
    async with bus.session("more") as session:
        await bus.publish(ToolStarted(call_id="t9", tool_name="deploy",
                                      arguments={"note": f"use {FAKE_CONFIGURED_SECRET} and {FAKE_GITHUB_TOKEN}"}))
        await bus.publish(LLMCallStarted(call_id="k", model="m", settings={"extra_headers": f"Bearer {FAKE_OPENAI_KEY}"},
                                         metadata={"echo": FAKE_ANTHROPIC_KEY}))
        await bus.publish(LLMCallFinished(call_id="k", model="m", text=f"Your key is {FAKE_OPENAI_KEY}."))
        await bus.publish(HandlerFailed(handler="h", event_id="e", event_type="x",
                                        error=f"boom {FAKE_OPENAI_KEY}", traceback=f"line 1\n{FAKE_GITHUB_TOKEN}"))
    watch.detach()
    export_path = tmp_path / "export.jsonl"
    exported = export_jsonl(store, export_path)
    store.close()

    # Everything was recorded (so the scan below is not vacuous) ...
    assert exported > 40
    assert len(exporter.get_finished_spans()) == 9 + 1  # the scenario's, and call k's
    live = (tmp_path / "live.jsonl").read_bytes()
    assert live.count(b"\n") == exported
    # ... and where a key was, the marker is.
    assert REDACTED.encode() in live and REDACTED.encode() in export_path.read_bytes()

    files = [p for p in tmp_path.iterdir() if p.name.startswith("observed.db")]  # the db, its WAL and SHM
    files += [tmp_path / "live.jsonl", export_path]
    for path in files:
        data = path.read_bytes()
        for secret in fake_keys:
            for form in forms(secret):
                assert form not in data, f"{secret[:6]}... found in {path.name}"

    for span in exporter.get_finished_spans():
        text = "\n".join(all_strings(span))
        for secret in fake_keys:
            assert secret not in text and secret[:16] not in text, (span.name, secret[:6])
    assert any(REDACTED in "\n".join(all_strings(s)) for s in exporter.get_finished_spans())
    assert scenario.session_id and session.id


def test_text_and_data() -> None:
    redactor = Redactor(["supersecretvalue", "short"], from_environment=False)
    assert redactor.text("a supersecretvalue b") == f"a {REDACTED} b"
    assert redactor.text("short stays") == "short stays"  # under 8 characters: too common to redact
    assert redactor.data({"supersecretvalue": ["x supersecretvalue", ("supersecretvalue", 3)]}) == {
        REDACTED: [f"x {REDACTED}", (REDACTED, 3)]
    }
    assert "supersecretvalue" not in repr(redactor) and "1 secrets" in repr(redactor)


def test_a_secret_with_json_special_characters_is_redacted_inside_json() -> None:
    redactor = Redactor([FAKE_CONFIGURED_SECRET], from_environment=False)
    event = LLMCallFinished(call_id="c", model="m", text=f"pw={FAKE_CONFIGURED_SECRET}!")
    text = redactor.json(event)
    assert json.loads(text)["text"] == f"pw={REDACTED}!"
    assert redactor.record(event)["text"] == f"pw={REDACTED}!"


def test_credential_named_fields_are_blanked() -> None:
    redactor = Redactor(from_environment=False)
    event = LLMCallStarted(call_id="c", model="m", settings={"api_key": "abc", "temperature": 0.1})
    record = redactor.record(event)
    assert record["settings"] == {"api_key": "[REDACTED]", "temperature": 0.1}


def test_message_is_returned_as_is_when_clean_and_rebuilt_when_not() -> None:
    redactor = Redactor(["the-secret-value"], from_environment=False)
    clean = LLMCallFinished(call_id="c", model="m", text="nothing here")
    assert redactor.message(clean) is clean
    dirty = LLMCallFinished(call_id="c", model="m", text="the-secret-value")
    rebuilt = redactor.message(dirty)
    assert type(rebuilt) is LLMCallFinished and rebuilt.text == REDACTED and rebuilt.id == dirty.id
    assert dirty.text == "the-secret-value"  # the original event is not changed


class KeyPrefixed(Event):
    key_id: str = Field(pattern=r"^sk-")


def test_a_redacted_event_that_no_longer_validates_becomes_unknown() -> None:
    redactor = Redactor(["sk-abcdefgh1234"], from_environment=False)
    rebuilt = redactor.message(KeyPrefixed(key_id="sk-abcdefgh1234"))
    assert isinstance(rebuilt, UnknownEvent)
    assert rebuilt.stored_type.endswith("KeyPrefixed") and rebuilt.payload["key_id"] == REDACTED


def test_environment_names_dotenv_and_refresh(monkeypatch: pytest.MonkeyPatch, in_tmp_dir: Path) -> None:
    tmp_path = in_tmp_dir
    monkeypatch.setenv("MY_SERVICE_TOKEN", "token-value-123")
    monkeypatch.setenv("SOME_SETTING", "not-a-secret-value")
    (tmp_path / ".env").write_text("STRIPE_SECRET=stripe-secret-999\nPLAIN=plain-value-000\n", encoding="utf-8")
    redactor = Redactor(refresh_interval=3600)
    assert redactor.text("token-value-123 stripe-secret-999") == f"{REDACTED} {REDACTED}"
    assert redactor.text("not-a-secret-value plain-value-000") == "not-a-secret-value plain-value-000"

    monkeypatch.setenv("LATE_API_KEY", "late-key-abcdef")
    assert redactor.text("late-key-abcdef") == REDACTED  # a key set a moment ago: seen at once
    monkeypatch.delenv("LATE_API_KEY")
    assert redactor.text("late-key-abcdef") == "late-key-abcdef"  # gone from the environment
    (tmp_path / ".env").write_text("STRIPE_SECRET=stripe-secret-999\nNEW_TOKEN=new-token-4567\n", encoding="utf-8")
    assert redactor.text("new-token-4567") == "new-token-4567"  # the .env file is read again only when due
    redactor.refresh()
    assert redactor.text("new-token-4567") == REDACTED

    quick = Redactor(refresh_interval=0)
    monkeypatch.setenv("LATER_API_KEY", "later-key-abcdef")
    assert quick.text("later-key-abcdef") == REDACTED  # re-read on use


def test_bad_secret_type() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        Redactor([123], from_environment=False)  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["api_key", "openai_key", "token", "aws_session_token", "vertex_credentials",
                                  "headers", "cookie", "client_secret", "password", "authorization"])
def test_the_json_pre_check_agrees_with_the_secret_name_rule(name: str) -> None:
    from llmgine_nb.secret_names import is_secret_name, json_names_secret

    assert is_secret_name(name)
    assert json_names_secret(json.dumps({"nested": {name: "value-of-some-length"}}))
    # Counts, and secret-looking words inside values, do not send an event through the walk.
    assert not json_names_secret(json.dumps({"input_tokens": 3, "text": f'"{name}": "value"'}))


def test_a_slow_refresh_on_another_thread_never_forgets_a_key_just_set(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    import threading
    import time

    monkeypatch.chdir(tmp_path)
    redactor = Redactor(refresh_interval=3600)
    reading = threading.Event()
    plain_dotenv = redactor._dotenv

    def slow_dotenv():  # type: ignore[no-untyped-def]
        if threading.current_thread() is writer:
            reading.set()
            time.sleep(0.3)  # a slow disk on that thread: the environment changes meanwhile
        return plain_dotenv()

    monkeypatch.setattr(redactor, "_dotenv", slow_dotenv)
    writer = threading.Thread(target=redactor.refresh)  # say, the event log's writer thread
    writer.start()
    reading.wait()
    monkeypatch.setenv("JUST_SET_API_KEY", "just-set-key-7f3a2b")
    assert redactor.text("just-set-key-7f3a2b") == REDACTED
    writer.join()
    assert redactor.text("just-set-key-7f3a2b") == REDACTED  # the slow refresh did not undo it

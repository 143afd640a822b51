"""The secrets module: one marker, one name rule, the value redactor and where values come from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmgine_nb import secrets
from llmgine_nb.llm import Settings
from llmgine_nb.llm.router import RoutedLLM
from llmgine_nb.secrets import MARKER, Redactor, redact_url_passwords, remember, use_dotenv


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://app:s3cr3t-pass@db.example/app", f"postgresql://app:{MARKER}@db.example/app"),
        ("redis://:hunter2hunter2@127.0.0.1:6379/0", f"redis://:{MARKER}@127.0.0.1:6379/0"),
        ("use mysql+pymysql://root:pw@localhost/x now", f"use mysql+pymysql://root:{MARKER}@localhost/x now"),
        ('{"url": "amqp://guest:guest-pass@mq:5672/"}', f'{{"url": "amqp://guest:{MARKER}@mq:5672/"}}'),
        ("http://localhost:8000/path@v2 and user@example.com", "http://localhost:8000/path@v2 and user@example.com"),
        ("https://example.com/a:b@c", "https://example.com/a:b@c"),
    ],
)
def test_passwords_inside_connection_strings_are_redacted(text: str, shown: str) -> None:
    assert redact_url_passwords(text) == shown
    assert Redactor(from_environment=False).text(text) == shown


def test_a_password_seen_in_a_url_is_hidden_where_it_turns_up_next() -> None:
    redactor = Redactor()
    redactor.text("connect to postgresql://svc:Standalone-Pw-4242@db/x")
    assert Redactor().text("the password is Standalone-Pw-4242") == f"the password is {MARKER}"


def test_a_url_password_in_the_environment_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_URL", "redis://:EnvUrlPassw0rd-11@cache:6379")
    assert Redactor().text("auth EnvUrlPassw0rd-11 failed") == f"auth {MARKER} failed"


def test_explicit_keys_are_known_to_every_redactor() -> None:
    before = Redactor()
    key = "sk-explicit-for-a-router-5566"
    RoutedLLM({"fast": {"model": "openai/gpt-4o-mini", "api_key": key}}, config=Settings(env={}, dotenv_path="/nonexistent/.env"))
    assert before.text(f"bad key {key}") == f"bad key {MARKER}"  # made earlier, told since
    assert Redactor().text(key) == MARKER
    assert Redactor(from_environment=False).text(key) == key  # a redactor told only its own secrets


def test_remember_ignores_short_and_missing_values() -> None:
    remember(None)
    remember("short")
    assert Redactor().text("short") == "short"


def test_the_dotenv_file_is_found_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("SERVICE_TOKEN=dotenv-token-value-99\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    use_dotenv(None)
    try:
        redactor, settings = Redactor(), Settings(env={})
        monkeypatch.chdir(tmp_path.parent)  # %cd
        redactor.refresh()
        assert redactor.text("dotenv-token-value-99") == MARKER
        assert Settings(env={}).get("SERVICE_TOKEN")[0] == "dotenv-token-value-99"
        assert settings.dotenv_path == secrets.dotenv_path() == (tmp_path / ".env").absolute()
    finally:
        use_dotenv(None)


def test_environment_changes_are_seen_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = Redactor(refresh_interval=3600)
    monkeypatch.setenv("FRESH_API_KEY", "fresh-key-value-1")
    assert redactor.text("fresh-key-value-1") == MARKER  # a new variable
    monkeypatch.setenv("FRESH_API_KEY", "fresh-key-value-2")
    assert redactor.text("fresh-key-value-2 fresh-key-value-1") == f"{MARKER} fresh-key-value-1"  # a new value
    assert "_data" not in Path(secrets.__file__).read_text(encoding="utf-8"), "public means only"


def test_one_marker_everywhere() -> None:
    from llmgine_nb.llm.base import public_settings
    from llmgine_nb.observe import REDACTED
    from llmgine_nb.secrets import redact_named

    assert REDACTED == MARKER
    assert public_settings({"metadata": {"api_key": "x" * 20}})["metadata"]["api_key"] == MARKER
    assert redact_named({"password": "pw"}) == {"password": MARKER}


def test_the_engine_does_not_import_the_observers() -> None:
    code = "import sys, llmgine_nb.engine; print('llmgine_nb.observe' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_a_draft_never_holds_the_beginning_of_a_key(tmp_path: Path) -> None:
    from llmgine_nb.bus import MessageBus
    from llmgine_nb.engine.journal import SessionJournal
    from llmgine_nb.store import Store

    key = "sk-split-across-pieces-0123456789"
    store = Store(tmp_path / "s.db")
    session = store.create_session()
    journal = SessionJournal(MessageBus(), store, session.id, Redactor([key], from_environment=False))
    draft = journal.save_draft(None, "Here it comes: " + key[:20], "m")  # the stream stopped mid-key
    draft = journal.save_draft(draft, "Here it comes: " + key + " and then a good deal more text after it" * 2, "m")
    stored = store.get_message(draft.id).content or ""
    assert stored.startswith("Here it comes: " + MARKER)
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("s.db"))
    assert key[:16].encode() not in files
    journal.close()
    store.close()


# -- the key scan every logged event goes through ------------------------------------------

_KEY_PARTS = ["api_key", "token", "x_token", "input_tokens", "secret", "key", ":", '"', "\\", "\\\\", " ", "é",
              "a", "\\u005f", "\n", "pass", "word"]


def _odd_names():
    from hypothesis import strategies as st

    return st.lists(st.sampled_from(_KEY_PARTS), max_size=4).map("".join)


def _json_values():
    from hypothesis import strategies as st

    scalars = st.none() | st.integers() | _odd_names()
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_odd_names(), inner, max_size=4),
                        max_leaves=12)


def _every_key(value) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _every_key(v))]
    if isinstance(value, list):
        return [k for v in value for k in _every_key(v)]
    return []


def _check_the_scan_finds_every_secret_key(value, ensure_ascii: bool, separators: tuple[str, str]) -> None:
    import json

    from llmgine_nb.secrets import is_secret_name, json_names_secret

    text = json.dumps(value, ensure_ascii=ensure_ascii, separators=separators)
    if any(is_secret_name(key) for key in _every_key(value)):
        assert json_names_secret(text), text


def test_the_key_scan_never_misses_a_secret_key_whatever_the_escapes_and_spacing() -> None:
    """Against the keys json.loads sees (not a pattern): quotes, backslashes, escapes and keys
    starting with ':' inside keys and values, as json.dumps and pydantic write JSON and with odd spacing."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    separators = st.sampled_from([(", ", ": "), (",", ":"), (",", " : "), (",\n", "\t:\n "), (", ", ":\r")])

    @given(_json_values(), st.booleans(), separators)
    @settings(max_examples=600, deadline=None)
    def check(value, ensure_ascii, seps):
        _check_the_scan_finds_every_secret_key({"outer": value, "list": [value]}, ensure_ascii, seps)

    check()


@pytest.mark.parametrize("name", ["api_key", ":api_key", "::x_token", 'pass"word', "my_secret\\", 'to"ken', "api_key\\"])
@pytest.mark.parametrize("text_value", ['he said "hi": ok', "back\\slash\\", '":', '\\":"', ':"api'])
def test_the_key_scan_finds_secret_keys_beside_quoted_text(name: str, text_value: str) -> None:
    """The cases that once fell back to the slow pattern: model output quoting someone, next to a key."""
    import json

    from llmgine_nb.secrets import is_secret_name, json_names_secret

    for separators in ((", ", ": "), (",", ":")):
        text = json.dumps({"text": text_value, name: "value", "after": text_value}, separators=separators)
        if is_secret_name(name):
            assert json_names_secret(text), text
        plain = json.dumps({"text": text_value, "input_tokens": 3, "name": name}, separators=separators)
        assert not json_names_secret(plain), plain  # a secret name as a value, and counts, are no keys


def test_the_compact_json_of_a_message_holds_what_to_json_holds() -> None:
    """message_and_json writes pydantic's compact JSON: the same object as to_json(), read back the same."""
    import json

    from llmgine_nb.chat import ToolCall, Usage
    from llmgine_nb.engine.events import TurnFinished
    from llmgine_nb.llm.events import LLMCallFinished, LLMTextDelta
    from llmgine_nb.messages import Message

    events = [
        LLMTextDelta(call_id="c", model="m", text='said "hi" \\ é \u2028 \x00', metadata={"turn_id": "t", "f": 1.5e-7}),
        LLMCallFinished(call_id="c", model="m", provider="p", finish_reason="tool_calls", text="",
                        tool_calls=[ToolCall.from_raw("call_1", "add", '{"a": 1}')], usage=Usage(input_tokens=3),
                        cost_usd=None, latency_s=0.25, ttft_s=None),
        TurnFinished(turn_id="t", text="done", model="m", status="complete", steps=1),
    ]
    redactor = Redactor(from_environment=False)
    for event in events:
        same, text = redactor.message_and_json(event)
        assert same is event
        assert json.loads(text) == json.loads(event.to_json())
        assert Message.from_json(text) == event


def test_the_key_scan_reads_a_key_whole_so_a_harmless_key_holding_a_secret_word_stays_visible() -> None:
    """Only the key's exact text decides: ':token' and 'tokens' are no 'token' (counts and odd names stay)."""
    import json

    from llmgine_nb.secrets import json_names_secret

    for key in (":token", "tokens", "x:token", "token:"):
        assert not json_names_secret(json.dumps({key: 1, "text": "token"})), key
    for key in ("token", "x_token", "api_key"):
        assert json_names_secret(json.dumps({"text": ":", key: 1})), key
        assert json_names_secret(json.dumps({"text": ":", key: 1}, indent=2)), key


def test_the_key_scan_finds_a_secret_name_spelled_with_a_character_that_lower_cases_to_ascii() -> None:
    """The Kelvin sign lower-cases to 'k': "api_\u212aey" is api_key to the name rule, escaped or not."""
    import json

    from llmgine_nb.secrets import json_names_secret

    for obj in ({"api_\u212aey": "v"}, {"TO\u212aEN": "v"}, {"note": "token", "api_\u212aey": "v"}):
        for ensure_ascii in (True, False):
            assert json_names_secret(json.dumps(obj, ensure_ascii=ensure_ascii)), (obj, ensure_ascii)

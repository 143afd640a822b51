"""Every kind of secret, through a real notebook turn, scanned for in every sink.

The secrets: a key in the environment, one in ``.env`` (read once, then the
working directory changes, as ``%cd`` does), one passed explicitly as
``api_key=``, passwords inside connection strings (one in the environment's
``DATABASE_URL``, one inside a tool's result), a key the model streams in
three-character pieces, a key inside a tool result and keys inside a
provider's error.  The model is real litellm talking HTTP to the fake
OpenAI server on 127.0.0.1.

The sinks: the SQLite file and its WAL while the store is still open, the
live JSONL file and a JSONL export, every OpenTelemetry span, the session
exported as ``.ipynb`` and Markdown, and everything the notebook runtime
rendered (its printed cell output and its reports).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_openai import FakeOpenAI, Reply, Status, ToolCallSpec
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_observe_otel import all_strings

from llmgine_nb import tool
from llmgine_nb.llm import get_llm
from llmgine_nb.notebook import NotebookRuntime
from llmgine_nb.observe import export_jsonl, observe
from llmgine_nb.secrets import MARKER, use_dotenv

ENV_KEY = "sk-env-4f1c9a7be2d84c55a0ff"
DOTENV_KEY = "ghp_dotenvToken9x8y7w6v5u4t"
EXPLICIT_KEY = "sk-explicit-77aa88bb99cc00dd"
PG_PASSWORD = "PgPassw0rd-from-tool-3141"
URL_PASSWORD = "RedisPassw0rd-env-2718"
SECRETS = [ENV_KEY, DOTENV_KEY, EXPLICIT_KEY, PG_PASSWORD, URL_PASSWORD]

config_reads: list[str] = []


@tool
def read_config() -> str:
    """Read the service configuration."""
    text = f"token={DOTENV_KEY}\ndatabase=postgresql://app:{PG_PASSWORD}@db.internal:5432/app\n"
    config_reads.append(text)
    return text


def forms(secret: str) -> list[str]:
    """How a secret could appear: as is, JSON-escaped, and its first 16 characters."""
    return [secret, json.dumps(secret)[1:-1], secret[:16]]


def leaks(text: str) -> list[str]:
    return [secret[:8] + "..." for secret in SECRETS if any(form in text for form in forms(secret))]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / ".env").write_text(f"GITHUB_TOKEN={DOTENV_KEY}\n", encoding="utf-8")
    monkeypatch.chdir(folder)
    use_dotenv(None)  # configuration finds ./.env when it first loads, as in a fresh kernel
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    monkeypatch.setenv("DATABASE_URL", f"redis://:{URL_PASSWORD}@127.0.0.1:6379/0")
    config_reads.clear()
    yield tmp_path
    use_dotenv(None)


def test_no_kind_of_secret_reaches_any_sink(project: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    environment_before = dict(os.environ)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    db_path = project / "llmgine.db"
    shell = SimpleNamespace(user_ns={"read_config": read_config})
    runtime = NotebookRuntime(shell, db=db_path, user="ada", ui="text")
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # %cd after loading: .env's keys stay known
    with FakeOpenAI() as server:
        server.add(
            Reply(tool_calls=[ToolCallSpec("read_config", {})]),
            Reply(
                text=(
                    f"Your keys: {ENV_KEY} and {EXPLICIT_KEY}. The token is {DOTENV_KEY}, the database "
                    f"password {PG_PASSWORD}, and the cache is redis://:{URL_PASSWORD}@127.0.0.1:6379/0."
                ),
                chunk_size=3,  # every key arrives split across streamed pieces
            ),
            Status(400, f"Invalid request: key {EXPLICIT_KEY} was refused; {ENV_KEY} too", "invalid_request_error"),
        )
        llm = get_llm("openai/gpt-4o-mini", api_base=server.base_url, api_key=EXPLICIT_KEY)
        runtime.use_llm(llm)
        watch = observe(runtime.bus, otel=provider, jsonl=project / "live.jsonl", capture_content=True,
                        redactor=runtime.redactor)
        try:
            first = runtime.ask_sync(f"Read the config. My key is {ENV_KEY}.", timeout=60)
            second = runtime.ask_sync("Once more, please.", timeout=60)
            printed = capsys.readouterr().out
            reports = [runtime.history(), runtime.log(), runtime.search("password"), runtime.usage()]
            rendered = printed + "".join(r.text() + r.html() for r in reports)
            # The database and its write-ahead log as they are on disk while the store is open.
            on_disk = {p.name: p.read_bytes() for p in project.iterdir() if p.name.startswith("llmgine.db")}
            runtime.export(project / "session.ipynb")
            runtime.export(project / "session.md")
            exported = export_jsonl(runtime.store, project / "events.jsonl")
        finally:
            watch.detach()
            runtime.close()
        sent = server.requests

    # The secrets really went through (so finding none below means something).
    assert first.status == "complete" and second.status == "failed", (first.status, second.status)
    assert config_reads and DOTENV_KEY in config_reads[0], "the tool returned the real values"
    assert any(EXPLICIT_KEY in (r.headers.get("Authorization") or r.headers.get("authorization") or "")
               for r in sent), "the model client used the explicit key"
    assert "llmgine.db-wal" in on_disk and exported > 10 and len(exporter.get_finished_spans()) > 3

    # ... and no sink holds any of them; where one was, the marker is.
    sinks = {
        "cell output and reports": rendered,
        "live JSONL": (project / "live.jsonl").read_text(encoding="utf-8"),
        "JSONL export": (project / "events.jsonl").read_text(encoding="utf-8"),
        "notebook export": (project / "session.ipynb").read_text(encoding="utf-8"),
        "Markdown export": (project / "session.md").read_text(encoding="utf-8"),
        "spans": "\n".join("\n".join(all_strings(span)) for span in exporter.get_finished_spans()),
        **{name: data.decode("utf-8", "replace") for name, data in on_disk.items()},
    }
    for name, text in sinks.items():
        assert not leaks(text), f"{leaks(text)} found in the {name}"
    for name in ("cell output and reports", "live JSONL", "Markdown export", "spans", "llmgine.db-wal"):
        assert MARKER in sinks[name], f"nothing was redacted in the {name}: the scan found nothing to hide"
    assert "redis://:" + MARKER + "@127.0.0.1" in sinks["Markdown export"]
    # Our code left the environment as it found it.  Excepted: the cost-map switch (set only when
    # unset, see llm/_litellm.py) and TIKTOKEN_CACHE_DIR, which litellm sets itself on import.
    litellm_own = ("LITELLM_LOCAL_MODEL_COST_MAP", "TIKTOKEN_CACHE_DIR")
    assert {k: v for k, v in os.environ.items() if k not in litellm_own} == {
        k: v for k, v in environment_before.items() if k not in litellm_own
    }

"""The same notebook against another model: configuration from the environment, over real HTTP.

The kernel gets ``LLMGINE_MODEL``, ``LLMGINE_API_BASE`` and a key in its
environment and nothing else; ``%llmgine`` then talks to an
OpenAI-compatible server on 127.0.0.1 (``fake_openai``) through the openai
SDK (no litellm: issue 14, item 4), a streamed reply and an approved tool
call included.  The key never shows.
"""

from __future__ import annotations

import json
import textwrap

from fake_openai import FAKE_API_KEY, FakeOpenAI, Reply, ToolCallSpec
from kernel_harness import KernelHarness


def test_a_notebook_runs_unchanged_against_a_model_from_the_environment(tmp_path):
    with FakeOpenAI() as server:
        server.add(
            Reply("Let me look that up.", tool_calls=[ToolCallSpec("remove", {"path": "old.txt"}, id="call_wire_1")]),
            Reply("Removed **old.txt** for you.", chunk_size=3),
        )
        env = {
            "LLMGINE_DB": str(tmp_path / "llmgine.db"),
            "LLMGINE_MODEL": "openai/test-model",
            "LLMGINE_API_BASE": server.base_url,
            "OPENAI_API_KEY": FAKE_API_KEY,
        }
        with KernelHarness(env=env) as kernel:
            kernel.execute("%load_ext llmgine_nb")
            kernel.execute(textwrap.dedent('''
                from llmgine_nb import tool
                removed = []

                @tool(risk="destructive")
                def remove(path: str) -> str:
                    """Remove a file.

                    Args:
                        path: The file to remove.
                    """
                    removed.append(path)
                    return f"removed {path}"
            '''))
            cell = kernel.execute("%llmgine Please remove old.txt")
            approve = kernel.wait_for_widget("ButtonModel", description="Approve", within=cell, timeout=60)
            kernel.click(approve).wait()

            def final():
                return next((o for o in cell.outputs if "llmgine" in o.get("metadata", {})), None)

            out = kernel.wait_until(final, timeout=60, what="the turn's final output")
            assert "Removed **old.txt** for you." in out["data"]["text/markdown"]
            assert out["metadata"]["llmgine"]["model"] == "openai/test-model"
            assert out["metadata"]["llmgine"]["usage"] == {"input_tokens": 22, "output_tokens": 14, "cached_tokens": 0}
            assert json.loads(kernel.execute("import json; print(json.dumps(removed))").stdout) == ["old.txt"]

            keys = kernel.execute("%llmgine keys")
            config = kernel.execute("%llmgine config")
            shown = json.dumps([cell.outputs, keys.outputs, config.outputs])
            assert FAKE_API_KEY not in shown, "the key never reaches an output"
            assert "sk-...0000" in json.dumps(keys.outputs)
            assert "openai/test-model" in json.dumps(config.outputs)

    assert len(server.requests) == 2
    first = server.requests[0].body
    assert first["model"] == "test-model" and first["stream"] is True
    assert first["messages"][-1]["content"] == "Please remove old.txt"
    assert [t["function"]["name"] for t in first["tools"]] == ["remove"]
    assert server.requests[1].body["messages"][-1] == {
        "role": "tool", "content": "removed old.txt", "tool_call_id": "call_wire_1", "name": "remove"}


def test_the_first_question_is_answered_without_importing_litellm(tmp_path):
    """``%load_ext`` and an immediate question: answered through the openai SDK, litellm never imported."""
    with FakeOpenAI() as server:
        server.add(Reply("The first answer, streamed.", chunk_size=5, prompt_tokens=12, completion_tokens=6))
        env = {
            "LLMGINE_DB": str(tmp_path / "llmgine.db"),
            "LLMGINE_MODEL": "openai/gpt-4o-mini",
            "LLMGINE_API_BASE": server.base_url,
            "OPENAI_API_KEY": FAKE_API_KEY,
        }
        with KernelHarness(env=env) as kernel:
            load = kernel.submit("%load_ext llmgine_nb")
            cell = kernel.submit("%llmgine Hello?")  # at once, as a user running the first two cells
            load.wait(60).raise_for_error()
            cell.wait(60).raise_for_error()

            def final():
                return next((o for o in cell.outputs if "llmgine" in o.get("metadata", {})), None)

            out = kernel.wait_until(final, timeout=60, what="the first turn's final output")
            assert "The first answer, streamed." in out["data"]["text/markdown"]
            meta = out["metadata"]["llmgine"]
            assert meta["usage"] == {"input_tokens": 12, "output_tokens": 6, "cached_tokens": 0}
            # gpt-4o-mini is priced from litellm's price list, read as a file: $0.15 / $0.60 per million.
            assert abs(meta["cost_usd"] - (12 * 0.15e-6 + 6 * 0.60e-6)) < 1e-12
            loaded = kernel.execute("import sys; print(sorted(m for m in ('litellm', 'openai') if m in sys.modules))")
            assert loaded.stdout.strip() == "['openai']", "the first turn imported litellm (or not the openai SDK)"
            # Nor what only other paths need (issue 14, first_turn): sqlite-utils (which imports pandas and
            # numpy), psycopg, the reports, metrics and OpenTelemetry observers.
            heavy = ("sqlite_utils", "pandas", "numpy", "psycopg", "llmgine_nb.notebook.reports", "llmgine_nb.notebook.log_report",
                     "llmgine_nb.observe.metrics", "llmgine_nb.observe.otel")
            loaded = kernel.execute(f"import sys; print(sorted(m for m in {heavy!r} if m in sys.modules))")
            assert loaded.stdout.strip() == "[]", f"the first turn imported {loaded.stdout.strip()}"
    (request,) = server.requests
    assert request.body["model"] == "gpt-4o-mini" and request.body["stream"] is True
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"

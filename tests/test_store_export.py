"""Exporting a session as a Jupyter notebook and as Markdown."""

from __future__ import annotations

import nbformat
import pytest

from llmgine_nb.chat import ChatMessage, ToolCall
from llmgine_nb.store import Store
from llmgine_nb.store.export import export_session, session_markdown, session_notebook


@pytest.fixture
def store(db_target):
    s = Store(db_target)
    session = s.create_session("Weather chat", model="gpt-4o-mini", notebook="weather.ipynb")
    s.append_messages(
        session,
        [
            ChatMessage(role="user", content="What's the weather in Oslo?"),
            ChatMessage(
                role="assistant",
                model="gpt-4o-mini",
                tool_calls=[ToolCall.from_raw("c1", "get_weather", '{"city": "Oslo", "unit": "C"}')],
            ),
        ],
    )
    s.record_approval(session, "c1", "approved", who="ada", edited_arguments={"city": "Oslo", "unit": "F"})
    s.tool_started(session, "c1")
    s.tool_finished(session, "c1", result="41F, rain")
    s.append_messages(
        session,
        [
            ChatMessage(role="tool", tool_call_id="c1", name="get_weather", content="41F, rain ```odd```"),
            ChatMessage(role="assistant", model="gpt-4o-mini", content="It is **41F** and raining in Oslo.", pinned=True),
            ChatMessage(role="user", content="Delete my files"),
            ChatMessage(role="assistant", tool_calls=[ToolCall.from_raw("c2", "rm", '{"path": "/"}')]),
        ],
    )
    s.record_approval(session, "c2", "denied", who="ada", reason="never")
    yield s
    s.close()


def test_notebook_export_is_valid_and_complete(store, tmp_path):
    nb = session_notebook(store, "Weather chat")
    nbformat.validate(nb)
    assert all(cell.cell_type == "markdown" for cell in nb.cells)
    assert len(nb.cells) == 1 + 6  # a header, then one cell per message
    assert nb.metadata["llmgine"]["name"] == "Weather chat"
    header, question, call, result, answer, risky, denied = (c.source for c in nb.cells)
    assert header.startswith("# Weather chat") and "weather.ipynb" in header and "gpt-4o-mini" in header
    assert "**You**" in question and "What's the weather in Oslo?" in question
    assert "`get_weather`" in call and '"city": "Oslo"' in call and "approved" in call and "by ada" in call
    assert '"unit": "F"' in call  # the edited arguments are shown
    assert "41F, rain" in result and "````" in result  # fenced safely around the backticks inside
    assert "It is **41F** and raining in Oslo." in answer and "pinned" in answer
    assert "`rm`" in denied and "denied" in denied and "never" in denied

    path = export_session(store, "Weather chat", tmp_path / "chat.ipynb")
    again = nbformat.read(str(path), as_version=4)
    assert [c.source for c in again.cells] == [c.source for c in nb.cells]


def test_markdown_export(store, tmp_path):
    text = session_markdown(store, "Weather chat")
    assert text.startswith("# Weather chat")
    assert text.count("\n---\n") == 6
    assert "What's the weather in Oslo?" in text and "```json" in text
    path = export_session(store, "Weather chat", tmp_path / "chat.md")
    assert path.read_text() == text
    with pytest.raises(ValueError, match=r"\*\.ipynb or \*\.md"):
        export_session(store, "Weather chat", tmp_path / "chat.pdf")

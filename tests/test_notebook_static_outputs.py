"""Outputs that read well in a saved notebook, made by a real kernel: charts, the log, costs, the history.

A saved notebook opens untrusted (JupyterLab's sanitizer strips SVG and
``<style>``) and with no kernel behind its widgets; these tests check what
the kernel sends: charts drawn in HTML, a log with no widget whose rows open
to every field, no bare ``$`` in HTML, a history in Markdown.  How it looks
in the browser is ``test_saved_notebooks_browser.py``.
"""

from __future__ import annotations

import html
import json
import re
import textwrap

import pytest
from fake_openai import FAKE_API_KEY, FakeOpenAI, server_error
from kernel_harness import WIDGET_MIME, KernelHarness, KernelRequest, offline_notebook

from llmgine_nb.notebook.charts import nice_ticks, tick_labels


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "llmgine.db"
    with offline_notebook(db, '''
            from llmgine_nb import tool
            from llmgine_nb.llm import ScriptedLLM, ScriptedReply, call
            from llmgine_nb.notebook import runtime
            rt = runtime()
            rt.configure(user="ada")

            @tool(risk="write", approval="always")
            def remove(path: str) -> str:
                """Remove a file."""
                return f"removed {path}"

            def fresh(name, script, **options):
                rt.new_session(name)
                rt.use_llm(ScriptedLLM(script, **options))
    ''') as k:
        yield k


def run(kernel: KernelHarness, code: str, **kw) -> KernelRequest:
    return kernel.execute(textwrap.dedent(code), **kw)


def data(cell: KernelRequest) -> dict:
    return cell.outputs[-1]["data"]


def charts(page: str) -> list[str]:
    return re.findall(r'<div class="llmgine-chart.*?<!--/llmgine-chart-->', page, re.S)


def approved_turn(kernel: KernelHarness, name: str) -> None:
    run(kernel, f"fresh({name!r}, [ScriptedReply('Removing it.', [call('remove', path='a.txt')]), 'Done.'])")
    run(kernel, "h = rt.ask('Please remove a.txt', display=False)")
    kernel.wait_until(lambda: json.loads(run(kernel, "print(len(rt.approvals.pending_approvals()))").stdout) == 1,
                      what="the approval")
    run(kernel, "rt.approve(rt.approvals.pending_approvals()[0].call_id); h.wait(10)")


def test_log_is_static_html_with_a_timeline_and_rows_that_open_to_every_field(kernel):
    approved_turn(kernel, "log")
    out = data(run(kernel, "%llmgine log"))
    assert WIDGET_MIME not in out, "a widget would show 'model not found' once the kernel is gone"
    page = out["text/html"]
    assert "<svg" not in page and len(charts(page)) == 1
    timeline = charts(page)[0]
    for row in ("turn 1", "model · scripted", "tool · remove", "approval · remove"):
        assert row in timeline
    assert timeline.count('class="llmgine-mark"') >= 4 + 6, "a bar per span and a swatch per legend entry"
    for entry in ("failed", "stopped or denied"):
        assert entry in timeline, "the legend names failed and stopped spans"
    table = page.split("<table", 1)[1]
    assert table.count("<details>") == len(re.findall(r"<tr>", table)) - 1, "every row opens"
    fields = html.unescape(table)
    assert '"tool_name": "remove"' in fields and '"arguments": {\n    "path": "a.txt"\n  }' in fields
    assert "Event log" in out["text/plain"]


def test_log_of_one_type_keeps_the_whole_timeline(kernel):
    approved_turn(kernel, "log-type")
    out = data(run(kernel, "%llmgine log tool"))
    page = out["text/html"]
    timeline, table = charts(page)[0], page.split("<table", 1)[1]
    assert "turn 1" in timeline and "model · scripted" in timeline, "the timeline is the session's"
    assert "ToolFinished" in table and "TurnStarted" not in table and "LLMCallFinished" not in table
    assert "only tool" in page and "only tool" in out["text/plain"]


def test_a_failed_call_shows_its_http_status_and_full_error_in_the_log(kernel):
    message = "The upstream model crashed while reading your request; request id req_8d1f."
    with FakeOpenAI() as server:
        server.add(server_error(message))
        run(kernel, f'''
            from llmgine_nb.llm import get_llm
            from llmgine_nb.llm.retry import RetryPolicy
            rt.new_session("failing")
            rt.use_llm(get_llm("openai/test-model", api_base={server.base_url!r}, api_key={FAKE_API_KEY!r},
                               retry=RetryPolicy(tries=1)))
            h = rt.ask("Hello?", display=False)
            h.wait(60)
        ''', timeout=90)
    page = data(run(kernel, "%llmgine log"))["text/html"]
    failed_row = next(r for r in page.split("<tr>") if "LLMCallFailed" in r)
    summary = html.unescape(failed_row.split("<summary", 1)[1].split("</summary>", 1)[0])
    assert "HTTP 500" in summary
    fields = html.unescape(failed_row.split("</summary>", 1)[1])
    assert '"status_code": 500' in fields and "req_8d1f" in fields, "the full error, not a clipped line"
    timeline = charts(page)[0]
    assert re.search(r'title="[^"]*· failed" style="[^"]*background-color:#e15759', timeline), "a red bar"


def test_usage_charts_are_html_with_distinct_axis_labels_and_no_bare_dollars(kernel):
    approved_turn(kernel, "usage")
    out = data(run(kernel, "%llmgine usage"))
    page = out["text/html"]
    assert "<svg" not in page and len(charts(page)) == 2
    assert "$" not in page, "every $ is &#36;: no Markdown or MathJax pass pairs two of them"
    assert "mathjax_ignore" in page and "tex2jax_ignore" in page
    tokens = charts(page)[0]
    assert tokens.count('class="llmgine-mark"') >= 3, "steps, points and the legend's swatch"
    legend = re.findall(r"</span>([^<]+)</span></div>", tokens)
    assert legend == ["scripted"], "the legend holds the model's whole name"


def test_axis_labels_are_distinct_even_for_tiny_costs():
    ticks = nice_ticks(0, 0.00004)
    labels = tick_labels(ticks, money=True)
    assert len(set(labels)) == len(labels) and labels[1] == "$0.00001"
    assert tick_labels(nice_ticks(0, 12_500)) == ["0", "5k", "10k"]
    labels = tick_labels([0, 250, 500, 750, 1000, 1250])
    assert len(set(labels)) == 6 and labels[4:] == ["1.0k", "1.2k"], "1k and 1.25k do not both read 1k"


def test_history_renders_markdown(kernel):
    run(kernel, "fresh('history', ['Here is **bold** and a list:\\n\\n- one\\n- two'])")
    run(kernel, "rt.ask('Show me *Markdown*', display=False).wait(10)")
    out = data(run(kernel, "%llmgine history"))
    assert "text/html" not in out, "shown as Markdown, so a message's Markdown renders"
    md = out["text/markdown"]
    assert "\n\nHere is **bold** and a list:\n\n- one\n- two\n\n</td>" in md
    assert "\n\nShow me *Markdown*\n\n</td>" in md
    assert "[assistant] Here is **bold**" in out["text/plain"]


def test_a_turns_footer_holds_no_bare_dollar(kernel):
    run(kernel, "fresh('footer', ['It costs $5 with shipping.'])")
    out = data(run(kernel, "%llmgine --wait How much?"))
    md = out["text/markdown"]
    assert "$5" not in md, "money in the reply is escaped too (JupyterLab would typeset it as maths)"
    footer = md.split("It costs &#36;5 with shipping.", 1)[1]
    assert "&#36;0.00" in footer and "$" not in footer, "the cost cannot pair with a $ in the reply"
    assert 'class="tex2jax_ignore mathjax_ignore"' in footer
    assert "$0.00" in out["text/plain"], "the plain text keeps the dollar sign"


def test_chart_legends_keep_whole_model_names():
    from datetime import datetime, timedelta

    from llmgine_nb.notebook.charts import line_chart

    start = datetime(2026, 5, 6, 12, 0, 0)
    names = ["openai/gpt-4o-mini-2024-07-18", "anthropic/claude-3-5-sonnet-latest"]
    chart = line_chart({name: [(start + timedelta(seconds=i), 100.0 * (i + 1))] for i, name in enumerate(names)},
                       title="Tokens over time (cumulative)")
    legend = re.findall(r"</span>([^<]+)</span>", chart)
    assert legend == names, "each model's whole name, wrapping onto another line rather than cut"

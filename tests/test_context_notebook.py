"""Notebook context: variable interpolation, cell references, DataFrame summaries."""

from __future__ import annotations

import pandas as pd

from llmgine_nb.context import ContextCompiler, NotebookContext, describe_value, summarise_dataframe


def test_interpolation_of_names_with_escapes_and_unknowns():
    ns = {"city": "Oslo", "n": 3, "items": [1, 2]}
    ctx = NotebookContext(ns)
    assert ctx.expand("Weather in {city} for {n} days") == "Weather in Oslo for 3 days"
    assert ctx.expand("{items} and {missing}") == "[1, 2] and {missing}"
    assert ctx.expand("a dict literal {{city}} and {{}}") == "a dict literal {city} and {}"
    assert ctx.expand("json: {\"a\": 1}") == "json: {\"a\": 1}"  # not a name: untouched
    assert NotebookContext(ns, interpolate=False).expand("{city} {{x}} In[1]") == "{city} {{x}} In[1]"


def test_cell_references_inline_and_attached():
    ns = {"In": ["", "x = 1", "df.plot()", "x + 1"], "Out": {3: 2}}
    ctx = NotebookContext(ns)
    assert ctx.expand("source: {In[1]} gave {Out[3]}") == "source: x = 1 gave 2"
    text = ctx.expand("Why does In[2] fail? And Out[3]? In[2] again, In[9] is unknown")
    body, _, attached = text.partition("\n\n---\n")
    assert body == "Why does In[2] fail? And Out[3]? In[2] again, In[9] is unknown"
    assert attached == "In[2]:\n```python\ndf.plot()\n```\n\nOut[3]:\n```\n2\n```"
    assert NotebookContext(ns, cell_refs=False).expand("see In[2]") == "see In[2]"
    assert ctx.expand("{In[7]} stays") == "{In[7]} stays"


def test_dataframes_are_summarised_not_pasted():
    df = pd.DataFrame({"city": ["Oslo", "Bergen"] * 500, "temp": [float(i) for i in range(1000)], "n": range(1000)})
    text = NotebookContext({"df": df}).expand("Look at {df}")
    assert "DataFrame df: 1,000 rows × 3 columns" in text
    city_dtype = df.dtypes["city"]  # object in pandas 2, str in pandas 3
    assert f"columns: city ({city_dtype}), temp (float64), n (int64)" in text
    assert "first 5 rows:" in text and "Bergen" in text
    assert "999" not in text  # the tail is not pasted
    assert len(text) < 600
    series = describe_value(df["temp"], name="t")
    assert series.startswith("Series t: 1,000 values, dtype float64")
    wide = pd.DataFrame({f"c{i}": [i] for i in range(50)})
    assert "… and 20 more" in summarise_dataframe(wide)
    assert "0 rows" in summarise_dataframe(df.iloc[0:0])


def test_long_values_are_cut_short():
    text = describe_value(list(range(10_000)), max_chars=100)
    assert len(text) < 150 and text.endswith("characters cut]")


def test_compiler_expands_system_prompt_and_memory_but_not_history():
    ns = {"project": "sales-2025", "df": pd.DataFrame({"a": [1, 2]})}
    compiler = ContextCompiler(budget=4000)
    from llmgine_nb.chat import ChatMessage

    history = [ChatMessage(role="user", content="stored as sent: {project}")]
    compiled = compiler.compile_sync(history, system="You analyse {project}.", memory=["The data is {df}"], namespace=ns)
    assert compiled.messages[0].content == "You analyse sales-2025."
    assert "DataFrame df: 2 rows × 1 columns" in compiled.messages[1].content
    assert compiled.messages[2].content == "stored as sent: {project}"  # history is what was stored
    assert compiler.expand("new input about {project}", ns) == "new input about sales-2025"
    off = ContextCompiler(interpolate=False)
    assert off.expand("{project}", ns) == "{project}"

"""Code into cells, in a real kernel: ``-f code`` and ``%llmgine fix`` put the code into a new cell below
(a ``set_next_input`` payload in the execute reply), ``fix`` after a real exception sends the traceback, the
failing cell and its variables' values, and ``explain N`` sends cell N and its output."""

from __future__ import annotations

import json

import pytest
from kernel_harness import KernelHarness, KernelRequest, offline_notebook

ANSWER = "The key is missing; use .get with a default.\n\n```python\nvalue = data.get(key, 0)\nprint(value)\n```"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "llmgine.db"
    with offline_notebook(db, '''
            from llmgine_nb.llm import ScriptedLLM
            from llmgine_nb.notebook import runtime
            rt = runtime()
            asked = []

            def model(messages, tools):
                asked.append(messages[-1].content)
                return ANSWER

            rt.use_llm(ScriptedLLM(model))
    '''.replace("ANSWER", repr(ANSWER))) as k:
        yield k


def next_input(cell: KernelRequest) -> list[dict]:
    return [p for p in (cell.reply or {}).get("payload", []) if p.get("source") == "set_next_input"]


def last_prompt(k: KernelHarness) -> str:
    return json.loads(k.execute("import json; print(json.dumps(asked[-1]))").stdout)


def test_fix_before_any_exception_says_what_to_do(kernel):
    cell = kernel.execute("%llmgine fix", allow_errors=True)
    assert "no cell has raised an exception in this kernel yet" in cell.text
    assert next_input(cell) == []


def test_format_code_puts_the_code_into_a_new_cell_below(kernel):
    cell = kernel.execute("%llmgine -f code Write the lookup", timeout=60)
    assert next_input(cell) == [{"source": "set_next_input", "text": "value = data.get(key, 0)\nprint(value)",
                                 "replace": False}]
    assert "The code is in a new cell below, not run" in cell.text  # and the code stays visible to copy
    assert "value = data.get(key, 0)" in cell.text
    assert kernel.execute("print('value' in dir())").stdout.strip() == "False"  # never run for the user


def test_fix_after_a_real_exception(kernel):
    failed = kernel.execute('data = {"a": 1}\nkey = "b"\ntotal = data[key] + 1', allow_errors=True)
    assert failed.error is not None and failed.error["ename"] == "KeyError"
    cell = kernel.execute("%llmgine fix", timeout=60)
    prompt = last_prompt(kernel)
    assert "KeyError: 'b'" in prompt
    assert 'total = data[key] + 1' in prompt  # the failing cell's code
    assert "data = {'a': 1}" in prompt and "key = b" in prompt  # its variables, braces as they are
    assert next_input(cell)[0]["text"] == "value = data.get(key, 0)\nprint(value)"
    assert "use .get with a default" in cell.text  # the explanation shows in the answer


def test_fix_sees_the_values_inside_a_notebook_function(kernel):
    kernel.execute("def ratio(a, b):\n    scale = 10\n    return scale * a / b")
    kernel.execute("ratio(3, 0)", allow_errors=True)
    kernel.execute("%llmgine fix", timeout=60)
    prompt = last_prompt(kernel)
    assert "ZeroDivisionError" in prompt and "ratio(3, 0)" in prompt
    assert "scale = 10" in prompt and "b = 0" in prompt


def test_explain_sends_the_cell_and_its_output(kernel):
    cell = kernel.execute("squares = [n * n for n in range(5)]\nsquares")
    number = cell.reply["execution_count"]
    kernel.execute(f"%llmgine explain {number} -w", timeout=60)
    prompt = last_prompt(kernel)
    assert f"In[{number}]" in prompt and "squares = [n * n for n in range(5)]" in prompt
    assert f"Out[{number}]" in prompt and "[0, 1, 4, 9, 16]" in prompt
    bad = kernel.execute("%llmgine explain 9999", allow_errors=True)
    assert "there is no cell 9999 in this kernel's history" in bad.text

"""``%llmgine fix`` and ``%llmgine explain N``: prompts made from the kernel's own record of what happened.

``fix`` reads the last exception IPython recorded (``sys.last_value``, set
when a cell's traceback is shown): the traceback, the failing cell's code
(the outermost frame that runs in the notebook's namespace; its source is in
``linecache``, where IPython keeps every cell) and the values of the names
that code uses - each part cut to its share of a token budget, so a huge
DataFrame or a deep traceback does not crowd out the rest.  ``explain N``
reads ``In[N]`` and ``Out[N]``.

Braces are doubled: the engine expands ``{name}`` in a prompt, and the code
and values here must reach the model as they are.
"""

from __future__ import annotations

import ast
import linecache
import sys
import traceback
import types
from collections.abc import Mapping
from typing import Any

from ..context.notebook import describe_value
from ..text import clip, estimate_tokens

__all__ = ["fix_prompt", "explain_prompt", "failing_cell"]

FIX_BUDGET_TOKENS = 3000


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _within(text: str, tokens: int, *, keep_end: bool = False) -> str:
    """``text`` cut to about ``tokens``; a traceback keeps its end, where the error is."""
    if estimate_tokens(text) <= tokens:
        return text
    if keep_end:
        kept = text[-tokens * 4:]
        return f"[{len(text) - len(kept)} characters cut]\n{kept}"
    return clip(text, tokens * 4, note=True)


def failing_cell(tb: types.TracebackType | None, namespace: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The code of the cell the exception came from, and the innermost notebook frame's local values."""
    code, local_values = "", {}
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals is namespace:
            if not code and frame.f_locals is namespace:  # module level of a cell: the cell itself
                code = "".join(linecache.getlines(frame.f_code.co_filename))
            elif frame.f_locals is not namespace:  # a function defined in the notebook
                local_values = dict(frame.f_locals)
        tb = tb.tb_next
    return code, local_values


def _names_used(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    seen: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            seen.setdefault(node.id, None)
    return list(seen)


def _variables(names: list[str], values: Mapping[str, Any], budget: int) -> str:
    lines = []
    for name in names:
        if name not in values or name.startswith("_"):
            continue
        value = values[name]
        if isinstance(value, (types.ModuleType, type)) or callable(value):
            continue  # modules, classes and functions: their names say enough
        lines.append(f"{name} = {describe_value(value, name=name, max_chars=600, rows=3)}")
    return _within("\n".join(lines), budget)


def fix_prompt(namespace: Mapping[str, Any], *, budget: int = FIX_BUDGET_TOKENS) -> str:
    """The prompt of ``%llmgine fix``; a ``LookupError`` that says so when nothing has failed yet."""
    error = getattr(sys, "last_value", None)
    if error is None:
        raise LookupError("no cell has raised an exception in this kernel yet: run the failing cell, then %llmgine fix")
    tb = getattr(sys, "last_traceback", None)
    code, local_values = failing_cell(tb, namespace)
    shown = _traceback_text(error, tb, namespace)
    parts = [
        "A cell in my Jupyter notebook failed. Explain the error in two or three sentences, then give the "
        "corrected cell as one Python code block (the whole cell, ready to run).",
        "Traceback:\n```\n" + _literal(_within(shown, budget * 2 // 5, keep_end=True)) + "\n```",
    ]
    if code:
        parts.append("The failing cell:\n```python\n" + _literal(_within(code, budget * 3 // 10)) + "\n```")
        values = {**namespace, **local_values}
        variables = _variables(list(local_values) + _names_used(code), values, budget * 3 // 10)
        if variables:
            parts.append("Values of the variables it uses:\n```\n" + _literal(variables) + "\n```")
    return "\n\n".join(parts)


def _traceback_text(error: BaseException, tb: types.TracebackType | None, namespace: Mapping[str, Any]) -> str:
    """The traceback as Python prints it, a notebook cell's temporary file name shown as ``<notebook cell>``."""
    frames = traceback.extract_tb(tb)
    walk, i = tb, 0
    while walk is not None and i < len(frames):
        if walk.tb_frame.f_globals is namespace:
            frames[i].filename = "<notebook cell>"
        walk, i = walk.tb_next, i + 1
    return ("Traceback (most recent call last):\n" + "".join(frames.format())
            + "".join(traceback.format_exception_only(type(error), error)))


def explain_prompt(namespace: Mapping[str, Any], number: int) -> str:
    """The prompt of ``%llmgine explain N``: cell N's code and its output value."""
    cells = namespace.get("In")
    if not isinstance(cells, list) or not 0 < number < len(cells):
        last = len(cells) - 1 if isinstance(cells, list) else 0
        raise LookupError(f"there is no cell {number} in this kernel's history (In[1] to In[{last}]); "
                          "the number is the one in the cell's [ ] prompt")
    outputs = namespace.get("Out")
    parts = [
        "Explain what this Jupyter notebook cell does, step by step, and what its output shows.",
        f"In[{number}]:\n```python\n" + _literal(_within(cells[number], 1500)) + "\n```",
    ]
    if isinstance(outputs, Mapping) and number in outputs:
        parts.append(f"Out[{number}]:\n```\n" + _literal(describe_value(outputs[number], max_chars=4000)) + "\n```")
    else:
        parts.append("(The cell has no output value; printed output is not kept by the kernel.)")
    return "\n\n".join(parts)

"""``-f code``: the answer's code goes into a new cell below the one that asked, never run.

The notebook protocol's way is a ``set_next_input`` payload, which travels
only in the reply of the cell that is running - so a ``-f code`` turn waits
for its answer (as ``--wait`` does) and the payload is added before the cell
ends.  Front ends that ignore the payload (some do) still show the code in
the answer, and a line under it says so, with a copy button where HTML
renders.
"""

from __future__ import annotations

import html
import json
from typing import Any

from .markdown import extract_code

__all__ = ["put_code_below", "code_of"]


def code_of(text: str) -> str:
    """The code of an answer: its first fenced block, or all of it."""
    return extract_code(text)[1]


def put_code_below(shell: Any, text: str, *, display: bool = True) -> str | None:
    """Ask the front end for a new cell below holding the answer's code; the code, or None without one."""
    code = code_of(text)
    if not code.strip():
        return None
    set_next_input = getattr(shell, "set_next_input", None)
    if set_next_input is None:
        return None
    set_next_input(code, replace=False)
    if display:
        from IPython.display import display as show

        note = ("The code is in a new cell below, not run. If no cell appeared, copy it from the answer "
                "above (or rt.last.value).")
        button = (
            '<button onclick="navigator.clipboard.writeText(JSON.parse(this.dataset.code))" '
            f'data-code="{html.escape(json.dumps(code), quote=True)}">Copy the code</button>'
        )
        show({"text/plain": note, "text/html": f"<div><small>{html.escape(note)}</small> {button}</div>"}, raw=True)
    return code

"""The README's code examples run as written (top-level ``await`` as in a notebook cell)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def run_as_cell(code: str) -> dict:
    """Run ``code`` the way a notebook cell runs it: top-level ``await`` allowed."""
    namespace: dict = {}
    body = "\n".join("    " + line for line in code.splitlines())
    exec(f"async def __cell__():\n{body}\n    return locals()", namespace)
    return asyncio.run(namespace["__cell__"]())


@pytest.mark.parametrize("code", [b for b in BLOCKS if "ChatEngine(" in b or "MessageBus()" in b])
def test_readme_example_runs(code, capsys):
    names = run_as_cell(code)
    if "engine" in names:
        assert names["result"].status == "complete"
        assert "offline model" in capsys.readouterr().out
    else:
        assert names["result"].success

"""The notebook package stays readable: small modules, and no part reaching into another's privates."""

from __future__ import annotations

import ast
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "llmgine_nb" / "notebook"
MAX_LINES = 500


def test_no_notebook_module_is_over_500_lines():
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in NOTEBOOK.glob("*.py")}
    assert len(sizes) > 10, "the check reads the notebook package"
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert too_long == {}, f"split these modules (at most {MAX_LINES} lines each): {too_long}"


def test_no_notebook_module_reaches_into_another_objects_private_attributes():
    # ``self._x`` and ``cls._x`` are an object's own business; ``other._x`` reaches into someone else's.
    # The one exception is documented where it lives: ipykernel's saved_sigint_handler (interrupt.py)
    # has no underscore, so it needs none here.
    found = []
    for path in NOTEBOOK.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert found == [], "private attributes of other objects: " + ", ".join(found)

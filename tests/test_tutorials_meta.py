"""Checks on the tutorials and example notebooks as documents (nbval runs them; see tutorials/README.md).

These read the saved notebooks only: no kernel, no model.  They keep the
conventions that make the notebooks good documentation and honest tests:
a title, data in a temporary database, outputs saved without errors, network
cells marked and guarded, no unmasked demo key in any output, and every
output compared by nbval except the few listed here with their reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))
EXAMPLES = sorted((ROOT / "notebooks").glob("*.ipynb"))
NOTEBOOKS = TUTORIALS + EXAMPLES

EXPECTED_TUTORIALS = [
    "01-quickstart.ipynb",
    "02-message-bus.ipynb",
    "03-tools-and-approvals.ipynb",
    "04-context-and-memory.ipynb",
    "05-observability.ipynb",
    "06-task-assistant.ipynb",
    "07-real-models.ipynb",
    "08-notebook-power-tools.ipynb",
    "09-mcp.ipynb",
]

# Cells whose output nbval does not compare: (notebook, start of the cell's source) -> why.
IGNORED_OUTPUTS = {
    ("01-quickstart.ipynb", "%llmgine Please save_note"): (
        "a turn that waits for a person: its output keeps updating after the cell has finished"
    ),
    ("03-tools-and-approvals.ipynb", "%llmgine Record a team lunch"): (
        "a turn that waits for a person: its output keeps updating after the cell has finished"
    ),
    ("07-real-models.ipynb", "# NBVAL_IGNORE_OUTPUT"): "shows which provider keys this machine has",
}

SKIPPED = "skipped: set LLMGINE_MODEL to run this"


def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        for value in out.get("data", {}).values():
            parts.append(value if isinstance(value, str) else "")
    return "".join(parts)


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_all_seven_tutorials_are_there_and_listed_in_the_index() -> None:
    assert [p.name for p in TUTORIALS] == EXPECTED_TUTORIALS
    index = (ROOT / "tutorials" / "README.md").read_text(encoding="utf-8")
    for name in EXPECTED_TUTORIALS:
        assert f"({name})" in index, f"tutorials/README.md does not link {name}"
    assert EXAMPLES, "notebooks/ holds at least one example application"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_starts_with_a_title_and_says_how_to_use_a_real_model(path: Path) -> None:
    nb = load(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "the first cell is a Markdown title"
    assert "LLMGINE_MODEL" in first.source, "the introduction says which setting switches to a real model"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_keeps_its_data_in_a_temporary_database(path: Path) -> None:
    first_code = code_cells(load(path))[0].source
    assert 'os.environ["LLMGINE_DB"]' in first_code and "tempfile" in first_code
    assert 'REAL_MODEL = os.environ.get("LLMGINE_MODEL")' in first_code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_is_saved_executed_in_order_without_errors(path: Path) -> None:
    cells = code_cells(load(path))
    counts = [c.execution_count for c in cells]
    assert None not in counts, "every code cell was run before saving (nbval compares saved outputs)"
    assert counts == sorted(counts), "cells were run top to bottom"
    for cell in cells:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"a saved output is an error: {cell.source[:60]!r}"
        for out in cell.outputs:
            text = out.get("text", "") if out.output_type == "stream" else ""
            assert "Traceback (most recent call last)" not in text, f"a traceback was printed: {cell.source[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_network_cells_are_marked_guarded_and_skipped_offline(path: Path) -> None:
    nb = load(path)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "network" not in cell.metadata.get("tags", []):
            continue
        before = next((c for c in reversed(nb.cells[:index]) if c.cell_type == "markdown"), None)
        assert before is not None and "🌐" in before.source, "a network cell is announced with 🌐"
        assert "REAL_MODEL" in cell.source, "a network cell only reaches a real model when LLMGINE_MODEL is set"
        if "get_llm(REAL_MODEL) if REAL_MODEL else" not in cell.source:
            assert SKIPPED in output_text(cell), "offline, a network cell says it was skipped"


def test_real_model_calls_in_the_real_models_tutorial_are_all_in_network_cells() -> None:
    nb = load(ROOT / "tutorials" / "07-real-models.ipynb")
    for cell in code_cells(nb):
        tagged = "network" in cell.metadata.get("tags", [])
        if re.search(r"get_llm\(REAL_MODEL", cell.source):
            assert tagged, f"a cell that calls the real model is tagged 'network': {cell.source[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_every_output_is_compared_except_the_listed_ones(path: Path) -> None:
    for cell in code_cells(load(path)):
        tags = cell.metadata.get("tags", [])
        ignored = "NBVAL_IGNORE_OUTPUT" in cell.source or "nbval-ignore-output" in tags
        skipped = "NBVAL_SKIP" in cell.source or "nbval-skip" in tags
        assert not skipped, f"no cell is skipped by nbval: {cell.source[:60]!r}"
        if ignored:
            key = next((k for k in IGNORED_OUTPUTS if k[0] == path.name and cell.source.startswith(k[1])), None)
            assert key is not None, (
                f"{path.name}: an ignored output needs an entry in IGNORED_OUTPUTS saying why: {cell.source[:60]!r}"
            )
        if "NBVAL_IGNORE_OUTPUT" in cell.source:
            line = next(line for line in cell.source.splitlines() if "NBVAL_IGNORE_OUTPUT" in line)
            assert re.search(r"NBVAL_IGNORE_OUTPUT\s*:\s*\w+", line), "the marker comment says why"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_demo_key_is_shown_unmasked(path: Path) -> None:
    # The tutorials use fake keys to show masking and redaction: outputs must only ever show them masked.
    for cell in code_cells(load(path)):
        shown = output_text(cell)
        assert not re.search(r"sk-(demo|ant-demo)-[\w-]{4,}", shown), f"a key is shown unmasked: {cell.source[:60]!r}"
        assert "AIza-demo" not in shown


def test_the_sanitize_file_parses_and_every_pattern_compiles() -> None:
    text = (ROOT / "tutorials" / "sanitize.cfg").read_text(encoding="utf-8")
    pairs = re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)  # nbval's own reading
    assert len(pairs) >= 8
    for regex, _ in pairs:
        re.compile(regex)
    patterns = [(re.compile(r), s) for r, s in pairs]

    def clean(s: str) -> str:
        for pattern, replacement in patterns:
            s = pattern.sub(replacement, s)
        return s

    # What must be replaced, and what must be left alone.
    assert clean("session 7a219e8ab170457fa084d98d88edd377 at 2026-11-24 21:01:41 UTC took 12 ms") == clean(
        "session 0b2c9e8ab170457fa084d98d88edd999 at 2026-11-25 08:13:07 UTC took 3 ms"
    )
    assert clean("/tmp/tmpab12cd/tutorial.db") == clean("/tmp/tmpzz99yy/tutorial.db")
    assert clean("due Fri 8 May 2026") == "due Fri 8 May 2026"
    assert clean("recorded 18.40 EUR") == "recorded 18.40 EUR"
    assert clean("T13 Budget review") == "T13 Budget review"

"""Notebook context: bring the user's variables and cells into a prompt.

    ctx = NotebookContext(get_ipython().user_ns)
    ctx.expand("Describe {df} and explain why In[3] fails")

- ``{name}`` is replaced by the variable's value; unknown names stay as
  typed; ``{{`` and ``}}`` stand for literal braces.
- ``{In[3]}`` / ``{Out[3]}`` are replaced by that cell's source / output;
  a bare mention such as ``In[3]`` keeps the text and appends the cell
  below the message, so the model sees what the user refers to.
- an image (a matplotlib figure, a PIL image, an image file's path, an
  image output) becomes ``[image name]`` in the text; ``images_in`` lists
  them, and the engine sends each with the message as an image part;
- pandas DataFrames and Series are summarised (shape, columns and dtypes,
  a few rows) instead of pasted whole; other long values are cut short.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..images import is_image
from ..text import clip

__all__ = ["NotebookContext", "describe_value", "summarise_dataframe"]

_BRACED = re.compile(r"\{\{|\}\}|\{(In|Out)\[(\d+)\]\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BARE_CELL = re.compile(r"(?<![\w{\[])(In|Out)\[(\d+)\](?!\})")
_MAX_COLUMNS_LISTED = 30


def _is_pandas(value: Any, kind: str) -> bool:
    pandas = sys.modules.get("pandas")  # never import pandas just to check
    return pandas is not None and isinstance(value, getattr(pandas, kind))


def summarise_dataframe(df: Any, *, name: str | None = None, rows: int = 5, max_colwidth: int = 40) -> str:
    """Shape, columns with dtypes, and the first ``rows`` rows of a pandas DataFrame."""
    n_rows, n_cols = df.shape
    label = f"DataFrame {name}" if name else "DataFrame"
    columns = [f"{col} ({dtype})" for col, dtype in df.dtypes.items()]
    if len(columns) > _MAX_COLUMNS_LISTED:
        columns = columns[:_MAX_COLUMNS_LISTED] + [f"… and {len(columns) - _MAX_COLUMNS_LISTED} more"]
    lines = [
        f"{label}: {n_rows:,} rows × {n_cols:,} columns",
        "columns: " + ", ".join(columns),
    ]
    if n_rows and rows > 0:
        shown = min(rows, n_rows)
        head = df.head(shown).to_string(max_colwidth=max_colwidth, max_cols=12)
        lines.append(f"first {shown} rows:\n{head}")
    return "\n".join(lines)


def _summarise_series(series: Any, *, name: str | None, rows: int) -> str:
    label = f"Series {name}" if name else "Series"
    head = series.head(rows).to_string(max_rows=rows)
    return f"{label}: {len(series):,} values, dtype {series.dtype}\nfirst {min(rows, len(series))} values:\n{head}"


def describe_value(value: Any, *, name: str | None = None, max_chars: int = 2000, rows: int = 5) -> str:
    """A value as text for a prompt: strings as they are, DataFrames summarised, the rest by repr, cut short."""
    if _is_pandas(value, "DataFrame"):
        return summarise_dataframe(value, name=name, rows=rows)
    if _is_pandas(value, "Series"):
        return _summarise_series(value, name=name, rows=rows)
    return clip(value if isinstance(value, str) else repr(value), max_chars, note=True)


@dataclass
class NotebookContext:
    """Expands notebook references in prompt text against a namespace (a kernel's ``user_ns``).

    ``interpolate=False`` turns ``{name}`` interpolation off (text is sent as
    typed); ``cell_refs=False`` stops bare ``In[n]``/``Out[n]`` mentions from
    attaching cells.
    """

    namespace: Mapping[str, Any]
    interpolate: bool = True
    cell_refs: bool = True
    max_chars: int = 2000
    dataframe_rows: int = 5

    def _cell(self, kind: str, number: int) -> str | None:
        if kind == "In":
            cells = self.namespace.get("In")
            if isinstance(cells, (list, tuple)) and 0 <= number < len(cells):
                return cells[number]
            return None
        outputs = self.namespace.get("Out")
        if isinstance(outputs, Mapping) and number in outputs:
            if is_image(outputs[number]):
                return f"[image Out[{number}]]"
            return describe_value(outputs[number], max_chars=self.max_chars, rows=self.dataframe_rows)
        return None

    def _replace(self, match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        if match.group(1):
            cell = self._cell(match.group(1), int(match.group(2)))
            return token if cell is None else cell
        name = match.group(3)
        if name not in self.namespace:
            return token  # not ours to interpret: leave it as typed
        if is_image(self.namespace[name]):
            return f"[image {name}]"  # the image itself goes with the message (images_in)
        return describe_value(self.namespace[name], name=name, max_chars=self.max_chars, rows=self.dataframe_rows)

    def images_in(self, text: str) -> list[tuple[str, Any]]:
        """The images ``{name}`` and ``{Out[n]}`` references in ``text`` stand for: (label, value) pairs."""
        if not self.interpolate:
            return []
        found: dict[str, Any] = {}
        outputs = self.namespace.get("Out")
        for match in _BRACED.finditer(text):
            if match.group(1) == "Out" and isinstance(outputs, Mapping):
                label, value = f"Out[{match.group(2)}]", outputs.get(int(match.group(2)))
            elif match.group(3):
                label, value = match.group(3), self.namespace.get(match.group(3))
            else:
                continue
            if value is not None and is_image(value):
                found.setdefault(label, value)
        return list(found.items())

    def missing_names(self, text: str) -> list[str]:
        """The ``{name}`` references in ``text`` that no variable answers (they are sent as typed)."""
        if not self.interpolate:
            return []
        names = [m.group(3) for m in _BRACED.finditer(text) if m.group(3) and m.group(3) not in self.namespace]
        return list(dict.fromkeys(names))

    def expand(self, text: str) -> str:
        """``text`` with variables interpolated and referenced cells attached."""
        if not self.interpolate:
            return text
        attachments = []
        if self.cell_refs:
            seen = set()
            for match in _BARE_CELL.finditer(text):
                ref = (match.group(1), int(match.group(2)))
                if ref in seen:
                    continue
                seen.add(ref)
                cell = self._cell(*ref)
                if cell is not None:
                    fence = "```python" if ref[0] == "In" else "```"
                    attachments.append(f"{ref[0]}[{ref[1]}]:\n{fence}\n{cell}\n```")
        expanded = _BRACED.sub(self._replace, text)
        if attachments:
            expanded += "\n\n---\n" + "\n\n".join(attachments)
        return expanded

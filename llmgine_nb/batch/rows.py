"""What a prompt over data runs on: rows read from a table, a list or files, and the prompt of each.

A row is a mapping of names the template may use: a DataFrame's columns, a
dict's keys; any other value is ``{item}``; a file is ``{path}``, ``{name}``
and ``{text}`` (its content).  A job is named by the caller or by a hash of
the template and every row's prompt, so that running the same cell again,
after a kernel restart too, finds the same job.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MapItem", "read_rows", "make_items", "job_id_for", "is_frame"]


@dataclass(frozen=True)
class MapItem:
    """One row of a job: its position, the names its template may use, and the prompt they make."""

    index: int
    fields: dict[str, Any]
    prompt: str
    prompt_hash: str


def is_frame(rows: Any) -> bool:
    """A pandas DataFrame (or anything shaped like one), recognised without importing pandas."""
    return hasattr(rows, "columns") and hasattr(rows, "to_dict") and hasattr(rows, "index")


def read_rows(rows: Any) -> list[dict[str, Any]]:
    """The rows as mappings: a DataFrame's records, a list's items, or the files a glob pattern matches."""
    if is_frame(rows):
        return [dict(record) for record in rows.to_dict("records")]
    if isinstance(rows, (str, Path)):
        paths = sorted(glob.glob(str(rows))) if glob.has_magic(str(rows)) else [str(rows)]
        if not paths:
            raise ValueError(f"no file matches {str(rows)!r}; give a glob pattern such as 'notes/*.txt', or a list")
        return [_file_fields(Path(p)) for p in paths]
    if isinstance(rows, Mapping) or not isinstance(rows, Iterable):
        raise TypeError(
            f"map runs over rows: a DataFrame, a list (of values, dicts or paths) or a glob pattern, "
            f"not {type(rows).__name__}"
        )
    out = []
    for item in rows:
        if isinstance(item, Mapping):
            out.append({str(k): v for k, v in item.items()})
        elif isinstance(item, Path):
            out.append(_file_fields(item))
        else:
            out.append({"item": item})
    return out


def _file_fields(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ValueError(f"cannot read {str(path)!r} for map: {exc.strerror or exc}") from None
    return {"path": str(path), "name": path.name, "text": text}


def make_items(template: str, rows: list[dict[str, Any]]) -> list[MapItem]:
    """Each row's prompt; a template naming something a row lacks is refused before anything is paid."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError("map needs a prompt template, e.g. 'Classify the sentiment of: {text}'")
    items = []
    for index, fields in enumerate(rows):
        try:
            prompt = template.format_map(fields)
        except (KeyError, IndexError) as exc:
            names = ", ".join(sorted(fields)) or "none"
            raise ValueError(
                f"the template names {{{exc.args[0]}}} but row {index} has no such field (it has: {names}); "
                "use one of those names, or {item} for a list of plain values"
            ) from None
        except ValueError as exc:
            raise ValueError(f"the template is not a valid format string ({exc}); double braces {{{{ }}}} "
                             "stand for a literal brace") from None
        items.append(MapItem(index, fields, prompt, _hash(prompt)))
    return items


def job_id_for(template: str, items: list[MapItem], schema_name: str | None, name: str | None) -> str:
    """The job's id: its name when given, else a hash of the template, the schema and every prompt."""
    if name is not None:
        if not name.strip():
            raise ValueError("a map job's name cannot be empty; leave it out to have one derived")
        return name.strip()
    digest = hashlib.sha256(template.encode("utf-8", "replace"))
    digest.update(f"\0{schema_name or ''}\0".encode())
    for item in items:
        digest.update(item.prompt_hash.encode())
    return "map-" + digest.hexdigest()[:12]


def _hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8", "replace")).hexdigest()

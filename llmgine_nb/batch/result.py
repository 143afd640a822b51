"""What a prompt over data gives back: every row's answer (or error), and the answers as columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .rows import is_frame

__all__ = ["MapResult", "MapRowResult"]


@dataclass(frozen=True)
class MapRowResult:
    """One row: the answer's text, its structured value (a dict, with a schema), or why it has none."""

    index: int
    text: str = ""
    value: Any = None
    error: str = ""
    cost_usd: float | None = None
    attempts: int = 0
    reused: bool = False  # answered by an earlier run, read from the store
    skipped: bool = False  # not asked: the job stopped first

    @property
    def ok(self) -> bool:
        return not self.error and not self.skipped


@dataclass(frozen=True)
class MapResult:
    """The rows of a job in their order; ``to_frame()`` puts the answers beside the data."""

    job_id: str
    rows: list[MapRowResult]
    source: Any = None
    fields: list[dict[str, Any]] = field(default_factory=list)
    schema: type[BaseModel] | None = None
    reused: int = 0
    cost_usd: float = 0.0  # spent by this run (rows from the store cost nothing now)
    stopped: str = ""

    @property
    def answered(self) -> list[MapRowResult]:
        return [r for r in self.rows if r.ok]

    @property
    def failed(self) -> list[MapRowResult]:
        return [r for r in self.rows if r.error]

    @property
    def skipped(self) -> list[MapRowResult]:
        return [r for r in self.rows if r.skipped]

    @property
    def texts(self) -> list[str | None]:
        return [r.text if r.ok else None for r in self.rows]

    @property
    def values(self) -> list[Any]:
        """Each row's answer: an instance of the schema when one was given, else the text (None: no answer)."""
        if self.schema is None:
            return self.texts
        return [self.schema.model_validate(r.value) if r.ok else None for r in self.rows]

    @property
    def complete(self) -> bool:
        return all(r.ok for r in self.rows)

    def to_frame(self, column: str = "answer") -> Any:
        """A pandas DataFrame: the data (a copy) with the answer in ``column``, or the schema's fields as columns."""
        import pandas as pd

        frame = self.source.copy() if is_frame(self.source) else pd.DataFrame(self.fields)
        if self.schema is None:
            frame[column] = self.texts
        else:
            for name in self.schema.model_fields:
                frame[name] = [r.value.get(name) if r.ok and isinstance(r.value, dict) else None for r in self.rows]
        frame["error"] = [r.error or ("not asked" if r.skipped else "") for r in self.rows]
        return frame

    def summary(self) -> str:
        parts = [f"map job {self.job_id}: {len(self.answered)} of {len(self.rows)} rows answered"]
        if self.reused:
            parts.append(f"{self.reused} from the store")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} not asked")
        parts.append(f"${self.cost_usd:.4f} spent")
        text = ", ".join(parts)
        if self.failed:
            text += f"\nfirst failure (row {self.failed[0].index}): {self.failed[0].error}"
        if self.stopped:
            text += f"\n{self.stopped}"
        return text

    def __repr__(self) -> str:
        return f"<MapResult {self.summary()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.summary())

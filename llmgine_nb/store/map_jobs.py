"""Prompts over data: the jobs of ``runtime.map`` and the rows they have answered.

Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL).  Only answered rows are
stored: a row that failed, or was never asked, is asked when the job runs
again, and an answered row is never paid for twice.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .database import Connection, rows
from .rows import from_json, to_json, utc_text

__all__ = ["MapRowRecord", "MapJobs", "save_job", "answered", "save_row"]


class MapRowRecord(BaseModel):
    """One answered row of a map job."""

    model_config = ConfigDict(frozen=True)

    row_index: int
    prompt_hash: str
    text: str = ""
    value: Any = None  # the structured output as JSON, when a schema was given
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    attempts: int = 1
    model: str | None = None


def save_job(
    conn: Connection, job_id: str, *, name: str | None, template: str, model: str | None,
    schema_name: str | None, total: int,
) -> None:
    """Create the job, or note that it runs again (its model and size may have changed)."""
    now = utc_text()
    conn.execute(
        "INSERT INTO map_jobs (id, name, template, model, schema_name, total, created, updated) "
        "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET model=excluded.model, total=excluded.total, "
        "updated=excluded.updated",
        (job_id, name, template, model, schema_name, total, now, now),
    )


def answered(conn: Connection, job_id: str) -> dict[int, MapRowRecord]:
    """The job's answered rows by index."""
    found = rows(
        conn,
        "SELECT row_index, prompt_hash, text, value, input_tokens, output_tokens, cost_usd, attempts, model "
        "FROM map_rows WHERE job_id = ? ORDER BY row_index",
        (job_id,),
    )
    return {
        r["row_index"]: MapRowRecord(
            row_index=r["row_index"], prompt_hash=r["prompt_hash"], text=r["text"] or "",
            value=from_json(r["value"]), input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
            cost_usd=r["cost_usd"], attempts=r["attempts"], model=r["model"],
        )
        for r in found
    }


def save_row(conn: Connection, job_id: str, row: MapRowRecord) -> None:
    """Keep an answered row (replacing an older answer to a prompt that has since changed)."""
    conn.execute(
        "INSERT INTO map_rows (job_id, row_index, prompt_hash, text, value, input_tokens, output_tokens, "
        "cost_usd, attempts, model, finished) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (job_id, row_index) "
        "DO UPDATE SET prompt_hash=excluded.prompt_hash, text=excluded.text, value=excluded.value, "
        "input_tokens=excluded.input_tokens, output_tokens=excluded.output_tokens, cost_usd=excluded.cost_usd, "
        "attempts=excluded.attempts, model=excluded.model, finished=excluded.finished",
        (job_id, row.row_index, row.prompt_hash, row.text, to_json(row.value), row.input_tokens,
         row.output_tokens, row.cost_usd, row.attempts, row.model, utc_text()),
    )


class MapJobs:
    """The store's map jobs (``store.map_jobs``): the functions above, each in one transaction or read."""

    def __init__(self, database: Any) -> None:
        self.database = database

    def save_job(self, job_id: str, **fields: Any) -> None:
        with self.database.transaction() as conn:
            save_job(conn, job_id, **fields)

    def answered(self, job_id: str) -> dict[int, MapRowRecord]:
        with self.database.locked() as conn:
            return answered(conn, job_id)

    def save_row(self, job_id: str, row: MapRowRecord) -> None:
        with self.database.transaction() as conn:
            save_row(conn, job_id, row)

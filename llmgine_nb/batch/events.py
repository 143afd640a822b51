"""Events of a prompt over data: a job started, a row answered or failed, the job ended.

A front end draws its progress bar from these; the cost cap's question is
the tool layer's ``ConfirmationRequested`` (answered like any other).
"""

from __future__ import annotations

from typing import Literal

from ..messages import Event

__all__ = ["MapEvent", "MapStarted", "MapRowFinished", "MapFinished"]


class MapEvent(Event):
    """Base of the events of one map job."""

    job_id: str


class MapStarted(MapEvent):
    total: int
    reused: int  # rows answered by an earlier run, taken from the store
    concurrency: int
    max_cost: float | None = None


class MapRowFinished(MapEvent):
    row_index: int
    status: Literal["answered", "failed"]
    attempts: int = 1
    cost_usd: float | None = None
    error: str = ""


class MapFinished(MapEvent):
    answered: int
    failed: int
    skipped: int  # rows not asked because the job was stopped (cost cap, cancel)
    cost_usd: float
    stopped: str = ""  # why the job stopped early, in a sentence

"""A prompt over data: one template run over the rows of a table, a list or files (``MapJob``)."""

from __future__ import annotations

from .events import MapEvent, MapFinished, MapRowFinished, MapStarted
from .result import MapResult, MapRowResult
from .runner import MapJob, MapProgress

__all__ = ["MapJob", "MapProgress", "MapResult", "MapRowResult", "MapEvent", "MapStarted", "MapRowFinished",
           "MapFinished"]

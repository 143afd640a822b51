"""Shared helpers for the benchmarks: timing and the figure every benchmark returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Figure:
    """One measured figure beside its baseline from the same run.

    ``ratio`` is value / baseline.  ``goal`` says in words what is wanted and
    ``ok`` whether this run met it.
    """

    name: str
    value: float
    baseline: float
    unit: str
    goal: str
    ok: bool
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("name")
        data["ratio"] = self.ratio
        return data


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn()``, in seconds.

    The minimum is the least noisy estimate on a shared machine.
    """
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best

"""What a long-running llmgine-nb service process (the server, an engine worker) sets for itself.

A notebook kernel is the user's process and keeps Python's defaults; these
processes are ours.
"""

from __future__ import annotations

import gc

__all__ = ["SERVICE_GC_THRESHOLDS", "tune_for_service"]

#: The cyclic collector's thresholds in a service (Python's default: 700, 10, 10).  A turn
#: makes thousands of short-lived containers (events, their JSON, frozen copies), so at 700
#: the youngest generation is collected every few hundred microseconds, each time walking
#: the engines' long-lived objects that have not yet aged out of it.  Measured with
#: ``benchmarks/bench_server.py`` (``serve_turns``, medians of 3 alternating rounds): server
#: CPU 1.00 ms a turn at 700, 0.88 at 3000, 0.90 at 7000 and at 20000.  Memory freed by
#: reference counting (nearly all of it) is freed at once either way.
SERVICE_GC_THRESHOLDS = (3000, 10, 10)


def tune_for_service() -> None:
    gc.set_threshold(*SERVICE_GC_THRESHOLDS)

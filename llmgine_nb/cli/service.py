"""What a long-running llmgine-nb service process (the server, an engine worker) sets for itself.

A notebook kernel is the user's process and keeps Python's defaults; these
processes are ours.
"""

from __future__ import annotations

import gc

__all__ = ["SERVICE_GC_THRESHOLDS", "tune_for_service", "freeze_startup_heap"]

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


def freeze_startup_heap() -> None:
    """Collect once and freeze what is left, just before the process starts serving.

    The last full collection ran during the imports, when few objects existed,
    so the next one was due within the first few hundred turns: 25-50 ms of
    walking the modules, classes and app (about 70,000 objects) with every
    request standing still.  Collecting here takes that pause before the first
    request.  ``gc.freeze()`` then moves those objects to the permanent
    generation, which later full collections do not walk (each took 27-31 ms
    before, 18-23 ms after).  Measured with ``serve_turns`` (10 alternating
    rounds): a fresh server's first 500 turns, 0.95 -> 0.81 ms of server CPU a
    turn; a server past its start-up, no difference beyond the noise
    (0.84 against 0.89 ms).
    """
    gc.collect()  # what is garbage already is freed, not frozen
    gc.freeze()

"""What a turn's handle and a map job's handle share: work on the bus's loop that a cell may wait for.

A subclass sets ``future`` and ``noun`` (how errors name it: "the turn")
and defines ``cancel()``; ``_wait`` is the blocking wait both offer, asking
what waits for a person with ``input()`` meanwhile (a click cannot arrive
while the cell blocks).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BackgroundHandle"]

R = TypeVar("R")


class BackgroundHandle(Generic[R]):
    """A future on the bus's loop, seen from the notebook: ``done()``, ``result``, a blocking wait."""

    future: concurrent.futures.Future[R]
    noun = "the job"

    def done(self) -> bool:
        return self.future.done()

    @property
    def result(self) -> R:
        """What it ended with (raises while it is still running: use ``wait()``)."""
        if not self.future.done():
            raise RuntimeError(f"{self.noun} is still running; call .wait() to wait for it")
        return self.future.result()

    def cancel(self) -> bool:
        raise NotImplementedError

    def _wait(self, timeout: float | None, answer_meanwhile: Callable[[], None]) -> R:
        """Block until it ends (at most ``timeout`` s), calling ``answer_meanwhile`` between looks.

        A KeyboardInterrupt (a kernel interrupt) cancels it, then is raised again.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    return self.future.result(timeout=0.05)
                except concurrent.futures.TimeoutError:
                    pass
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"{self.noun} did not finish within {timeout} s; it is still running")
                answer_meanwhile()
        except KeyboardInterrupt:
            self.cancel()
            raise

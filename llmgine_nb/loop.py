"""An asyncio event loop running in a background thread.

This is the concurrency model of llmgine-nb: the engine and its bus handlers
live on one event loop in a daemon thread, and front ends (a notebook cell, a
widget click, a script) submit coroutines to it thread-safely.  A notebook
cell therefore never blocks on a turn, and synchronous code never meets
"event loop is already running".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["BackgroundLoop"]


class BackgroundLoop:
    """Owns one event loop in one daemon thread, started on first use."""

    def __init__(self, name: str = "llmgine-loop") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started now if it was not yet."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._start()
            assert self._loop is not None
            return self._loop

    def _start(self) -> None:
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            # Drain what is left so that nothing is destroyed while pending.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop

    @property
    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; returns at once with a future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and block this thread until it is done."""
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError(
                "a blocking call was made from inside the bus's own event loop, "
                "which would wait for itself forever; use `await` there instead"
            )
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"gave up waiting after {timeout} s") from None
        except KeyboardInterrupt:
            # A kernel interrupt while blocked: cancel the work, then re-raise.
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop and wait for its thread to finish."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

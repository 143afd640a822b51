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
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["BackgroundLoop"]

log = logging.getLogger("llmgine_nb.loop")


class BackgroundLoop:
    """Owns one event loop in one daemon thread, started on first use."""

    def __init__(self, name: str = "llmgine-loop") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: How many times the loop died and was started again; the last reason, as a sentence.
        self.restarts = 0
        self.last_death: str | None = None
        self._died: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started now if it was not yet (or started anew if it died)."""
        with self._lock:
            if self._loop is not None and not self._alive():
                self._replace_dead_loop()
            if self._loop is None or self._loop.is_closed():
                self._start()
            assert self._loop is not None
            return self._loop

    def _alive(self) -> bool:
        thread, loop = self._thread, self._loop
        return (
            thread is not None and thread.is_alive()
            and loop is not None and loop is not self._died and not loop.is_closed()
        )

    def _replace_dead_loop(self) -> None:
        # Only a loop that was not asked to stop gets here: stop() clears _loop first.
        self.restarts += 1
        reason = self.last_death or "its thread ended unexpectedly"
        log.warning("The engine's background event loop stopped (%s); a new one was started, "
                    "and turns that were running on the old one ended.", reason)
        self._loop = self._thread = None

    def _start(self) -> None:
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            except BaseException as exc:  # noqa: B036 - a SystemExit/KeyboardInterrupt out of a task
                # Record it; the next use of ``loop`` says so and starts a new loop.
                self.last_death = f"{type(exc).__name__} escaped from a task on it"
                self._died = loop  # before the drain releases any waiter, so that its next call sees it
            finally:
                self._drain(loop)

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop

    @staticmethod
    def _drain(loop: asyncio.AbstractEventLoop) -> None:
        """Cancel what is left, so that nothing is destroyed while pending and every waiter is released."""
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()

            async def settle() -> None:
                await asyncio.gather(*pending, return_exceptions=True)
                await asyncio.sleep(0)  # the done-callbacks that hand results to waiting threads

            # Run even with nothing pending: a task that died has callbacks queued that release its waiter.
            loop.run_until_complete(settle())
        except BaseException:  # noqa: B036 - a task dying again while cancelled; the loop is closed anyway
            log.debug("a task failed while the background loop was being drained", exc_info=True)
        finally:
            loop.close()

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
        except (Exception, concurrent.futures.CancelledError):
            raise
        except BaseException as exc:  # noqa: B036 - SystemExit from the work: not this thread's to exit on
            raise RuntimeError(
                f"the work on the background loop raised {type(exc).__name__}, which stopped that loop; "
                "a new loop starts on the next call"
            ) from exc

    def stop(self) -> None:
        """Stop the loop and wait for its thread to finish."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

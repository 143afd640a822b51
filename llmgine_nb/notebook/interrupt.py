"""The kernel's interrupt (the ■ button) stops turns running in the background.

This is the one place that touches an ipykernel attribute that is not part
of a documented API: ``kernel.saved_sigint_handler``.  There is no public
way to do this.  ipykernel ignores SIGINT while no cell runs: before each
cell it saves the handler in force into ``saved_sigint_handler``, installs
its own, and puts the saved one back after the cell.  So a handler placed
in ``saved_sigint_handler`` is the one in force *between* cells - exactly
when a background turn runs and no cell would otherwise notice the button.
Installing it with ``signal.signal`` would be undone by the next cell.

If a later ipykernel drops the attribute, ``install`` does nothing: turns
are then stopped with ``%llmgine stop``, and a blocked ``--wait`` cell still
gets KeyboardInterrupt as usual.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["InterruptHook"]

_KERNEL_ATTRIBUTE = "saved_sigint_handler"


class InterruptHook:
    """Calls ``on_interrupt()`` when the kernel is interrupted between cells.

    ``on_interrupt`` returns True when it stopped something; otherwise the
    handler that was there before runs, as if we were not here.  It runs in a
    signal handler, so it must not block.
    """

    def __init__(self, on_interrupt: Callable[[], bool]) -> None:
        self._on_interrupt = on_interrupt
        self._installed: tuple[Any, Any, Any] | None = None  # (kernel, our handler, the previous one)

    def install(self, shell: Any) -> None:
        """Put the hook in place on ``shell``'s kernel (once; a no-op without a kernel or off the main thread)."""
        kernel = getattr(shell, "kernel", None)
        if (
            self._installed is not None
            or kernel is None
            or not hasattr(kernel, _KERNEL_ATTRIBUTE)
            or threading.current_thread() is not threading.main_thread()
        ):
            return
        previous = getattr(kernel, _KERNEL_ATTRIBUTE)

        def handler(signum: int, frame: Any) -> None:
            if not self._on_interrupt() and callable(previous):
                previous(signum, frame)

        setattr(kernel, _KERNEL_ATTRIBUTE, handler)
        self._installed = (kernel, handler, previous)

    def remove(self) -> None:
        """Put back what was there before (if it is still ours)."""
        if self._installed is None:
            return
        kernel, ours, previous = self._installed
        self._installed = None
        if getattr(kernel, _KERNEL_ATTRIBUTE, None) is ours:
            setattr(kernel, _KERNEL_ATTRIBUTE, previous)
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is ours:
            signal.signal(signal.SIGINT, previous)

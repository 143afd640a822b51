"""Ready-made middleware for the bus: timing and logging.

Middleware wraps ``execute`` (``async def mw(command, call_next)``) or
``publish`` (``async def mw(event, call_next)``); the first added is the
outermost.  These two are small on purpose: copy them to write your own.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from .messages import Command, CommandResult, Message

__all__ = ["CommandTimer", "LoggingMiddleware"]


class CommandTimer:
    """Command middleware that records how long each command type took.

    >>> timer = CommandTimer(); bus.add_command_middleware(timer)
    >>> timer.durations["MyCommand"]  # seconds, one entry per execute
    """

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = defaultdict(list)

    async def __call__(
        self, command: Command, call_next: Callable[[Command], Awaitable[CommandResult]]
    ) -> CommandResult:
        start = time.perf_counter()
        try:
            return await call_next(command)
        finally:
            self.durations[type(command).__name__].append(time.perf_counter() - start)


class LoggingMiddleware:
    """Logs every command or event it sees (works as either kind of middleware)."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.DEBUG) -> None:
        self.logger = logger or logging.getLogger("llmgine_nb.messages")
        self.level = level

    async def __call__(self, message: Message, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        self.logger.log(self.level, "%s %s session=%s", type(message).__name__, message.id, message.session_id)
        result = await call_next(message)
        if isinstance(result, CommandResult) and not result.success:
            self.logger.log(self.level, "%s failed: %s", type(message).__name__, result.error)
        return result

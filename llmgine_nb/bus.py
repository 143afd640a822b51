"""The message bus: commands in (one handler each), events out (any subscribers).

A ``MessageBus`` is a plain object; make as many as you like.  It is
asyncio-native: ``await bus.execute(command)`` and ``await bus.publish(event)``
run the handlers straight away, with no queue in between, so a handler may
publish or execute from inside another handler without deadlock.
``execute_sync``/``publish_sync`` run the same on the bus's background loop
(see ``loop.py``) for synchronous callers.

Where event handlers run:

- ``async def`` subscribers run on the event loop (they must not block it:
  that is asyncio's contract);
- plain ``def`` subscribers run on a small pool of worker threads the bus
  owns, one after another in priority order, while ``publish`` waits for
  them.  A subscriber that blocks (a slow file write) therefore holds up
  only the publisher that is waiting for it, never the loop that every
  other session's turn runs on.  Order is kept, so "persist before render"
  holds: a renderer does not see an event before the journal's
  higher-priority subscriber has returned;
- ``subscribe(..., inline=True)`` runs a plain subscriber on the loop's own
  thread instead: for quick, non-blocking bookkeeping (the library's own
  observers), which saves the hop to a worker thread.

Command handlers (sync or async) run where ``execute`` is awaited.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import itertools
import logging
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from .loop import BackgroundLoop
from .messages import Command, CommandResult, Event, HandlerFailed, Message, StopPublishing, current_session_id
from .registration import DuplicateHandlerError, Registration, describe_handler
from .session import Session
from .subscribers import AWAIT, CALL, SubscriberIndex

__all__ = [
    "MessageBus",
    "Registration",
    "Session",
    "DuplicateHandlerError",
    "CommandMiddleware",
    "EventMiddleware",
    "SYNC_WORKERS",
]

log = logging.getLogger("llmgine_nb.bus")

C = TypeVar("C", bound=Command)
E = TypeVar("E", bound=Event)

CommandMiddleware = Callable[[Command, Callable[[Command], Awaitable[CommandResult]]], Awaitable[CommandResult]]
EventMiddleware = Callable[[Event, Callable[[Event], Awaitable[None]]], Awaitable[None]]

#: Worker threads a bus keeps for plain (sync) subscribers: at most this many block at once.
SYNC_WORKERS = 8

_CURRENT: Any = object()  # "the session of the caller's context" (a default that None cannot be)


def _failure_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _run_sync_handlers(
    handlers: tuple[Callable[[Any], Any], ...], start: int, event: Event
) -> tuple[list[tuple[Callable[..., Any], Exception]], tuple[Callable[..., Any], Awaitable[Any]] | None, int]:
    """On a worker thread: call ``handlers[start:]`` in order.

    Stops early at a handler that returned an awaitable (it must be awaited on
    the loop before the next handler runs).  Returns the failures, that
    awaitable if any, and where to go on from.
    """
    failures: list[tuple[Callable[..., Any], Exception]] = []
    for index in range(start, len(handlers)):
        fn = handlers[index]
        try:
            value = fn(event)
        except Exception as exc:
            failures.append((fn, exc))
            if isinstance(exc, StopPublishing):
                return failures, None, len(handlers)  # the publisher must not go on: nor must the rest
            continue
        if value is not None and inspect.isawaitable(value):
            return failures, (fn, value), index + 1
    return failures, None, len(handlers)


class MessageBus:
    """Routes commands to their one handler and events to all their subscribers."""

    def __init__(self, name: str = "bus", *, sync_workers: int = SYNC_WORKERS) -> None:
        if sync_workers < 1:
            raise ValueError("sync_workers must be at least 1 (the threads plain subscribers run on)")
        self.name = name
        self.sync_workers = sync_workers
        self._command_handlers: dict[tuple[type[Command], str | None], Registration] = {}
        self._scoped_command_handlers = 0
        self._index = SubscriberIndex()
        # The index's own tables, read here on the hot path without an attribute hop.
        self._subscriptions = self._index.unscoped
        self._plans = self._index.plans
        self._solo = self._index.solo
        self._session_plans = self._index.session_plans
        self._special = self._index.special
        self._command_middleware: list[Registration] = []
        self._event_middleware: list[Registration] = []
        self._order = itertools.count()
        self._background: BackgroundLoop | None = None
        self._workers: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = self._index.lock

    # -- registration ----------------------------------------------------

    def register_command_handler(
        self,
        command_type: type[C],
        handler: Callable[[C], Any],
        *,
        session_id: str | None = None,
    ) -> Registration:
        """Make ``handler`` the one handler of ``command_type`` (in a session if given).

        Registering the same function again (a re-run notebook cell) replaces
        the earlier registration; a different function is a ``DuplicateHandlerError``.
        """
        if not (isinstance(command_type, type) and issubclass(command_type, Command)):
            raise TypeError(f"{command_type!r} is not a Command subclass")
        key = (command_type, session_id)

        def remove(reg: Registration) -> None:
            with self._lock:
                if self._command_handlers.get(key) is reg:
                    del self._command_handlers[key]
                    if session_id is not None:
                        self._scoped_command_handlers -= 1

        reg = Registration(handler, 0, session_id, next(self._order), remove)
        with self._lock:
            existing = self._command_handlers.get(key)
            if existing is not None:
                if existing.identity != reg.identity:
                    where = f" in session {session_id}" if session_id else ""
                    raise DuplicateHandlerError(
                        f"{command_type.__name__} already has a handler{where} ({describe_handler(existing.fn)}); "
                        "unregister it first (its registration's .unregister()). Registering the same "
                        "function again replaces it; a different one is refused."
                    )
                existing.unregister()
            self._command_handlers[key] = reg
            if session_id is not None:
                self._scoped_command_handlers += 1
        return reg

    def command_handler(self, command_type: type[C]) -> Callable[[Callable[[C], Any]], Callable[[C], Any]]:
        """Decorator form of ``register_command_handler``."""

        def decorate(fn: Callable[[C], Any]) -> Callable[[C], Any]:
            self.register_command_handler(command_type, fn)
            return fn

        return decorate

    def subscribe(
        self,
        event_type: type[E],
        handler: Callable[[E], Any],
        *,
        priority: int = 0,
        session_id: str | None = None,
        exclude: tuple[type[Event], ...] = (),
        inline: bool = False,
    ) -> Registration:
        """Deliver events of ``event_type`` and its subclasses to ``handler``.

        Higher ``priority`` runs first; equal priorities run in the order
        they subscribed.  ``exclude`` names subclasses not to deliver (say,
        every ``Event`` but the streamed deltas): an event nobody wants is
        then not even built (see ``has_subscribers``).  A plain (sync)
        handler runs on a worker thread unless ``inline=True`` (quick
        handlers that never block; see the module's docstring).

        Subscribing the same function again (a re-run notebook cell: same
        module and qualified name, for a method the same instance) to the same
        class in the same session replaces the earlier subscription.
        """
        if not (isinstance(event_type, type) and issubclass(event_type, Message)):
            raise TypeError(f"{event_type!r} is not an Event subclass")
        exclude = tuple(exclude)
        if not all(isinstance(t, type) and issubclass(t, Message) for t in exclude):
            raise TypeError(f"exclude must be a tuple of Event subclasses, not {exclude!r}")
        reg = Registration(handler, priority, session_id, next(self._order), self._index.remove, exclude, inline=inline)
        self._index.add(event_type, reg)
        return reg

    def on(
        self, event_type: type[E], *, priority: int = 0, inline: bool = False
    ) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
        """Decorator form of ``subscribe``."""

        def decorate(fn: Callable[[E], Any]) -> Callable[[E], Any]:
            self.subscribe(event_type, fn, priority=priority, inline=inline)
            return fn

        return decorate

    def registrations(self) -> list[Registration]:
        """Every active registration: command handlers, then subscribers (unscoped, then by session)."""
        with self._lock:
            return [*self._command_handlers.values(), *self._index.all()]

    def add_command_middleware(self, middleware: CommandMiddleware) -> Registration:
        """Wrap every ``execute``: ``async def mw(command, call_next) -> CommandResult``.

        Middleware added first is outermost.
        """
        return self._add_middleware(self._command_middleware, middleware)

    def add_event_middleware(self, middleware: EventMiddleware) -> Registration:
        """Wrap every ``publish``: ``async def mw(event, call_next) -> None``."""
        return self._add_middleware(self._event_middleware, middleware)

    def _add_middleware(self, chain: list[Registration], middleware: Callable[..., Any]) -> Registration:
        reg = Registration(middleware, 0, None, next(self._order), lambda r: chain.remove(r))
        if not reg.is_async:
            raise TypeError("middleware must be an async function: async def mw(message, call_next)")
        chain.append(reg)
        return reg

    # -- commands ----------------------------------------------------------

    def execute(self, command: Command) -> Coroutine[Any, Any, CommandResult]:
        """Run ``command`` through its handler; never raises for a handler's error.

        Await it: ``result = await bus.execute(command)``.
        """
        if self._command_middleware:
            return self._through_command_middleware(command, 0)
        return self._execute(command)

    async def _through_command_middleware(self, command: Command, index: int) -> CommandResult:
        if index == len(self._command_middleware):
            return await self._execute(command)
        middleware = self._command_middleware[index].fn
        return await middleware(command, lambda c: self._through_command_middleware(c, index + 1))

    def _find_command_handler(self, command: Command) -> Registration | None:
        handlers = self._command_handlers
        mro = type(command).__mro__
        if self._scoped_command_handlers:
            for session_id in self._session_chain(command.session_id):
                for klass in mro:
                    reg = handlers.get((klass, session_id))
                    if reg is not None:
                        return reg
        for klass in mro:
            reg = handlers.get((klass, None))
            if reg is not None:
                return reg
            if klass is Command:
                break
        return None

    async def _execute(self, command: Command) -> CommandResult:
        # The common case first: no session has handlers of its own, and the command's own class has one.
        reg = None if self._scoped_command_handlers else self._command_handlers.get((command.__class__, None))
        if reg is None:
            reg = self._find_command_handler(command)
        if reg is None:
            return self._result(
                command,
                success=False,
                error=(
                    f"no handler is registered for {type(command).__name__}; register one with "
                    f"bus.register_command_handler({type(command).__name__}, handler)"
                ),
            )
        try:
            if reg.is_async:
                value = await reg.fn(command)
            else:
                value = reg.fn(command)
                if value is not None and inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            log.debug("command handler %s failed", describe_handler(reg.fn), exc_info=True)
            return self._result(
                command, success=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
            )
        if isinstance(value, CommandResult):
            if value.command_id:
                return value
            # A handler that returned CommandResult(success=..., result=...) without knowing
            # the command's id: say which command it answers (a copy: messages are values).
            return value.model_copy(
                update={
                    "command_id": value.command_id or command.id,
                    "command_type": value.command_type or command.type_name,
                    "session_id": value.session_id if value.session_id is not None else command.session_id,
                }
            )
        return self._result(command, result=value)

    @staticmethod
    def _result(command: Command, **fields: Any) -> CommandResult:
        # Plain construction: pydantic's model_construct() is slower here (it inspects each
        # default factory's signature on every call), and validation is cheap.
        return CommandResult(command_id=command.id, command_type=command.type_name, session_id=command.session_id, **fields)

    # -- events ------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber of its class and base classes.

        A failing subscriber does not stop the others; it produces a
        ``HandlerFailed`` event instead.  Subclasses may override it (and
        call ``super().publish(event)``).
        """
        # The common case inline (benchmarks/bench_bus.py): one async subscriber, no middleware.
        solo = self._solo.get(event.__class__)
        if solo is not None and not self._event_middleware:
            try:
                await solo(event)
            except Exception as exc:
                await self._handler_failed(solo, event, exc)
            return
        if self._event_middleware:
            await self._through_event_middleware(event, 0)
        else:
            await self._deliver(event)

    async def _through_event_middleware(self, event: Event, index: int) -> None:
        if index == len(self._event_middleware):
            await self._deliver(event)
            return
        middleware = self._event_middleware[index].fn
        await middleware(event, lambda e: self._through_event_middleware(e, index + 1))

    async def _deliver(self, event: Event) -> None:
        solo = self._solo.get(event.__class__)
        if solo is not None:
            try:
                await solo(event)
            except Exception as exc:
                await self._handler_failed(solo, event, exc)
            return
        session_id = event.session_id
        if session_id is None or session_id not in self._special:
            plan = self._plans.get(event.__class__)
        else:
            plans = self._session_plans.get(session_id)
            plan = plans.get(event.__class__) if plans is not None else None
        if plan is None:
            plan = self._index.build(event.__class__, session_id)
        for fn, how in plan:
            if how == AWAIT:
                try:
                    await fn(event)
                except Exception as exc:
                    await self._handler_failed(fn, event, exc)
            elif how == CALL:
                try:
                    value = fn(event)
                    if value is not None and inspect.isawaitable(value):
                        await value
                except Exception as exc:
                    await self._handler_failed(fn, event, exc)
            else:
                await self._deliver_off_loop(fn, event)

    async def _deliver_off_loop(self, handlers: tuple[Callable[[Any], Any], ...], event: Event) -> None:
        loop = asyncio.get_running_loop()
        start = 0
        while start < len(handlers):
            # The handlers see the caller's context (its session, its ambient metadata).
            context = contextvars.copy_context()
            failures, pending, start = await loop.run_in_executor(
                self._sync_pool(), context.run, _run_sync_handlers, handlers, start, event
            )
            for fn, exc in failures:
                await self._handler_failed(fn, event, exc)
            if pending is not None:
                fn, awaitable = pending
                try:
                    await awaitable
                except Exception as exc:
                    await self._handler_failed(fn, event, exc)

    def _sync_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        pool = self._workers
        if pool is None:
            with self._lock:
                if self._workers is None:
                    self._workers = concurrent.futures.ThreadPoolExecutor(
                        self.sync_workers, thread_name_prefix=f"llmgine-{self.name}-sync"
                    )
                pool = self._workers
        return pool

    def has_subscribers(self, event_type: type[Event], session_id: str | None = _CURRENT) -> bool:
        """Whether an event of this class, in this session, would reach anyone.

        ``session_id`` defaults to the caller's current session (the one an
        event made here would carry).  For publishers of many small events:
        skip building them when nobody listens.  (A model call asks once, when
        it starts: a subscriber added during the call gets deltas from the
        next call on.)
        """
        if self._event_middleware:
            return True  # middleware sees every event
        if session_id is _CURRENT:
            session_id = current_session_id()
        return bool(self._index.plan(event_type, session_id))

    async def _handler_failed(self, handler: Callable[..., Any], event: Event, exc: Exception) -> None:
        if isinstance(exc, StopPublishing):
            raise exc  # to the publisher: what it does next must not happen
        name = describe_handler(handler)
        if isinstance(event, HandlerFailed):
            # Reporting a failure of a failure handler would loop forever.
            log.error("HandlerFailed subscriber %s raised %r; not reported again", name, exc)
            return
        log.warning("subscriber %s failed on %s: %r", name, type(event).__name__, exc)
        await self.publish(
            HandlerFailed(
                session_id=event.session_id,
                handler=name,
                event_id=event.id,
                event_type=event.type_name,
                error=f"{type(exc).__name__}: {exc}",
                traceback=_failure_text(exc),
            )
        )

    # -- sessions ------------------------------------------------------------

    def session(self, name: str | None = None, *, session_id: str | None = None) -> Session:
        """A scope: ``async with bus.session() as s`` or ``with bus.session() as s``."""
        return Session(self, name=name, session_id=session_id)

    def _session_chain(self, session_id: str | None) -> tuple[str | None, ...]:
        return self._index.chain(session_id)

    def _session_opened(self, session_id: str, parent_id: str | None) -> None:
        self._index.opened(session_id, parent_id)

    def _session_closed(self, session_id: str) -> None:
        self._index.closed(session_id)

    # -- synchronous callers -------------------------------------------------

    @property
    def background(self) -> BackgroundLoop:
        """The background loop that synchronous calls run on (started on first use)."""
        if self._background is None:
            self._background = BackgroundLoop(f"llmgine-{self.name}")
        return self._background

    def execute_sync(self, command: Command, timeout: float | None = None) -> CommandResult:
        """``execute`` for synchronous code: runs on the background loop and waits."""
        return self.background.run(self.execute(command), timeout)

    def publish_sync(self, event: Event, timeout: float | None = None) -> None:
        """``publish`` for synchronous code: runs on the background loop and waits."""
        self.background.run(self.publish(event), timeout)

    def close(self) -> None:
        """Stop the background loop and the worker threads, if they were started."""
        if self._background is not None:
            self._background.stop()
            self._background = None
        if self._workers is not None:
            self._workers.shutdown(wait=False)
            self._workers = None

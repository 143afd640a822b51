"""The message bus: commands in (one handler each), events out (any subscribers).

A ``MessageBus`` is a plain object; make as many as you like.  It is
asyncio-native: ``await bus.execute(command)`` and ``await bus.publish(event)``
run the handlers in the caller's event loop, straight away, with no queue in
between, so a handler may publish or execute from inside another handler
without deadlock.  ``execute_sync``/``publish_sync`` run the same on the bus's
background loop (see ``loop.py``) for synchronous callers.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import Token
from typing import Any, TypeVar

from .loop import BackgroundLoop
from .messages import (
    Command,
    CommandResult,
    Event,
    HandlerFailed,
    Message,
    SessionEnded,
    SessionStarted,
    _current_session,
)

__all__ = [
    "MessageBus",
    "Registration",
    "Session",
    "DuplicateHandlerError",
    "CommandMiddleware",
    "EventMiddleware",
]

log = logging.getLogger("llmgine_nb.bus")

C = TypeVar("C", bound=Command)
E = TypeVar("E", bound=Event)

CommandHandler = Callable[[Any], Any]
EventHandler = Callable[[Any], Any]
CommandMiddleware = Callable[[Command, Callable[[Command], Awaitable[CommandResult]]], Awaitable[CommandResult]]
EventMiddleware = Callable[[Event, Callable[[Event], Awaitable[None]]], Awaitable[None]]


# (handler, is_async, session scope or None), precomputed per event class.
_Delivery = tuple[Callable[[Any], Any], bool, "str | None"]


class DuplicateHandlerError(ValueError):
    """A command type already has a handler in that scope."""


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)
    )


def _describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


class Registration:
    """A handle on one registration; ``unregister()`` removes it (idempotent)."""

    __slots__ = ("fn", "is_async", "priority", "session_id", "order", "exclude", "_remove")

    def __init__(
        self,
        fn: Callable[..., Any],
        priority: int,
        session_id: str | None,
        order: int,
        remove: Callable[[Registration], None],
        exclude: tuple[type[Message], ...] = (),
    ) -> None:
        self.fn = fn
        self.is_async = _is_async(fn)
        self.priority = priority
        self.session_id = session_id
        self.order = order
        self.exclude = exclude
        self._remove: Callable[[Registration], None] | None = remove

    def unregister(self) -> None:
        if self._remove is not None:
            remove, self._remove = self._remove, None
            remove(self)

    @property
    def active(self) -> bool:
        return self._remove is not None

    def __repr__(self) -> str:
        scope = f" session={self.session_id}" if self.session_id else ""
        return f"<Registration {_describe(self.fn)} priority={self.priority}{scope}>"


class MessageBus:
    """Routes commands to their one handler and events to all their subscribers."""

    def __init__(self, name: str = "bus") -> None:
        self.name = name
        self._command_handlers: dict[tuple[type[Command], str | None], Registration] = {}
        self._subscriptions: dict[type[Event], list[Registration]] = {}
        # Per event class: its subscribers (via the MRO) in delivery order.
        self._delivery_cache: dict[type[Event], tuple[_Delivery, ...]] = {}
        # Classes whose only subscriber is one async, unscoped handler: the common case, delivered
        # without walking a plan (cleared and filled with the plans).
        self._solo_cache: dict[type[Event], Callable[..., Any]] = {}
        self._command_middleware: list[Registration] = []
        self._event_middleware: list[Registration] = []
        self._scoped_handlers = 0
        # Open sessions: id -> parent id, so scoped handlers see nested sessions.
        self._session_parents: dict[str, str | None] = {}
        self._order = itertools.count()
        self._background: BackgroundLoop | None = None
        # Registration may happen on one thread (a notebook cell) while delivery
        # fills the cache on another (the engine's loop): both hold this lock, so
        # a cache is never filled from a subscriber list that was changing.  The
        # hot path only reads the cache and takes no lock.
        self._lock = threading.RLock()
        self._route_publish()

    # -- registration ----------------------------------------------------

    def register_command_handler(
        self,
        command_type: type[C],
        handler: Callable[[C], Any],
        *,
        session_id: str | None = None,
    ) -> Registration:
        """Make ``handler`` the one handler of ``command_type`` (in a session if given)."""
        if not (isinstance(command_type, type) and issubclass(command_type, Command)):
            raise TypeError(f"{command_type!r} is not a Command subclass")
        key = (command_type, session_id)

        def remove(reg: Registration) -> None:
            with self._lock:
                if self._command_handlers.get(key) is reg:
                    del self._command_handlers[key]
                    if session_id is not None:
                        self._scoped_handlers -= 1

        reg = Registration(handler, 0, session_id, next(self._order), remove)
        with self._lock:
            if key in self._command_handlers:
                where = f" in session {session_id}" if session_id else ""
                existing = _describe(self._command_handlers[key].fn)
                raise DuplicateHandlerError(
                    f"{command_type.__name__} already has a handler{where} ({existing}); "
                    "unregister it first (its registration's .unregister())"
                )
            self._command_handlers[key] = reg
            if session_id is not None:
                self._scoped_handlers += 1
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
    ) -> Registration:
        """Deliver events of ``event_type`` and its subclasses to ``handler``.

        Higher ``priority`` runs first; equal priorities run in the order
        they subscribed.  ``exclude`` names subclasses not to deliver (say,
        every ``Event`` but the streamed deltas): an event nobody wants is
        then not even built (see ``has_subscribers``).
        """
        if not (isinstance(event_type, type) and issubclass(event_type, Message)):
            raise TypeError(f"{event_type!r} is not an Event subclass")
        exclude = tuple(exclude)
        if not all(isinstance(t, type) and issubclass(t, Message) for t in exclude):
            raise TypeError(f"exclude must be a tuple of Event subclasses, not {exclude!r}")

        def remove(reg: Registration) -> None:
            with self._lock:
                subs = self._subscriptions.get(event_type, [])
                if reg in subs:
                    subs.remove(reg)
                    self._delivery_cache.clear()
                    self._solo_cache.clear()
                    if session_id is not None:
                        self._scoped_handlers -= 1

        reg = Registration(handler, priority, session_id, next(self._order), remove, exclude)
        with self._lock:
            self._subscriptions.setdefault(event_type, []).append(reg)
            self._delivery_cache.clear()
            self._solo_cache.clear()
            if session_id is not None:
                self._scoped_handlers += 1
        return reg

    def on(self, event_type: type[E], *, priority: int = 0) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
        """Decorator form of ``subscribe``."""

        def decorate(fn: Callable[[E], Any]) -> Callable[[E], Any]:
            self.subscribe(event_type, fn, priority=priority)
            return fn

        return decorate

    def add_command_middleware(self, middleware: CommandMiddleware) -> Registration:
        """Wrap every ``execute``: ``async def mw(command, call_next) -> CommandResult``.

        Middleware added first is outermost.
        """
        return self._add_middleware(self._command_middleware, middleware)

    def add_event_middleware(self, middleware: EventMiddleware) -> Registration:
        """Wrap every ``publish``: ``async def mw(event, call_next) -> None``."""
        return self._add_middleware(self._event_middleware, middleware)

    def _add_middleware(self, chain: list[Registration], middleware: Callable[..., Any]) -> Registration:
        if not _is_async(middleware):
            raise TypeError("middleware must be an async function: async def mw(message, call_next)")

        def remove(reg: Registration) -> None:
            chain.remove(reg)
            self._route_publish()

        reg = Registration(middleware, 0, None, next(self._order), remove)
        chain.append(reg)
        self._route_publish()
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
        if self._scoped_handlers:
            for session_id in self._session_chain(command.session_id):
                for klass in type(command).__mro__:
                    reg = handlers.get((klass, session_id))  # type: ignore[arg-type]
                    if reg is not None:
                        return reg
        for klass in type(command).__mro__:
            reg = handlers.get((klass, None))  # type: ignore[arg-type]
            if reg is not None:
                return reg
            if klass is Command:
                break
        return None

    async def _execute(self, command: Command) -> CommandResult:
        reg = self._find_command_handler(command)
        if reg is None:
            return CommandResult(
                command_id=command.id,
                command_type=command.type_name,
                session_id=command.session_id,
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
            log.debug("command handler %s failed", _describe(reg.fn), exc_info=True)
            return CommandResult(
                command_id=command.id,
                command_type=command.type_name,
                session_id=command.session_id,
                success=False,
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
        if isinstance(value, CommandResult):
            return value
        return CommandResult(
            command_id=command.id, command_type=command.type_name, session_id=command.session_id, result=value
        )

    # -- events ------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber of its class and base classes.

        A failing subscriber does not stop the others; it produces a
        ``HandlerFailed`` event instead.  (Each bus points its own
        ``publish`` straight at ``_deliver`` while it has no event
        middleware, which saves a frame on the hot path; see ``_route_publish``.)
        """
        if self._event_middleware:
            await self._through_event_middleware(event, 0)
        else:
            await self._deliver(event)

    def _route_publish(self) -> None:
        if self._event_middleware:
            self.publish = self._through_middleware  # type: ignore[method-assign]
        else:
            self.publish = self._deliver  # type: ignore[method-assign]

    async def _through_middleware(self, event: Event) -> None:
        await self._through_event_middleware(event, 0)

    async def _through_event_middleware(self, event: Event, index: int) -> None:
        if index == len(self._event_middleware):
            await self._deliver(event)
            return
        middleware = self._event_middleware[index].fn
        await middleware(event, lambda e: self._through_event_middleware(e, index + 1))

    async def _deliver(self, event: Event) -> None:
        # The hot path, kept flat on purpose (benchmarks/bench_bus.py).
        solo = self._solo_cache.get(event.__class__)
        if solo is not None:
            try:
                await solo(event)
            except Exception as exc:
                await self._handler_failed(solo, event, exc)
            return
        deliveries = self._delivery_cache.get(event.__class__)
        if deliveries is None:
            deliveries = self._subscribers(event.__class__)
        chain: tuple[str | None, ...] | None = None
        for fn, is_async, scope in deliveries:
            if scope is not None:
                if chain is None:
                    chain = self._session_chain(event.session_id)
                if scope not in chain:
                    continue
            try:
                if is_async:
                    await fn(event)
                else:
                    value = fn(event)
                    if value is not None and inspect.isawaitable(value):
                        await value
            except Exception as exc:
                await self._handler_failed(fn, event, exc)

    def _subscribers(self, event_type: type[Event]) -> tuple[_Delivery, ...]:
        with self._lock:
            found = [
                reg
                for klass in event_type.__mro__
                for reg in self._subscriptions.get(klass, ())  # type: ignore[call-overload]
                if not (reg.exclude and issubclass(event_type, reg.exclude))
            ]
            found.sort(key=lambda r: (-r.priority, r.order))
            deliveries = tuple((reg.fn, reg.is_async, reg.session_id) for reg in found)
            self._delivery_cache[event_type] = deliveries
            if len(deliveries) == 1 and deliveries[0][1] and deliveries[0][2] is None:
                self._solo_cache[event_type] = deliveries[0][0]
            return deliveries

    def has_subscribers(self, event_type: type[Event]) -> bool:
        """Whether an event of this class would reach anyone (a session's subscribers count).

        For publishers of many small events: skip building them when nobody listens.
        (A model call asks once, when it starts: a subscriber added during the
        call gets deltas from the next call on.)
        """
        if self._event_middleware:
            return True  # middleware sees every event
        deliveries = self._delivery_cache.get(event_type)
        if deliveries is None:
            deliveries = self._subscribers(event_type)
        return bool(deliveries)

    async def _handler_failed(self, handler: Callable[..., Any], event: Event, exc: Exception) -> None:
        name = _describe(handler)
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
                traceback=traceback.format_exc(),
            )
        )

    # -- sessions ------------------------------------------------------------

    def session(self, name: str | None = None, *, session_id: str | None = None) -> Session:
        """A scope: ``async with bus.session() as s`` or ``with bus.session() as s``."""
        return Session(self, name=name, session_id=session_id)

    def _session_chain(self, session_id: str | None) -> tuple[str | None, ...]:
        chain: list[str | None] = []
        while session_id is not None and session_id not in chain:
            chain.append(session_id)
            session_id = self._session_parents.get(session_id)
        return tuple(chain)

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
        """Stop the background loop, if one was started."""
        if self._background is not None:
            self._background.stop()
            self._background = None


class Session:
    """A scope on a bus.

    Messages created inside carry the session's id (through a ContextVar, so
    concurrent tasks keep their own); handlers registered through the session
    see only messages of this session and of sessions nested in it, and are
    removed when it closes.  Start and end are published as events.
    """

    def __init__(self, bus: MessageBus, *, name: str | None = None, session_id: str | None = None) -> None:
        self.bus = bus
        self.name = name
        self.id = session_id or Message().id
        self.parent_id: str | None = None
        self._registrations: list[Registration] = []
        self._token: Token[str | None] | None = None

    # handlers scoped to this session

    def register_command_handler(self, command_type: type[C], handler: Callable[[C], Any]) -> Registration:
        reg = self.bus.register_command_handler(command_type, handler, session_id=self.id)
        self._registrations.append(reg)
        return reg

    def subscribe(
        self, event_type: type[E], handler: Callable[[E], Any], *, priority: int = 0,
        exclude: tuple[type[Event], ...] = (),
    ) -> Registration:
        reg = self.bus.subscribe(event_type, handler, priority=priority, session_id=self.id, exclude=exclude)
        self._registrations.append(reg)
        return reg

    async def execute(self, command: Command) -> CommandResult:
        return await self.bus.execute(command)

    async def publish(self, event: Event) -> None:
        await self.bus.publish(event)

    # entering and leaving

    def _open(self) -> SessionStarted:
        self.parent_id = _current_session.get()
        self.bus._session_parents[self.id] = self.parent_id
        self._token = _current_session.set(self.id)
        return SessionStarted(session_id=self.id, name=self.name, parent_id=self.parent_id)

    def _close(self) -> None:
        for reg in self._registrations:
            reg.unregister()
        self._registrations.clear()
        self.bus._session_parents.pop(self.id, None)
        if self._token is not None:
            try:
                _current_session.reset(self._token)
            except ValueError:
                # Closed from another context (e.g. another task); just clear ours.
                _current_session.set(self.parent_id)
            self._token = None

    async def __aenter__(self) -> Session:
        await self.bus.publish(self._open())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.bus.publish(SessionEnded(session_id=self.id, name=self.name))
        finally:
            self._close()

    def __enter__(self) -> Session:
        self.bus.publish_sync(self._open())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.bus.publish_sync(SessionEnded(session_id=self.id, name=self.name))
        finally:
            self._close()

    def __repr__(self) -> str:
        return f"<Session {self.name or ''} id={self.id}>"


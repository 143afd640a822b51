"""Sessions: a scope on a bus for messages and handlers (``bus.session()``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import Any, Protocol, TypeVar

from .messages import Command, CommandResult, Event, Message, SessionEnded, SessionStarted, _current_session
from .registration import Registration

__all__ = ["Session", "SessionHost"]

C = TypeVar("C", bound=Command)
E = TypeVar("E", bound=Event)


class SessionHost(Protocol):
    """What a session needs from its bus (``MessageBus`` is one; named here so neither module imports the other)."""

    def register_command_handler(self, command_type: type[C], handler: Callable[[C], Any], *, session_id: str | None = ...) -> Registration: ...

    def subscribe(
        self, event_type: type[E], handler: Callable[[E], Any], *, priority: int = ..., session_id: str | None = ...,
        exclude: tuple[type[Event], ...] = ..., inline: bool = ...,
    ) -> Registration: ...

    def execute(self, command: Command) -> Awaitable[CommandResult]: ...

    def publish(self, event: Event) -> Awaitable[None]: ...

    def publish_sync(self, event: Event, timeout: float | None = ...) -> None: ...

    def _session_opened(self, session_id: str, parent_id: str | None) -> None: ...

    def _session_closed(self, session_id: str) -> None: ...


class Session:
    """A scope on a bus.

    Messages created inside carry the session's id (through a ContextVar, so
    concurrent tasks keep their own); handlers registered through the session
    see only messages of this session and of sessions nested in it, and are
    removed when it closes.  Start and end are published as events.
    """

    def __init__(self, bus: SessionHost, *, name: str | None = None, session_id: str | None = None) -> None:
        self.bus = bus
        self.name = name
        self.id = session_id or Message().id
        self.parent_id: str | None = None
        self._registrations: list[Registration] = []
        self._token: Token[str | None] | None = None

    # handlers scoped to this session

    def _keep(self, reg: Registration) -> Registration:
        # A re-run cell replaces its registration: forget the ones replaced, so the list stays short.
        self._registrations = [r for r in self._registrations if r.active]
        self._registrations.append(reg)
        return reg

    def register_command_handler(self, command_type: type[C], handler: Callable[[C], Any]) -> Registration:
        return self._keep(self.bus.register_command_handler(command_type, handler, session_id=self.id))

    def subscribe(
        self,
        event_type: type[E],
        handler: Callable[[E], Any],
        *,
        priority: int = 0,
        exclude: tuple[type[Event], ...] = (),
        inline: bool = False,
    ) -> Registration:
        return self._keep(
            self.bus.subscribe(event_type, handler, priority=priority, session_id=self.id, exclude=exclude, inline=inline)
        )

    async def execute(self, command: Command) -> CommandResult:
        return await self.bus.execute(command)

    async def publish(self, event: Event) -> None:
        await self.bus.publish(event)

    # entering and leaving

    def _open(self) -> SessionStarted:
        self.parent_id = _current_session.get()
        self.bus._session_opened(self.id, self.parent_id)
        self._token = _current_session.set(self.id)
        return SessionStarted(session_id=self.id, name=self.name, parent_id=self.parent_id)

    def _close(self) -> None:
        for reg in self._registrations:
            reg.unregister()
        self._registrations.clear()
        self.bus._session_closed(self.id)
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

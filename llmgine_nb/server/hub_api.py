"""What the routes and the terminal client need of a hub: the interface a remote hub also offers.

``SessionHub`` (``hub.py``) runs the engines in this process.  A hub that
runs them elsewhere (e.g. behind Redis) offers the same methods, and
``create_app(..., hub_factory=...)`` puts it behind the same routes:

    app = create_app(store, hub_factory=lambda store: MyHub(store))

Errors a request should answer are ``HubError`` (its ``status`` is the HTTP
status, its text the sentence the client sees).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..store import SessionRecord, Store

__all__ = ["Hub", "EventStreams", "HubError", "TurnRunning", "NotPending", "StaleDecision"]


class HubError(Exception):
    """A request the hub cannot carry out; the message says what to do instead."""

    status = 400


class TurnRunning(HubError):
    status = 409


class NotPending(HubError):
    status = 404


class StaleDecision(HubError):
    """The decision was made on other arguments than the call has: refused, the call stays pending."""

    status = 409


class EventStreams(Protocol):
    """Each session's numbered events (see ``stream.py`` for the contract)."""

    def subscribe(self, session_id: str) -> asyncio.Queue[str]: ...
    def unsubscribe(self, session_id: str, queue: asyncio.Queue[str]) -> None: ...
    def replay(self, session_id: str, after: int = 0, limit: int | None = None) -> list[tuple[int, str]]: ...
    def last_seq(self, session_id: str) -> int: ...


class Hub(Protocol):
    """Sessions, their turns and their approvals, as the front ends drive them."""

    @property
    def store(self) -> Store: ...
    @property
    def streams(self) -> EventStreams: ...

    async def open(self, session_id: str) -> Any: ...
    async def create_session(self, name: str | None = None, model: str | None = None) -> SessionRecord: ...
    async def fork(self, session_id: str, at_message_id: str | None = None,
                   name: str | None = None) -> SessionRecord: ...
    async def close_session(self, session_id: str) -> None: ...
    async def delete_session(self, session_id: str) -> None: ...
    def running(self, session_id: str) -> bool: ...
    def running_sessions(self) -> list[str]: ...
    async def send(self, session_id: str, text: str, model: str | None = None) -> str: ...
    async def retry(self, session_id: str) -> str: ...
    async def cancel(self, session_id: str) -> bool: ...
    async def switch_model(self, session_id: str, model: str) -> str: ...
    def pending(self, session_id: str) -> list[dict[str, Any]]: ...
    async def decide(self, session_id: str, call_id: str, decision: str, *, message: str | None = None,
                     arguments: dict[str, Any] | None = None, decided_by: str = "user",
                     args_hash: str | None = None) -> None: ...
    async def answer(self, session_id: str, question_id: str, answer: Any, *, decided_by: str = "user") -> None: ...
    async def close(self) -> None: ...

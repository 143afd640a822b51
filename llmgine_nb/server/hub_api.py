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

from ..engine.commands import RetryTurn, SendMessage

if TYPE_CHECKING:
    from ..messages import CommandResult
    from ..store import SessionRecord, Store

__all__ = [
    "Hub", "EventStreams", "HubError", "TurnRunning", "NotPending", "StaleDecision", "BadInput", "NoWorker",
    "HubCommon", "forget_when_done",
    "sentence", "refusal",
]


class HubError(Exception):
    """A request the hub cannot carry out; the message says what to do instead."""

    status = 400


class TurnRunning(HubError):
    status = 409


class NoWorker(HubError):
    """No engine worker took the command in time (``serve --redis``): 504, as a gateway whose upstream
    did not answer.  The command stays queued and is carried out when a worker takes it, so this is
    no invitation to send it again (no ``Retry-After``): a resent message would be a second turn."""

    status = 504


class NotPending(HubError):
    status = 404


class StaleDecision(HubError):
    """The decision was made on other arguments than the call has: refused, the call stays pending."""

    status = 409


class BadInput(HubError):
    """The turn cannot start from what was sent (an empty message, nothing to retry, a bad image)."""

    status = 400


def sentence(error: str | None) -> str | None:
    """An engine's error as a sentence for a client: no ``Type:`` head, a capital, a full stop."""
    if not error:
        return None
    # CommandResult.error is "<Type>: message" for handler exceptions; keep the message.
    head, sep, rest = error.partition(": ")
    text = (rest if sep and head.isidentifier() else error).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


_NOT_WAITING = " It may have been decided already or have expired; the session's /pending lists what waits."


def refusal(command: str, result: CommandResult, default: str) -> HubError:
    """The ``HubError`` a client gets when the engine refused ``command``
    (``"decide"``, ``"answer"`` or ``"switch"``): the same sentence and status from every hub."""
    said = sentence(result.error)
    if command == "decide" and (result.error or "").startswith("ArgumentsMismatch:"):
        return StaleDecision(said or default)
    if command in ("decide", "answer"):
        return NotPending((said or default) + _NOT_WAITING)
    return HubError(said or default)


def forget_when_done(turns: dict[str, Any], session_id: str, turn: asyncio.Future[Any]) -> None:
    """Take ``turn`` out of ``turns`` once it ends, unless a newer turn of the session took its place.

    A hub's ``turns`` then holds running turns only, so a send's count of its
    user's running turns (the 429 limit) walks those, not every session that
    ever ran one.
    """

    def done(_: asyncio.Future[Any]) -> None:
        if turns.get(session_id) is turn:
            del turns[session_id]

    turn.add_done_callback(done)


class HubCommon:
    """What every hub does the same way: ``send`` and ``retry`` (open the session, refuse while
    a turn runs, start the turn) and where a fork is cut.

    A hub says how a turn starts (``_start``), whether one runs (``running``),
    how a session opens (``open``) and where its sessions are stored (``store``).
    """

    store: Store

    def running(self, session_id: str) -> bool:
        raise NotImplementedError

    async def open(self, session_id: str) -> Any:
        raise NotImplementedError

    async def _start(self, session_id: str, command: SendMessage | RetryTurn) -> str:
        raise NotImplementedError

    def _refuse_while_running(self, session_id: str, what: str) -> None:
        if self.running(session_id):
            raise TurnRunning(f"A turn is running in this session; wait for it to end or stop it before you {what}.")

    async def send(self, session_id: str, text: str, model: str | None = None) -> str:
        """Start a turn and return its id as soon as it has started (the turn runs on)."""
        await self.open(session_id)
        return await self._start(session_id, SendMessage(session_id=session_id, text=text, model=model))

    async def retry(self, session_id: str) -> str:
        """Run the last user message again, after a failed or cancelled turn."""
        await self.open(session_id)
        return await self._start(session_id, RetryTurn(session_id=session_id))

    def _fork_point(self, session_id: str, at_message_id: str | None) -> str:
        """The message a fork of the session ends at (default: its last); refused while a turn runs."""
        self._refuse_while_running(session_id, "fork it")
        messages = self.store.messages(session_id)
        at = at_message_id or (messages[-1].id if messages else None)
        if at is None:
            raise HubError("This session has no messages yet, so there is nothing to fork; send a message first.")
        return at


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


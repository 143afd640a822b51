"""A hub with no engines of its own: the server's (and terminal client's) sessions run on workers.

    app = create_app(store, hub_factory=lambda store: RemoteHub(store, transport))   # llmgine-nb serve --redis

It offers what the routes need of a hub (``server.hub_api.Hub``): each action
is the engine's command sent through a ``RedisTransport`` to whichever worker
holds the session; each session's events come from its event stream in Redis
(numbered by the worker, stored first, so replay reads the shared store).
What waits for a decision is kept from the events the hub has seen
(``ApprovalRequested`` until ``ApprovalDecided``/``ApprovalExpired``, the
questions likewise), followed for every session with a turn started here or
watched by a client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from ..engine import CancelTurn, DecideApproval, SendMessage, SwitchModel
from ..engine.commands import AnswerQuestion, RetryTurn
from ..engine.events import TurnStarted
from ..messages import Command, CommandResult, message_type_name
from ..server.hub_api import HubCommon, HubError, NoWorker, forget_when_done, refusal
from ..server.stream import OVERFLOW, wire_text
from ..store import SessionRecord, Store
from ..store.streams import last_seq, numbered_events
from .redis_transport import RedisTransport, connect_redis, retrying, stop_task

__all__ = ["RemoteHub", "RemoteStreams", "remote_hub_factory"]

log = logging.getLogger("llmgine_nb.distributed.remote_hub")

_ENDS = (".TurnFinished", ".TurnFailed", ".TurnCancelled")
_ASKED = (".ApprovalRequested", ".ConfirmationRequested", ".ChoiceRequested")
_TURN_STARTED = message_type_name(TurnStarted)
_SETTLED = (".ApprovalDecided", ".ApprovalExpired", ".QuestionAnswered", ".QuestionExpired")


class RemoteStreams:
    """``EventStreams`` over Redis: a subscriber's queue is fed from the session's event stream."""

    def __init__(self, store: Store, transport: RedisTransport) -> None:
        self.store = store
        self.transport = transport
        self._feeds: dict[int, asyncio.Task[None]] = {}

    def subscribe(self, session_id: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        after = last_seq(self.store, session_id)  # the caller replays up to here from the store
        self._feeds[id(queue)] = asyncio.ensure_future(self._feed(session_id, after, queue))
        return queue

    async def _feed(self, session_id: str, after: int, queue: asyncio.Queue[str]) -> None:
        try:
            async for _seq, text in self.transport.follow(session_id, after=after):
                queue.put_nowait(text)
        except Exception:
            log.exception("following session %s failed; its watcher reconnects", session_id)
            queue.put_nowait(OVERFLOW)

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[str]) -> None:
        feed = self._feeds.pop(id(queue), None)
        if feed is not None:
            asyncio.ensure_future(stop_task(feed))

    def replay(self, session_id: str, after: int = 0, limit: int | None = None) -> list[tuple[int, str]]:
        return [(seq, wire_text(seq, payload))
                for seq, payload in numbered_events(self.store, session_id, after=after, limit=limit)]

    def last_seq(self, session_id: str) -> int:
        return last_seq(self.store, session_id)

    async def close(self) -> None:
        for feed in list(self._feeds.values()):
            await stop_task(feed)
        self._feeds.clear()


class RemoteHub(HubCommon):
    """The ``Hub`` of a front end whose engines run in ``llmgine-nb worker`` processes."""

    def __init__(self, store: Store, transport: RedisTransport, *, model: str | None = None,
                 start_timeout: float = 60.0) -> None:
        self.store = store
        self.transport = transport
        self.model = model
        self.start_timeout = start_timeout
        self.streams = RemoteStreams(store, transport)
        self._turns: dict[str, asyncio.Future[CommandResult]] = {}
        self._pending: dict[str, dict[str, dict[str, Any]]] = {}  # session -> id -> item
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._waiting_start: dict[str, asyncio.Future[str]] = {}

    # -- sessions ---------------------------------------------------------------

    async def open(self, session_id: str) -> SessionRecord:
        return self.store.get_session(session_id)

    async def create_session(self, name: str | None = None, model: str | None = None) -> SessionRecord:
        return self.store.create_session(name, model=model or self.model)

    async def fork(self, session_id: str, at_message_id: str | None = None, name: str | None = None) -> SessionRecord:
        return self.store.fork_session(session_id, self._fork_point(session_id, at_message_id), name=name)

    async def close_session(self, session_id: str) -> None:
        await stop_task(self._watchers.pop(session_id, None))
        self._pending.pop(session_id, None)

    async def delete_session(self, session_id: str) -> None:
        self._refuse_while_running(session_id, "delete it")
        await self.close_session(session_id)
        self.store.delete_session(session_id)
        # Its event stream in Redis goes with it (the store's log, the durable record, is gone too).
        stream = self.transport.keys.events(session_id)
        await retrying(f"delete the event stream of session {session_id}", lambda: self.transport.redis.delete(stream),
                       patience_s=self.start_timeout)

    # -- turns ---------------------------------------------------------------------

    def running(self, session_id: str) -> bool:
        turn = self._turns.get(session_id)
        return turn is not None and not turn.done()

    def running_sessions(self) -> list[str]:
        return [session_id for session_id in self._turns if self.running(session_id)]

    async def _start(self, session_id: str, command: SendMessage | RetryTurn) -> str:
        """Send the turn; its id once a worker has started it (the turn runs on)."""
        self._refuse_while_running(session_id, "send another message")
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._watch(session_id, last_seq(self.store, session_id), started)
        result = await self.transport.submit(command)
        self._turns[session_id] = result
        forget_when_done(self._turns, session_id, result)
        either: set[asyncio.Future[Any]] = {started, result}
        await asyncio.wait(either, timeout=self.start_timeout, return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            return started.result()
        if result.done() and not result.result().success:
            raise HubError(result.result().error or "The turn could not start.")
        # The command stays queued: a worker that starts later runs it (the 504 does not take it back).
        raise NoWorker(f"No engine worker started the turn within {self.start_timeout:g} s; it stays queued and "
                       "runs when one does, so do not send it again. Check that llmgine-nb worker is running "
                       "against this Redis.")

    def _watch(self, session_id: str, after: int, started: asyncio.Future[str] | None = None) -> None:
        """Follow the session's events (what waits for a decision, when its turn starts)."""
        watcher = self._watchers.get(session_id)
        if watcher is None or watcher.done():
            self._watchers[session_id] = asyncio.ensure_future(self._follow(session_id, after, started))
        elif started is not None:
            self._waiting_start[session_id] = started

    async def _follow(self, session_id: str, after: int, started: asyncio.Future[str] | None) -> None:
        if started is not None:
            self._waiting_start[session_id] = started
        pending = self._pending.setdefault(session_id, {})
        async for _seq, text in self.transport.follow(session_id, after=after):
            event = json.loads(text)
            kind = event.get("type", "")
            if kind.endswith((".TurnStarted", *_ENDS)):
                waiting = self._waiting_start.pop(session_id, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(event.get("turn_id", ""))
            _fold(pending, kind, event)

    async def cancel(self, session_id: str) -> bool:
        await self.open(session_id)
        return bool((await self._send(CancelTurn(session_id=session_id, reason="stopped by the user"))).result)

    async def switch_model(self, session_id: str, model: str) -> str:
        await self.open(session_id)
        result = await self._send(SwitchModel(session_id=session_id, model=model))
        if not result.success:
            raise refusal("switch", result, f"Cannot switch to {model!r}.")
        return str(result.result)

    async def _send(self, command: Command) -> CommandResult:
        try:
            return await self.transport.send(command, timeout=self.start_timeout)
        except asyncio.TimeoutError:
            raise NoWorker(f"No engine worker answered within {self.start_timeout:g} s; the request stays queued "
                           "and is carried out when one does. Check that llmgine-nb worker is running against "
                           "this Redis.") from None

    # -- approvals and questions --------------------------------------------------------

    def pending(self, session_id: str) -> list[dict[str, Any]]:
        if session_id not in self._watchers:
            # Not followed yet (e.g. this front end restarted): what its last turn asked and nobody
            # settled is read from the store's log first, then the stream keeps it up to date.
            after = last_seq(self.store, session_id)
            self._pending[session_id] = _pending_in_store(self.store, session_id, after)
            self._watch(session_id, after)
        return list(self._pending.get(session_id, {}).values())

    async def decide(
        self, session_id: str, call_id: str, decision: str, *, message: str | None = None,
        arguments: dict[str, Any] | None = None, decided_by: str = "user", args_hash: str | None = None,
    ) -> None:
        result = await self._send(DecideApproval(session_id=session_id, call_id=call_id, decision=decision,
                                                 message=message, arguments=arguments, decided_by=decided_by,
                                                 args_hash=args_hash))
        if not result.success:
            raise refusal("decide", result, "That approval could not be decided.")

    async def answer(self, session_id: str, question_id: str, answer: Any, *, decided_by: str = "user") -> None:
        result = await self._send(AnswerQuestion(session_id=session_id, question_id=question_id, answer=answer,
                                                 decided_by=decided_by))
        if not result.success:
            raise refusal("answer", result, "That question could not be answered.")

    async def close(self) -> None:
        for session_id in list(self._watchers):
            await self.close_session(session_id)
        await self.streams.close()
        await self.transport.close()


def _fold(pending: dict[str, dict[str, Any]], kind: str, event: dict[str, Any]) -> None:
    """Bring ``pending`` up to date with one event (asked, settled, or its turn ended)."""
    if kind.endswith(_ASKED):
        item = _pending_item(kind, event)
        pending[item["id"]] = item
    elif kind.endswith(_SETTLED):
        pending.pop(event.get("question_id") or event.get("call_id") or "", None)
    elif kind.endswith(_ENDS):
        pending.clear()


def _pending_in_store(store: Store, session_id: str, upto: int) -> dict[str, dict[str, Any]]:
    """What the session's last turn asked and nobody settled, from the store's event log (up to ``upto``)."""
    rows = store.database.read("SELECT max(seq) FROM events WHERE session_id = ? AND type = ?",
                               (session_id, _TURN_STARTED))
    started = rows[0][0] if rows else None
    pending: dict[str, dict[str, Any]] = {}
    if started is None:
        return pending
    for seq, payload in numbered_events(store, session_id, after=int(started) - 1):
        if seq > upto:
            break
        event = json.loads(payload)
        _fold(pending, event.get("type", ""), event)
    return pending


def _pending_item(kind: str, event: dict[str, Any]) -> dict[str, Any]:
    """The item ``pending()`` lists, from the event that asked (the shape of ``server.pending``)."""
    turn_id = (event.get("metadata") or {}).get("turn_id")
    if kind.endswith(".ApprovalRequested"):
        return {"kind": "approval", "id": event["call_id"], "call_id": event["call_id"],
                "display_id": event.get("display_id") or None, "args_hash": event.get("args_hash") or None,
                "tool_name": event.get("tool_name"), "arguments": event.get("arguments"), "risk": event.get("risk"),
                "reason": event.get("reason"), "preview": event.get("preview"),
                "allow_always": event.get("allow_always", True), "turn_id": turn_id}
    return {"kind": "choice" if kind.endswith(".ChoiceRequested") else "confirm", "id": event["question_id"],
            "call_id": event.get("call_id"), "tool_name": event.get("tool_name"),
            "display_id": event.get("display_id") or None, "question": event.get("question"),
            "options": list(event.get("options") or []), "turn_id": turn_id}



def remote_hub_factory(url: str, *, prefix: str = "llmgine", model: str | None = None) -> Callable[[Store], RemoteHub]:
    """For ``create_app(store, hub_factory=...)``: a ``RemoteHub`` on the Redis at ``url``."""

    def make(store: Store) -> RemoteHub:
        return RemoteHub(store, RedisTransport(connect_redis(url), keys=None, store=store, prefix=prefix), model=model)

    return make

"""A worker's sessions' numbered events, to each session's event stream in Redis.

``SessionStreams`` numbers each event and writes it to the store before it
hands it out; the forwarder takes the numbered texts of each session it
follows and adds them to ``events:<session>``, in order, trimmed to about
``kept`` entries (the store is the durable record: a follower that falls
further behind fills the gap from the store).  A stream nobody adds to for
``idle_ttl_s`` expires (the session's next event starts it again; followers
dedupe by ``seq`` and fill any gap from the store), and deleting a session
deletes its stream (``RemoteHub.delete_session``).  Redis unavailable: the batch
waits and goes when it is back.

One sender writes what every session has waiting in one pipeline: a worker
running many turns at once would otherwise make a round trip to Redis per
event (most of its Redis traffic, and a good part of its CPU: each send is
a system call, and Redis wakes for each).  Each session's events keep their
order: they wait in one list, in the order they came.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

from .keys import Keys
from .redis_transport import retrying, stop_task
from .transport import wire_seq

if TYPE_CHECKING:
    from ..server.stream import SessionStreams

__all__ = ["EventForwarder"]

log = logging.getLogger("llmgine_nb.distributed.forwarder")

#: Events written in one pipeline at most.
BATCH = 500

#: Seconds an event stream lives after its last event (a day: clients reconnect well within it).
IDLE_TTL_S = 24 * 3600


class EventForwarder:
    def __init__(self, redis: Any, keys: Keys, streams: SessionStreams, kept: int = 1000,
                 idle_ttl_s: int = IDLE_TTL_S) -> None:
        self.redis = redis
        self.idle_ttl_s = idle_ttl_s
        self.keys = keys
        self.streams = streams
        self.kept = kept
        self._followed: dict[str, tuple[asyncio.Queue[str], asyncio.Task[None]]] = {}
        self._outbox: list[tuple[str, int, str]] = []  # (session, number, text) of every session, as they came
        self._unsent: dict[str, int] = {}  # session -> its events in the outbox or being sent
        self._waiting = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.forwarded = 0

    def follow(self, session_id: str) -> None:
        if session_id in self._followed:
            return
        queue = self.streams.subscribe(session_id)
        task = asyncio.ensure_future(self._forward(session_id, queue))
        self._followed[session_id] = (queue, task)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_forever())

    async def unfollow(self, session_id: str) -> None:
        followed = self._followed.pop(session_id, None)
        if followed is None:
            return
        queue, task = followed
        self.streams.unsubscribe(session_id, queue)
        await self._drain(session_id, queue, task)

    async def _drain(self, session_id: str, queue: asyncio.Queue[str], task: asyncio.Task[None]) -> None:
        while not queue.empty() and not task.done():
            await asyncio.sleep(0.01)
        await stop_task(task)
        while self._unsent.get(session_id) and self._sender is not None and not self._sender.done():
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.streams.flush()
        for session_id in list(self._followed):
            await self.unfollow(session_id)
        await stop_task(self._sender)

    async def _forward(self, session_id: str, queue: asyncio.Queue[str]) -> None:
        """Move the session's numbered texts to the outbox, as they come."""
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            numbered = [(wire_seq(text), text) for text in batch]
            entries = [(session_id, seq, text) for seq, text in numbered if seq >= 0]
            if len(entries) < len(batch):
                # SessionStreams' mark: the session was closed here, or this forwarder fell far behind
                # (then followers fill the gap from the store).
                log.info("session %s: its event stream on this worker ended or overflowed", session_id)
            if entries:
                self._outbox.extend(entries)
                self._unsent[session_id] = self._unsent.get(session_id, 0) + len(entries)
                self._waiting.set()

    async def _send_forever(self) -> None:
        """Write what waits, every session's at once; what comes meanwhile goes with the next pipeline."""
        while True:
            await self._waiting.wait()
            batch, self._outbox = self._outbox[:BATCH], self._outbox[BATCH:]
            if not self._outbox:
                self._waiting.clear()
            await retrying("forward the sessions' events", functools.partial(self._add, batch), patience_s=3600)
            self.forwarded += len(batch)
            for session_id, _seq, _text in batch:
                left = self._unsent[session_id] - 1
                if left:
                    self._unsent[session_id] = left
                else:
                    del self._unsent[session_id]

    async def _add(self, entries: list[tuple[str, int, str]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id, seq, text in entries:
                pipe.xadd(self.keys.events(session_id), {"seq": seq, "event": text}, maxlen=self.kept,
                          approximate=True)
            for session_id in {session_id for session_id, _seq, _text in entries}:
                pipe.expire(self.keys.events(session_id), self.idle_ttl_s)
            await pipe.execute()

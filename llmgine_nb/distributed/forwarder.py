"""A worker's sessions' numbered events, to each session's event stream in Redis.

``SessionStreams`` numbers each event and writes it to the store before it
hands it out; the forwarder takes the numbered texts of each session it
follows and adds them to ``events:<session>`` in batches, in order, trimmed to
about ``kept`` entries (the store is the durable record: a follower that falls
further behind fills the gap from the store).  A stream nobody adds to for
``idle_ttl_s`` expires (the session's next event starts it again; followers
dedupe by ``seq`` and fill any gap from the store), and deleting a session
deletes its stream (``RemoteHub.delete_session``).  Redis unavailable: the batch
waits and goes when it is back.
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

BATCH = 200

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
        self.forwarded = 0

    def follow(self, session_id: str) -> None:
        if session_id in self._followed:
            return
        queue = self.streams.subscribe(session_id)
        task = asyncio.ensure_future(self._forward(session_id, queue))
        self._followed[session_id] = (queue, task)

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

    async def close(self) -> None:
        self.streams.flush()
        for session_id in list(self._followed):
            await self.unfollow(session_id)

    async def _forward(self, session_id: str, queue: asyncio.Queue[str]) -> None:
        stream = self.keys.events(session_id)
        while True:
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            numbered = [(wire_seq(text), text) for text in batch]
            entries = [(seq, text) for seq, text in numbered if seq >= 0]
            if len(entries) < len(batch):
                # SessionStreams' mark: the session was closed here, or this forwarder fell far behind
                # (then followers fill the gap from the store).
                log.info("session %s: its event stream on this worker ended or overflowed", session_id)
            if entries:
                await retrying(f"forward the events of session {session_id}",
                               functools.partial(self._add, stream, entries), patience_s=3600)
                self.forwarded += len(entries)

    async def _add(self, stream: str, entries: list[tuple[int, str]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for seq, text in entries:
                pipe.xadd(stream, {"seq": seq, "event": text}, maxlen=self.kept, approximate=True)
            pipe.expire(stream, self.idle_ttl_s)
            await pipe.execute()

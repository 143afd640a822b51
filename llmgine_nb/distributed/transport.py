"""The transport beneath the bus: how a front end's commands reach an engine and its events come back.

    transport = LocalTransport(hub)                      # the default: engines in this process
    transport = await RedisTransport.connect(url)        # engines in worker processes (redis_transport.py)

    result = await transport.send(SendMessage(session_id=sid, text="hi"))
    async for seq, text in transport.follow(sid, after=0):
        ...                                              # '{"seq": 1, "type": "TurnStarted", ...}'

Both carry the same messages with the same contract: ``send`` returns the
command's ``CommandResult`` (never raises for a handler's error);
``follow`` yields a session's numbered events (the wire texts of
``server.stream``) after ``after``, each number once, in order, with no gap.
The in-process ``MessageBus`` keeps its own semantics underneath either.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from ..messages import Command, CommandResult, Event, Message

if TYPE_CHECKING:
    from ..server.hub import SessionHub

__all__ = ["Transport", "LocalTransport", "event_of"]


class Transport(Protocol):
    async def send(self, command: Command, timeout: float | None = None) -> CommandResult:
        """Run ``command`` on whichever engine owns its session; its result."""

    def follow(self, session_id: str, after: int = 0) -> AsyncIterator[tuple[int, str]]:
        """The session's numbered events after ``after``, as ``(seq, wire text)``, live until closed."""

    async def close(self) -> None:
        """Stop; commands in flight keep running where they run."""


def event_of(text: str) -> Event:
    """The event of a numbered wire text (its ``seq`` removed)."""
    record = json.loads(text)
    record.pop("seq", None)
    return Message.from_record(record)  # type: ignore[return-value]


class LocalTransport:
    """The transport of one process: a ``SessionHub``'s bus, engines and streams."""

    def __init__(self, hub: SessionHub) -> None:
        self.hub = hub

    async def send(self, command: Command, timeout: float | None = None) -> CommandResult:
        if command.session_id:
            await self.hub.open(command.session_id)
        return await asyncio.wait_for(self.hub.bus.execute(command), timeout)

    async def follow(self, session_id: str, after: int = 0) -> AsyncIterator[tuple[int, str]]:
        streams = self.hub.streams
        queue = streams.subscribe(session_id)  # first subscribe, then replay: nothing falls between
        last = after
        try:
            for seq, text in streams.replay(session_id, after=after):
                last = seq
                yield seq, text
            while True:
                text = await queue.get()
                seq = wire_seq(text)
                if seq < 0:  # fell behind (or the session was closed): what was missed is in the store
                    for seq, text in streams.replay(session_id, after=last):
                        last = seq
                        yield seq, text
                elif seq > last:
                    last = seq
                    yield seq, text
        finally:
            streams.unsubscribe(session_id, queue)

    async def close(self) -> None:
        return None


def wire_seq(text: str) -> int:
    """The number of a wire text, which starts ``{"seq": N, ``; -1 for anything else (an overflow mark)."""
    head, comma, _ = text.partition(",")
    if not comma or not head.startswith('{"seq": '):
        return -1
    return int(head[8:])

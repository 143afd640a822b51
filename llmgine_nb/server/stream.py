"""Each session's events, numbered, on disk, then to whoever watches the session.

    streams = SessionStreams(store).attach(bus)
    streams.track(session_id)                  # number this session's events from now on
    queue = streams.subscribe(session_id)      # live: '{"seq": 7, "type": ...}' texts
    streams.replay(session_id, after=4)        # from the store: events 5, 6, 7 ...

The contract a client relies on: every event of a tracked session gets the
next number of that session (1, 2, 3 ... no gaps) when it is written, and
is handed to subscribers only after it is on disk.  A client that saw
number N subscribes, then replays what the store has after N, then takes
live events, skipping any number it has already seen: it misses nothing
and sees nothing twice, across reconnects and server restarts.

Streamed text is part of the contract: text deltas are coalesced (up to
``delta_flush_s`` seconds, and always before the session's next other
event) into one ``LLMTextDelta`` each, so a replay reproduces the same
text.  Tool-call argument deltas are left out: ``ToolCallRequested`` and
``LLMCallFinished`` carry the whole calls.

Everything here runs on the bus's event loop (one thread): numbering,
writing and handing out happen without an ``await`` in between, so a
subscriber can never fall between a replay and the live events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..llm.events import LLMTextDelta, LLMToolCallDelta
from ..messages import Event
from ..secrets import Redactor
from ..store import Fenced
from ..store.streams import append_numbered, last_seq, numbered_events

if TYPE_CHECKING:
    from ..bus import MessageBus, Registration
    from ..store import Store

__all__ = ["SessionStreams", "wire_text", "QUEUE_LIMIT"]

log = logging.getLogger("llmgine_nb.server.stream")

#: Events a subscriber may fall behind by before it is dropped (it reconnects and replays).
QUEUE_LIMIT = 10_000

#: Sentinel put on a subscriber's queue when it fell too far behind.
OVERFLOW = "overflow"


def wire_text(seq: int, payload: str) -> str:
    """The event's JSON with its number first: ``{"seq": 7, "id": ..., "type": ...}``."""
    return f'{{"seq": {seq}, {payload[1:]}' if len(payload) > 2 else f'{{"seq": {seq}}}'


class SessionStreams:
    """Numbers, writes (redacted) and hands out the events of the tracked sessions."""

    def __init__(self, store: Store, redactor: Redactor | None = None, *, delta_flush_s: float = 0.05) -> None:
        self.store = store
        self.redactor = redactor if redactor is not None else Redactor()
        self.delta_flush_s = delta_flush_s
        self._last: dict[str, int] = {}  # tracked session -> last number written
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = {}
        self._pending: list[tuple[str, Event]] = []
        self._deltas: dict[str, list[LLMTextDelta]] = {}
        self._write_scheduled = False
        self._delta_timer: asyncio.TimerHandle | None = None
        self._registration: Registration | None = None
        self.failed_writes = 0
        self.fenced_writes = 0  # sessions' events refused because a newer holder writes them (engine workers)

    def attach(self, bus: MessageBus, *, priority: int = 50) -> SessionStreams:
        # Below the engine's journal (100): the history is written before the event is shown.
        self._registration = bus.subscribe(Event, self._on_event, priority=priority, exclude=(LLMToolCallDelta,), inline=True)  # loop-bound queues and timers
        return self

    def detach(self) -> None:
        self.flush()
        if self._registration is not None:
            self._registration.unregister()
            self._registration = None

    # -- which sessions ------------------------------------------------------

    def track(self, session_id: str) -> None:
        if session_id not in self._last:
            self._last[session_id] = last_seq(self.store, session_id)

    def untrack(self, session_id: str) -> None:
        self._last.pop(session_id, None)
        self._deltas.pop(session_id, None)
        for queue in self._subscribers.pop(session_id, set()):
            queue.put_nowait(OVERFLOW)

    def last_seq(self, session_id: str) -> int:
        return self._last.get(session_id) or last_seq(self.store, session_id)

    # -- watching ------------------------------------------------------------

    def subscribe(self, session_id: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers.setdefault(session_id, set()).add(queue)
        return queue

    def watched(self, session_id: str) -> bool:
        return bool(self._subscribers.get(session_id))

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[str]) -> None:
        queues = self._subscribers.get(session_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[session_id]

    def replay(self, session_id: str, after: int = 0, limit: int | None = None) -> list[tuple[int, str]]:
        """``(seq, wire text)`` of the stored events after ``after``."""
        return [(seq, wire_text(seq, payload)) for seq, payload in numbered_events(
            self.store, session_id, after=after, limit=limit)]

    # -- the subscriber --------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        session_id = event.session_id
        if session_id is None or session_id not in self._last:
            return
        if isinstance(event, LLMTextDelta):
            self._deltas.setdefault(session_id, []).append(event)
            if self._delta_timer is None:
                self._delta_timer = asyncio.get_running_loop().call_later(self.delta_flush_s, self._flush_deltas)
            return
        self._take_deltas(session_id)  # the text streamed so far comes before this event
        self._pending.append((session_id, event))
        if not self._write_scheduled:
            self._write_scheduled = True
            asyncio.get_running_loop().call_soon(self._write)

    def _take_deltas(self, session_id: str) -> None:
        deltas = self._deltas.pop(session_id, None)
        if not deltas:
            return
        # Consecutive deltas of one model call become one delta with their text joined.
        groups: list[list[LLMTextDelta]] = []
        for delta in deltas:
            if groups and groups[-1][0].call_id == delta.call_id:
                groups[-1].append(delta)
            else:
                groups.append([delta])
        for group in groups:
            first = group[0]
            merged = first if len(group) == 1 else first.model_copy(update={"text": "".join(d.text for d in group)})
            self._pending.append((session_id, merged))

    def _flush_deltas(self) -> None:
        self._delta_timer = None
        for session_id in list(self._deltas):
            self._take_deltas(session_id)
        self._write()

    def flush(self) -> None:
        """Write everything waiting now (deltas included)."""
        if self._delta_timer is not None:
            self._delta_timer.cancel()
        self._flush_deltas()

    def _write(self) -> None:
        self._write_scheduled = False
        batch, self._pending = self._pending, []
        rows = []
        for session_id, event in batch:
            last = self._last.get(session_id)
            if last is None:
                continue  # untracked meanwhile (a deleted session)
            self._last[session_id] = last + 1
            _, payload = self.redactor.message_and_json(event)
            rows.append((session_id, last + 1, event, payload))
        if not rows:
            return
        try:
            append_numbered(self.store, rows)
        except Fenced:
            # One session of the batch has a newer holder (an engine worker that lost it): the others'
            # events are still ours to write, each session's on its own.
            rows = self._write_each_session(rows)
        except Exception:
            self._not_written(rows)
            return
        self._hand_out(rows)

    def _write_each_session(self, rows: list[tuple[str, int, Event, str]]) -> list[tuple[str, int, Event, str]]:
        """Write each session's rows in a transaction of its own; the rows written."""
        by_session: dict[str, list[tuple[str, int, Event, str]]] = {}
        for row in rows:
            by_session.setdefault(row[0], []).append(row)
        written = []
        for session_id, session_rows in by_session.items():
            try:
                append_numbered(self.store, session_rows)
            except Fenced as refused:
                self.fenced_writes += 1
                log.warning("%d events of session %s were not written: %s", len(session_rows), session_id, refused)
                self._last[session_id] = last_seq(self.store, session_id)
            except Exception:
                self._not_written(session_rows)
            else:
                written += session_rows
        return written

    def _not_written(self, rows: list[tuple[str, int, Event, str]]) -> None:
        # Nothing was written: give the numbers back, so the stream keeps no gap.
        self.failed_writes += 1
        log.error("could not write %d events of the session stream", len(rows), exc_info=True)
        for session_id in {row[0] for row in rows}:
            self._last[session_id] = last_seq(self.store, session_id)

    def _hand_out(self, rows: list[tuple[str, int, Event, str]]) -> None:
        for session_id, seq, _, payload in rows:
            queues = self._subscribers.get(session_id)
            if not queues:
                continue
            text = wire_text(seq, payload)
            for queue in list(queues):
                if queue.qsize() >= QUEUE_LIMIT:
                    queues.discard(queue)
                    queue.put_nowait(OVERFLOW)
                else:
                    queue.put_nowait(text)

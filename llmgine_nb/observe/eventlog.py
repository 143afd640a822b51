"""The event log: every event on the bus, redacted, in the store.

    log = EventLogObserver(store).attach(bus)
    ...
    log.flush()                      # everything seen so far is on disk
    store.events(session_id)         # read back as typed events
    log.detach()

The observer's subscriber only appends the event to a buffer; a writer
thread redacts and writes the buffer in batches, so a turn never waits for
the disk (a batch goes in short transactions of at most
``ROWS_PER_TRANSACTION`` events: the engine's own writes wait for them).  A batch is written within
``flush_interval`` seconds of its first event, when ``batch_size`` events are waiting, and
at once after the events in ``flush_on``: a turn failing or cancelled,
approval asked for (the user may walk away), a session ending, a subscriber
failing.  A turn that ends well does not force a write of its own: waking
the writer after every turn costs the next turn more (the two threads hand
the interpreter lock back and forth) than the few hundred milliseconds of
log it would save if the process were killed.  Pass
``flush_on=FLUSH_ON + (TurnFinished,)`` to have it anyway; ``flush()``
writes everything at once, and the buffer is written when the interpreter
exits normally.

An event without a session (the model layer does not always know it) is
stored under the session of the turn it was published in, when its
``metadata["turn_id"]`` names a turn seen starting.

Streamed text and tool-call deltas are many and small, and the finished
call carries the whole text and tool calls, so they are not logged unless
``log_deltas=True`` (read by ``attach()``: the log then does not subscribe
to them at all, and a model call with no other listener skips making them).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

from ..engine.events import TurnCancelled, TurnFailed
from ..llm.events import LLMTextDelta, LLMToolCallDelta
from ..messages import Event, HandlerFailed, Message, SessionEnded
from ..tools.events import ApprovalRequested
from .attaching import Subscriptions
from .correlate import TurnIndex
from .redact import Redactor

if TYPE_CHECKING:
    from ..bus import MessageBus
    from ..store import Store

__all__ = ["EventLogObserver", "DELTA_EVENTS", "FLUSH_ON"]

log = logging.getLogger("llmgine_nb.observe.eventlog")

#: Event classes left out of the log unless ``log_deltas=True``.
DELTA_EVENTS: tuple[type[Event], ...] = (LLMTextDelta, LLMToolCallDelta)

#: The most events written in one store transaction (a long one would stall the engine's writes).
ROWS_PER_TRANSACTION = 32

#: Event classes after which the buffer is written straight away (see the module docstring).
FLUSH_ON: tuple[type[Event], ...] = (
    TurnFailed,
    TurnCancelled,
    ApprovalRequested,
    SessionEnded,
    HandlerFailed,
)


class EventLogObserver(Subscriptions):
    """Writes every event published on a bus into the store's event log, redacted.

    ``redactor`` defaults to a ``Redactor()`` reading the environment.
    ``background=False`` writes in the subscriber itself (at the same
    moments the writer thread would), for code that must not start threads.
    """

    def __init__(
        self,
        store: Store,
        redactor: Redactor | None = None,
        *,
        log_deltas: bool = False,
        batch_size: int = 256,
        flush_interval: float = 0.5,
        flush_on: tuple[type[Event], ...] = FLUSH_ON,
        background: bool = True,
        priority: int = -100,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1 (1 writes every event as it comes)")
        if flush_interval <= 0:
            raise ValueError("flush_interval must be a positive number of seconds")
        self.store = store
        self.redactor = redactor if redactor is not None else Redactor()
        self.log_deltas = log_deltas
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.flush_on = tuple(flush_on)
        self.background = background
        self.priority = priority
        self.written = 0  # events written so far
        self.failed_writes = 0  # transactions the store refused (each logged as an error)
        self._pending: list[Message] = []
        self._first_pending_at = 0.0
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._registrations = []
        self._turns = TurnIndex()

    # -- attaching -----------------------------------------------------------

    def attach(self, bus: MessageBus) -> EventLogObserver:
        """Subscribe to every event on ``bus``; returns ``self``."""
        self._refuse_if_attached()
        self._closing = False
        if self.background and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmgine-eventlog", daemon=True)
            self._thread.start()
            _at_exit(self)
        skipped = () if self.log_deltas else DELTA_EVENTS
        self._subscribe(bus, {Event: self.on_event}, priority=self.priority, exclude=skipped)
        return self

    def detach(self) -> None:
        """Stop listening, write what is buffered and stop the writer thread."""
        self._unsubscribe()
        self.close()

    # -- the subscriber (on the bus's loop: keep it cheap) -------------------

    def on_event(self, event: Event) -> None:
        if not self.log_deltas and isinstance(event, DELTA_EVENTS):
            return
        self._turns.note(event)
        if event.session_id is None:
            # Filed under its turn's session, so store.events(session) finds it.
            event = self._turns.with_session(event)
        with self._lock:
            if not self._pending:
                self._first_pending_at = time.monotonic()
            self._pending.append(event)
            due = (
                len(self._pending) >= self.batch_size
                or isinstance(event, self.flush_on)
                or time.monotonic() - self._first_pending_at >= self.flush_interval
            )
        if due:
            if self._thread is not None:
                self._wake.set()
            else:
                self.flush()

    # -- writing -------------------------------------------------------------

    def flush(self) -> int:
        """Write every buffered event now (waiting for a batch in flight); return how many."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            return self._write(batch)

    def _write(self, batch: list[Message]) -> int:
        written = 0
        # Several short transactions rather than one long one: the engine writes
        # each turn through the same store, and waits while a batch holds it.
        for start in range(0, len(batch), ROWS_PER_TRANSACTION):
            chunk = batch[start : start + ROWS_PER_TRANSACTION]
            try:
                events, payloads = zip(*map(self.redactor.message_and_json, chunk))
                self.store.log_events(events, payloads=payloads)
            except Exception:
                # The log is a record, not the conversation: a write that fails
                # must not break the turn.  Say so loudly and keep going.
                self.failed_writes += 1
                log.error("could not write %d events to the event log", len(chunk), exc_info=True)
                continue
            written += len(chunk)
        self.written += written
        return written

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            closing = self._closing
            self.flush()
            if closing:
                return

    def close(self) -> None:
        """Write what is buffered and stop the writer thread (the observer can be attached again)."""
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._closing = True
            self._wake.set()
            thread.join(timeout=30)
        self.flush()

    @property
    def pending(self) -> int:
        """Events observed but not written yet."""
        return len(self._pending)

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return (
            f"<EventLogObserver {state} store={self.store!r} written={self.written} "
            f"pending={self.pending} log_deltas={self.log_deltas}>"
        )


# Observers still open when the interpreter exits write their buffers first
# (the writer thread is a daemon and would otherwise be cut off).
_open_logs: weakref.WeakSet[EventLogObserver] = weakref.WeakSet()
_exit_hook_installed = False


def _at_exit(observer: EventLogObserver) -> None:
    global _exit_hook_installed
    _open_logs.add(observer)
    if not _exit_hook_installed:
        atexit.register(_flush_open_logs)
        _exit_hook_installed = True


def _flush_open_logs() -> None:
    for observer in list(_open_logs):
        try:
            observer.close()
        except Exception:
            log.error("could not write the event log buffer at exit", exc_info=True)

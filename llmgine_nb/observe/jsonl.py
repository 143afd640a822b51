"""The event log as JSON Lines: one event's ``to_record()`` per line, redacted.

    export_jsonl(store, "session.jsonl", session=session_id)   # from the store
    JSONLObserver("live.jsonl").attach(bus)                     # as events happen
    events = read_jsonl("session.jsonl")                        # back as typed events

Each line is the JSON text of ``Message.to_record()`` (a ``type`` key names the
class), so ``Message.from_json(line)`` rebuilds the event as its own class.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

from ..messages import Event, Message
from .attaching import Subscriptions
from .correlate import TurnIndex
from .eventlog import DELTA_EVENTS
from .redact import Redactor

if TYPE_CHECKING:
    from ..bus import MessageBus
    from ..store import Store

__all__ = ["export_jsonl", "write_jsonl", "read_jsonl", "iter_jsonl", "JSONLObserver"]

log = logging.getLogger("llmgine_nb.observe.jsonl")

PathOrFile = Union[str, "os.PathLike[str]", IO[str]]


def write_jsonl(events: Iterable[Message], target: PathOrFile, *, redactor: Redactor | None = None) -> int:
    """Write ``events`` as JSON Lines to a path (overwritten) or an open text file; return the count."""
    redactor = redactor if redactor is not None else Redactor()
    if isinstance(target, io.TextIOBase) or hasattr(target, "write"):
        return _write_lines(events, target, redactor)  # type: ignore[arg-type]
    path = Path(target)
    with path.open("w", encoding="utf-8") as handle:
        return _write_lines(events, handle, redactor)


def _write_lines(events: Iterable[Message], handle: IO[str], redactor: Redactor) -> int:
    count = 0
    for event in events:
        handle.write(redactor.json(event))
        handle.write("\n")
        count += 1
    return count


def export_jsonl(
    store: Store,
    target: PathOrFile,
    *,
    session: str | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    redactor: Redactor | None = None,
) -> int:
    """Export the store's event log (one session's, or all) as JSON Lines; return how many events.

    ``session`` is a session id (or a stored session's name).  The store's
    rows are redacted already; they are redacted again with ``redactor`` so
    that secrets configured since they were written are caught too.
    """
    if session is not None:
        found = store.find_session(session)
        if found is not None:
            session = found.id
    events = store.events(session, since=since, until=until)
    return write_jsonl(events, target, redactor=redactor)


def iter_jsonl(source: PathOrFile) -> Iterator[Message]:
    """The events of a JSON Lines file, one by one, as their own classes."""
    if hasattr(source, "read"):
        yield from _read_lines(source)  # type: ignore[arg-type]
        return
    with Path(source).open(encoding="utf-8") as handle:
        yield from _read_lines(handle)


def _read_lines(handle: IO[str]) -> Iterator[Message]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            yield Message.from_json(line)
        except ValueError as exc:
            name = getattr(handle, "name", "the JSONL input")
            raise ValueError(
                f"line {number} of {name} is not an event record ({type(exc).__name__}: {exc}); "
                "each line must be the JSON of one event, as export_jsonl writes it"
            ) from exc


def read_jsonl(source: PathOrFile) -> list[Message]:
    """Every event of a JSON Lines file, as their own classes."""
    return list(iter_jsonl(source))


class JSONLObserver(Subscriptions):
    """Appends every event on the bus to a JSON Lines file as it happens, redacted.

    Each line is written and flushed to the operating system at once, so the
    file is complete up to the last event even if the kernel dies.  Deltas are
    left out unless ``log_deltas=True``, read by ``attach()`` (``LLMCallFinished`` holds the full text).
    An event without a session gets its turn's session, as in the event log.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        redactor: Redactor | None = None,
        log_deltas: bool = False,
        priority: int = -100,
    ) -> None:
        self.path = Path(path)
        self.redactor = redactor if redactor is not None else Redactor()
        self.log_deltas = log_deltas
        self.priority = priority
        self.written = 0
        self._handle: IO[str] | None = None
        self._lock = threading.Lock()
        self._registrations = []
        self._turns = TurnIndex()

    def attach(self, bus: MessageBus) -> JSONLObserver:
        """Open the file for appending and subscribe to every event; returns ``self``."""
        self._refuse_if_attached()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise OSError(
                f"cannot open {self.path} to append events: {exc.strerror or exc}; pass a path in a folder "
                "you can write to"
            ) from exc
        skipped = () if self.log_deltas else DELTA_EVENTS
        self._subscribe(bus, {Event: self.on_event}, priority=self.priority, exclude=skipped)
        return self

    def on_event(self, event: Event) -> None:
        if not self.log_deltas and isinstance(event, DELTA_EVENTS):
            return
        self._turns.note(event)
        line = self.redactor.json(self._turns.with_session(event)) + "\n"
        with self._lock:
            if self._handle is None:
                return
            self._handle.write(line)
            self._handle.flush()
            self.written += 1

    def detach(self) -> None:
        """Stop listening and close the file."""
        self._unsubscribe()
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def __repr__(self) -> str:
        return f"<JSONLObserver {str(self.path)!r} written={self.written}>"

"""Observers on the bus: the event log, metrics, OpenTelemetry traces, JSONL, redaction.

    from llmgine_nb.observe import observe
    watch = observe(bus, store, otel=True, jsonl="events.jsonl")
    ...
    watch.metrics                # a table in the notebook
    watch.flush()                # the event log is on disk
    watch.detach()

Every observer is a subscriber (nothing runs inside ``publish``), has
``attach(bus) -> self`` and ``detach()``, and writes nothing that has not
passed through a ``Redactor``.  ``otel.py`` imports OpenTelemetry only when
an ``OTelObserver`` is made (the ``otel`` extra).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..lazy import lazy_names
from .redact import REDACTED, Redactor

if TYPE_CHECKING:
    from ..bus import MessageBus
    from ..store import Store
    from .eventlog import DELTA_EVENTS, EventLogObserver
    from .jsonl import JSONLObserver, export_jsonl, iter_jsonl, read_jsonl, write_jsonl
    from .metrics import MetricsObserver, MetricsSnapshot, ModelMetrics, SessionMetrics, ToolMetrics, percentile
    from .otel import OTelObserver

# Each observer's module is imported when its name is first used: the notebook's
# first turn needs only the event log, not metrics, OpenTelemetry or JSONL.
_LAZY = {
    "DELTA_EVENTS": "eventlog",
    "EventLogObserver": "eventlog",
    "JSONLObserver": "jsonl",
    "export_jsonl": "jsonl",
    "iter_jsonl": "jsonl",
    "read_jsonl": "jsonl",
    "write_jsonl": "jsonl",
    "MetricsObserver": "metrics",
    "MetricsSnapshot": "metrics",
    "ModelMetrics": "metrics",
    "SessionMetrics": "metrics",
    "ToolMetrics": "metrics",
    "percentile": "metrics",
    "OTelObserver": "otel",
}


__getattr__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "DELTA_EVENTS",
    "EventLogObserver",
    "JSONLObserver",
    "MetricsObserver",
    "MetricsSnapshot",
    "ModelMetrics",
    "OTelObserver",
    "Observers",
    "REDACTED",
    "Redactor",
    "SessionMetrics",
    "ToolMetrics",
    "export_jsonl",
    "iter_jsonl",
    "observe",
    "percentile",
    "read_jsonl",
    "write_jsonl",
]


@dataclass
class Observers:
    """The observers ``observe()`` attached; ``detach()`` removes them all."""

    metrics: MetricsObserver | None = None
    eventlog: EventLogObserver | None = None
    otel: OTelObserver | None = None
    jsonl: JSONLObserver | None = None
    redactor: Redactor | None = None

    def all(self) -> list[Any]:
        return [o for o in (self.metrics, self.eventlog, self.otel, self.jsonl) if o is not None]

    def flush(self) -> None:
        """Write the event log's buffer now."""
        if self.eventlog is not None:
            self.eventlog.flush()

    def detach(self) -> None:
        """Detach every observer (the event log writes its buffer first)."""
        for observer in self.all():
            observer.detach()

    def __repr__(self) -> str:
        names = ", ".join(type(o).__name__ for o in self.all())
        return f"<Observers {names}>"

    def _repr_html_(self) -> str:
        return self.metrics._repr_html_() if self.metrics is not None else f"<p>{self!r}</p>"


def observe(
    bus: MessageBus,
    store: Store | None = None,
    *,
    otel: bool | Any = False,
    jsonl: str | os.PathLike[str] | None = None,
    metrics: bool = True,
    capture_content: bool = False,
    redactor: Redactor | None = None,
    log_deltas: bool = False,
) -> Observers:
    """Attach the standard observers to ``bus`` and return them.

    - metrics, always (unless ``metrics=False``);
    - the event log into ``store``, when one is given;
    - OpenTelemetry spans when ``otel`` is True (the global tracer provider)
      or a ``TracerProvider``; ``capture_content`` records message content;
    - a live JSONL file when ``jsonl`` is a path.

    One ``Redactor`` (``redactor``, or one reading the environment) guards all of them.
    """
    from .eventlog import EventLogObserver
    from .jsonl import JSONLObserver
    from .metrics import MetricsObserver
    from .otel import OTelObserver

    redactor = redactor if redactor is not None else Redactor()
    # Build everything first, so a missing OpenTelemetry leaves nothing half attached.
    watch = Observers(redactor=redactor)
    if otel is not False and otel is not None:
        provider = None if otel is True else otel
        watch.otel = OTelObserver(provider, capture_content, redactor=redactor)
    if metrics:
        watch.metrics = MetricsObserver()
    if store is not None:
        watch.eventlog = EventLogObserver(store, redactor, log_deltas=log_deltas)
    if jsonl is not None:
        watch.jsonl = JSONLObserver(jsonl, redactor=redactor, log_deltas=log_deltas)
    attached: list[Any] = []
    try:
        for observer in watch.all():
            observer.attach(bus)
            attached.append(observer)
    except BaseException:
        for observer in attached:
            observer.detach()
        raise
    return watch

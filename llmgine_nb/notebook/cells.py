"""``TurnCells``: which live cell shows which running turn, and the subscriber that feeds them.

The turn runner opens a session's cell when its turn starts and closes it
when the turn ends; the approval front end finds the cell to note a decision
in; the kernel's interrupt asks which sessions are running.  One small table,
shared by those three, instead of private dictionaries reached into.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.events import TurnStarted
from ..messages import Event
from .live import LiveCell

if TYPE_CHECKING:
    from ..bus import MessageBus
    from ..secrets import Redactor
    from .config import NotebookConfig

__all__ = ["TurnCells", "KernelParts"]


class TurnCells:
    """Session id -> the cell of its running turn, and turn id -> cell for events without a session."""

    def __init__(self) -> None:
        # Keyed by ``str | None`` so that an event without a session is one plain lookup that misses.
        self._by_session: dict[str | None, LiveCell] = {}
        self._by_turn: dict[str | None, LiveCell] = {}

    def open(self, session_id: str, cell: LiveCell) -> None:
        """``cell`` shows the turn now running in ``session_id``."""
        self._by_session[session_id] = cell

    def close(self, session_id: str, cell: LiveCell) -> None:
        """The turn ``cell`` showed has ended: its events go nowhere now."""
        if self._by_session.get(session_id) is cell:
            del self._by_session[session_id]
        for turn_id in [k for k, v in self._by_turn.items() if v is cell]:
            del self._by_turn[turn_id]

    def get(self, session_id: str | None) -> LiveCell | None:
        """The cell of the turn running in ``session_id``, if any."""
        return self._by_session.get(session_id)

    def running_sessions(self) -> list[str]:
        """The sessions with a turn on show right now."""
        return [s for s in self._by_session if s is not None]

    def __bool__(self) -> bool:
        return bool(self._by_session)

    def subscriber(self) -> Callable[[Event], None]:
        """The bus subscriber that hands each event to the live cell of its turn.

        By session; events that lack one are matched by the turn id the
        engine stamps.  It sees every event of the bus, so it is a closure
        over the two tables (benchmarks/bench_notebook.py measures it).
        """
        cells, turn_cells = self._by_session, self._by_turn

        def route(event: Event) -> None:
            cell = cells.get(event.session_id)
            if cell is None:
                if not event.metadata:
                    return
                cell = turn_cells.get(event.metadata.get("turn_id"))
                if cell is None:
                    return
            elif event.__class__ is TurnStarted:  # not isinstance: this runs for every event of the bus
                turn_cells[event.turn_id] = cell
            cell.feed(event)

        return route


@dataclass(frozen=True)
class KernelParts:
    """What the runtime's answerer and turn runner share: the kernel's bus, settings, redactor and live cells."""

    bus: MessageBus
    config: NotebookConfig
    redactor: Redactor
    cells: TurnCells

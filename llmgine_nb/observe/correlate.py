"""Which session an event belongs to, when the event itself does not say.

Events published while a turn runs carry ``metadata["turn_id"]`` (the
engine stamps it), but an event made outside the session's context may have
``session_id=None`` - the model layer, for one, does not know the session.
``TurnIndex`` remembers the session of each turn from its ``TurnStarted``,
so observers can file such events under the right session.
"""

from __future__ import annotations

from collections import OrderedDict

from ..engine.events import TurnStarted
from ..messages import Event

__all__ = ["TurnIndex"]


class TurnIndex:
    """Turn id -> session id, learned from ``TurnStarted`` (the most recent ``max_turns`` turns)."""

    def __init__(self, max_turns: int = 4096) -> None:
        self.max_turns = max_turns
        self._sessions: OrderedDict[str, str] = OrderedDict()

    def note(self, event: Event) -> None:
        """Learn from ``event`` if it starts a turn (call it for every event; it is cheap)."""
        if isinstance(event, TurnStarted) and event.session_id is not None:
            self._sessions[event.turn_id] = event.session_id
            if len(self._sessions) > self.max_turns:
                self._sessions.popitem(last=False)

    def session_of(self, event: Event) -> str | None:
        """The event's own session, else the session of the turn it was published in."""
        if event.session_id is not None:
            return event.session_id
        turn_id = event.metadata.get("turn_id") if event.metadata else None
        return self._sessions.get(turn_id) if isinstance(turn_id, str) else None

    def with_session(self, event: Event) -> Event:
        """``event``, or a copy carrying its turn's session when it had none."""
        if event.session_id is not None:
            return event
        session_id = self.session_of(event)
        return event if session_id is None else event.model_copy(update={"session_id": session_id})

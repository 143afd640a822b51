"""What every observer shares: attached to one bus at a time, every subscription undone on ``detach``.

An observer subscribes inline (it only records; nothing it does may wait)
and at a low priority, so the journal and the renderers see an event first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..bus import MessageBus, Registration
    from ..messages import Event

__all__ = ["Subscriptions"]


class Subscriptions:
    """A mixin holding an observer's registrations on the bus it is attached to."""

    _registrations: list[Registration]

    @property
    def attached(self) -> bool:
        return bool(getattr(self, "_registrations", None))

    def _subscribe(
        self,
        bus: MessageBus,
        handlers: Mapping[type[Event], Callable[[Any], Any]],
        *,
        priority: int = -100,
        exclude: tuple[type[Event], ...] = (),
    ) -> None:
        """Subscribe each handler to its event type (refused while already attached)."""
        self._refuse_if_attached()
        self._registrations = [
            bus.subscribe(event_type, handler, priority=priority, exclude=exclude, inline=True)
            for event_type, handler in handlers.items()
        ]

    def _refuse_if_attached(self) -> None:
        if self.attached:
            raise RuntimeError(f"this {type(self).__name__} is already attached; detach() it first")

    def _unsubscribe(self) -> None:
        """Take every subscription off the bus (idempotent)."""
        for registration in getattr(self, "_registrations", ()):
            registration.unregister()
        self._registrations = []

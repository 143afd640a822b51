"""Who receives an event: the bus's index of subscribers and its delivery plans.

Subscribers not tied to a session are kept by event class; a session's own
are kept by session, then class.  Delivering an event of session S looks at
the unscoped subscribers and at those of S and its parents only, so its cost
does not grow with the number of other sessions open (a server hosts
thousands).  The result, a *plan*, is built on first use for an (event
class, session) pair and dropped when a subscription it includes changes.
"""

from __future__ import annotations

import threading
from typing import Any

from .registration import Registration

__all__ = ["SubscriberIndex", "Plan", "AWAIT", "CALL", "OFF_LOOP"]

# A plan is a tuple of steps: (handler, AWAIT) for an async handler, (handler,
# CALL) for an inline sync one, and (handlers, OFF_LOOP) for a run of
# consecutive sync handlers that go to a worker thread together (one hop).
AWAIT, CALL, OFF_LOOP = 0, 1, 2
Plan = tuple[tuple[Any, int], ...]


class SubscriberIndex:
    """The subscriptions of one bus, and the open sessions' nesting."""

    def __init__(self) -> None:
        self.unscoped: dict[type, list[Registration]] = {}
        self.scoped: dict[str, dict[type, list[Registration]]] = {}
        self._by_identity: dict[tuple[Any, ...], Registration] = {}
        # Plans for events with no session (or one with nothing of its own), and per session.
        self.plans: dict[type, Plan] = {}
        # Classes whose only subscriber is one async handler, while no session has subscribers of
        # its own (so every session's plan is the same): delivered without walking a plan, or
        # even reading the event's session.
        self.solo: dict[type, Any] = {}
        self.session_plans: dict[str, dict[type, Plan]] = {}
        # Sessions whose plans may differ from the unscoped ones: opened, or with scoped subscribers.
        self.special: set[str] = set()
        # Open sessions: id -> parent id, so scoped handlers see nested sessions; and the reverse.
        self.parents: dict[str, str | None] = {}
        self._children: dict[str, set[str]] = {}
        # Subscribing may happen on one thread (a notebook cell) while delivery builds
        # a plan on another (the engine's loop): both hold this lock, so a plan is never
        # built from a list that was changing.  Reading a built plan takes no lock.
        self.lock = threading.RLock()

    # -- subscriptions -------------------------------------------------------------

    def add(self, event_type: type, reg: Registration) -> None:
        """Add ``reg``; an earlier registration of the same handler, class and scope is replaced."""
        session_id = reg.session_id
        key = (event_type, session_id, reg.identity)
        with self.lock:
            earlier = self._by_identity.get(key)
            if earlier is not None:
                earlier.unregister()
            self._by_identity[key] = reg
            if session_id is None:
                self.unscoped.setdefault(event_type, []).append(reg)
            else:
                self.scoped.setdefault(session_id, {}).setdefault(event_type, []).append(reg)
                self.special.add(session_id)
                self.solo.clear()
            self._changed(session_id)

    def remove(self, reg: Registration) -> None:
        with self.lock:
            session_id = reg.session_id
            by_class = self.unscoped if session_id is None else self.scoped.get(session_id, {})
            found = next(((t, regs) for t, regs in by_class.items() if reg in regs), None)
            if found is None:
                return
            event_type, regs = found
            regs.remove(reg)
            key = (event_type, session_id, reg.identity)
            if self._by_identity.get(key) is reg:
                del self._by_identity[key]
            if not regs:
                del by_class[event_type]
            if session_id is not None and not by_class:
                self.scoped.pop(session_id, None)
                if session_id not in self.parents:
                    self.special.discard(session_id)
            self._changed(session_id)

    def all(self) -> list[Registration]:
        with self.lock:
            found = [reg for regs in self.unscoped.values() for reg in regs]
            found += [reg for by_class in self.scoped.values() for regs in by_class.values() for reg in regs]
        return found

    # -- plans ----------------------------------------------------------------------

    def plan(self, event_type: type, session_id: str | None) -> Plan:
        """The steps delivering an event of ``event_type`` in ``session_id`` (built now if need be)."""
        if session_id is None or session_id not in self.special:
            plan = self.plans.get(event_type)
        else:
            plan = self.session_plans.get(session_id, {}).get(event_type)
        return plan if plan is not None else self.build(event_type, session_id)

    def build(self, event_type: type, session_id: str | None) -> Plan:
        with self.lock:
            special = session_id is not None and session_id in self.special
            mro = event_type.__mro__
            found = [reg for klass in mro for reg in self.unscoped.get(klass, ())]
            if special:
                for scope in self.chain(session_id):
                    by_class = self.scoped.get(scope)  # type: ignore[arg-type]
                    if by_class:
                        found += [reg for klass in mro for reg in by_class.get(klass, ())]
            found = [reg for reg in found if not (reg.exclude and issubclass(event_type, reg.exclude))]
            found.sort(key=lambda r: (-r.priority, r.order))
            steps: list[tuple[Any, int]] = []
            for reg in found:
                if not reg.off_loop:
                    steps.append((reg.fn, AWAIT if reg.is_async else CALL))
                elif steps and steps[-1][1] == OFF_LOOP:
                    steps[-1] = (steps[-1][0] + (reg.fn,), OFF_LOOP)
                else:
                    steps.append(((reg.fn,), OFF_LOOP))
            plan = tuple(steps)
            if special:
                self.session_plans.setdefault(session_id, {})[event_type] = plan  # type: ignore[arg-type]
            else:
                self.plans[event_type] = plan
                if len(plan) == 1 and plan[0][1] == AWAIT and not self.scoped:
                    self.solo[event_type] = plan[0][0]
            return plan

    def _changed(self, session_id: str | None) -> None:
        """Drop the plans a change of ``session_id``'s subscribers affects (None: every plan)."""
        if session_id is None:
            self.plans.clear()
            self.solo.clear()
            self.session_plans.clear()
            return
        stack = [session_id]
        while stack:
            scope = stack.pop()
            self.session_plans.pop(scope, None)
            stack.extend(self._children.get(scope, ()))

    # -- sessions -------------------------------------------------------------------

    def chain(self, session_id: str | None) -> tuple[str | None, ...]:
        """``session_id`` and the open sessions it is nested in, innermost first."""
        chain: list[str | None] = []
        while session_id is not None and session_id not in chain:
            chain.append(session_id)
            session_id = self.parents.get(session_id)
        return tuple(chain)

    def opened(self, session_id: str, parent_id: str | None) -> None:
        with self.lock:
            self.parents[session_id] = parent_id
            self.special.add(session_id)
            if parent_id is not None:
                self._children.setdefault(parent_id, set()).add(session_id)
            self._changed(session_id)

    def closed(self, session_id: str) -> None:
        with self.lock:
            self._changed(session_id)
            parent_id = self.parents.pop(session_id, None)
            if parent_id is not None:
                siblings = self._children.get(parent_id)
                if siblings is not None:
                    siblings.discard(session_id)
                    if not siblings:
                        del self._children[parent_id]
            if session_id not in self.scoped:
                self.special.discard(session_id)

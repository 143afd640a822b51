"""The shape of a history: turns, tool-call groups, pinned units - and an index kept as it grows.

A *turn* is a user message and everything up to the next one; a *unit* is
a message, or an assistant message with the results of its tool calls.
Cuts fall only between turns, and a unit is sent whole or not at all.

The compiler runs every turn over a history that only grows at its end, so
``HistoryIndex`` remembers what it learned (which messages are forgotten or
pinned, where each message is, their ids) and, next time, reads only the new
messages.  That keeps a turn's cost flat however long the session is
(benchmarks/bench_turn_scaling.py).  It checks that the history it sees
still starts with the messages it indexed (an identity comparison per
message, in C) and starts again when it does not: forgetting, pinning or
editing a message replaces it with a new value, so the index is rebuilt once.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from ..chat import ChatMessage

__all__ = ["HistoryIndex", "next_turn_start", "latest_turn_start", "pinned_units"]


def next_turn_start(history: Sequence[ChatMessage], pinned: set[int], i: int) -> int:
    """``i`` if history from ``i`` starts a turn (pinned messages aside), else the next turn's start."""
    j = i
    while j < len(history) and history[j].role != "user" and j in pinned:
        j += 1
    if j == len(history) or history[j].role == "user":
        return i
    while j < len(history) and history[j].role != "user":
        j += 1
    return j


def latest_turn_start(history: Sequence[ChatMessage]) -> int:
    """Start of the newest turn: the latest user message (0 when there is none)."""
    for i in range(len(history) - 1, -1, -1):
        if history[i].role == "user":
            return i
    return 0


def group_start(history: Sequence[ChatMessage], end: int) -> int:
    """Start index of the unit ending at ``end`` (inclusive)."""
    i = end
    while i >= 0 and history[i].role == "tool":
        i -= 1
    if i < end:  # tool results: the unit starts at the assistant message that called them
        if i >= 0 and history[i].role == "assistant" and history[i].tool_calls:
            return i
        return i + 1  # results with no call before them form their own unit
    return end


def group_end(history: Sequence[ChatMessage], start: int) -> int:
    """End index (inclusive) of the unit starting at ``start``."""
    j = start
    if history[start].role == "assistant" and history[start].tool_calls:
        while j + 1 < len(history) and history[j + 1].role == "tool":
            j += 1
    return j


def pinned_units(history: Sequence[ChatMessage], pinned_messages: Sequence[int]) -> set[int]:
    """Every index of a unit that holds a pinned message (given as indices, oldest first)."""
    pinned: set[int] = set()
    for i in pinned_messages:
        if i not in pinned:
            start = group_start(history, i)
            pinned.update(range(start, group_end(history, start) + 1))
    return pinned


class HistoryIndex:
    """The messages of one history still to be sent, and their turn starts, pins, positions, ids and tokens.

    Updated by reading only what is new.  Messages the user told it to forget
    are set aside as they are read (``forgotten``); ``remembered`` holds the
    rest, and every position the index gives is a position in ``remembered``.
    Token counts are kept as running sums (for one counter), so the tokens of
    any stretch of history cost two lookups instead of a count per message.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._messages: list[ChatMessage] = []  # every message indexed, forgotten ones too, by reference
        self.remembered: list[ChatMessage] = []  # the messages not forgotten, oldest first
        self.forgotten: list[str] = []  # ids of the forgotten messages, oldest first
        self.ids: list[str] = []
        self.position: dict[str, int] = {}  # id -> index (the newest, should an id repeat)
        self.pinned_messages: list[int] = []
        self.user_messages: list[int] = []  # where turns start
        self._counter: Any = None  # the counter the running sums were made with (and its mode)
        self._sums: list[int] = [0]  # _sums[i]: tokens of the messages before index i

    def update(self, history: Sequence[ChatMessage]) -> None:
        """Index ``history``: read only the messages past those already indexed, if the rest is unchanged."""
        known = len(self._messages)
        prefix = history[:known]
        if len(history) < known or (list(prefix) if not isinstance(prefix, list) else prefix) != self._messages:
            # Not the same history grown at its end (another session, an edit, a reset): start again.
            self._reset()
            known = 0
        for message in history[known:]:
            self._messages.append(message)
            if message.forgotten:
                self.forgotten.append(message.id)
                continue
            i = len(self.remembered)
            self.remembered.append(message)
            self.ids.append(message.id)
            self.position[message.id] = i
            if message.pinned:
                self.pinned_messages.append(i)
            if message.role == "user":
                self.user_messages.append(i)

    def ids_between(self, start: int, stop: int, leave_out: set[int]) -> list[str]:
        """Ids of the messages in ``[start, stop)`` whose index is not in ``leave_out``."""
        if not any(start <= i < stop for i in leave_out):
            return self.ids[start:stop]
        return [self.ids[i] for i in range(start, stop) if i not in leave_out]

    def turn_starts_newest_first(self, history: Sequence[ChatMessage], floor: int = 0) -> Iterator[int]:
        """Where the turns from ``floor`` on start, newest first (lazily: callers stop early).

        Messages before the first user message (from ``floor``) form a turn of
        their own, starting at ``floor``.
        """
        users = self.user_messages
        for k in range(len(users) - 1, bisect_left(users, floor) - 1, -1):
            yield users[k]
        if floor < len(history) and history[floor].role != "user":
            yield floor

    def tokens_of(self, indices: Sequence[int], start: int, stop: int) -> int:
        """Tokens of the messages at ``indices`` (sorted) that lie in ``[start, stop)``, by the last counter used."""
        sums = self._sums
        return sum(sums[i + 1] - sums[i] for i in indices[bisect_left(indices, start) : bisect_left(indices, stop)])

    def running_sums(self, counter: Any) -> list[int]:
        """``sums[i]``: the tokens of the messages before index ``i``, by ``counter``.

        The same numbers ``counter.count()`` gives (it caches them), so sizes
        computed from them are exactly the sums of counts they replace.
        """
        mode = (counter, counter.model, counter.estimate)
        if self._counter != mode:
            self._counter, self._sums = mode, [0]
        sums = self._sums
        for i in range(len(sums) - 1, len(self.remembered)):
            sums.append(sums[-1] + counter.count(self.remembered[i]))
        return sums

"""The ids a person uses to answer what waits: display ids and argument hashes.

Every approval and question gets a short **display id** (``k7mq``) when it
is asked: shown on its card, in ``%llmgine pending`` and by every front end,
and accepted wherever an id is (``%llmgine approve k7mq``, ``DecideApproval``,
``AnswerQuestion``).  It is unique among the items pending in its session,
and one that was used a moment ago is not handed out again, so a stale
"approve k7mq" cannot reach a newer call.  It is derived from the item's own
id, so a call asked again after a restart keeps the id its card showed.

The **argument hash** (``args_hash``) names the exact arguments a card
showed.  A decision that carries it runs the call only if the call's
arguments still hash the same: what is approved is exactly what runs.

A whole tool-call id is accepted too, and so is a shortened one, but only
by its unique part: providers start every id with the same few characters
(``call_``, ``toolu_``), which must never count towards the prefix.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["args_hash", "unique_part", "DisplayIds", "first_display_id", "pick_by_id", "MIN_PREFIX"]

# The fewest characters of an id's unique part accepted in place of the whole id.
MIN_PREFIX = 6

# Lower-case letters and digits without the ones read alike (0/o, 1/l/i).
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_SHORTEST = 4
# How many recently released display ids per session are not handed out again.
_REMEMBERED = 256

# A provider's fixed prefix: letters, then "_" or "-" (``call_``, ``toolu_``, ``fc-``).
_PROVIDER_PREFIX = re.compile(r"^[A-Za-z]+[_-]")

P = TypeVar("P")


def args_hash(arguments: Any) -> str:
    """A short hash of ``arguments`` as JSON (keys sorted): the same arguments, the same hash."""
    text = json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def unique_part(ident: str) -> str:
    """``ident`` without a provider's fixed prefix: ``call_a1b2`` -> ``a1b2``."""
    return _PROVIDER_PREFIX.sub("", ident, count=1)


def _encode(digest: bytes, length: int) -> str:
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def first_display_id(item_id: str) -> str:
    """The display id ``item_id`` gets when no other pending item has it (what a test can expect)."""
    return _encode(_digest(item_id), _SHORTEST)


def _digest(item_id: str) -> bytes:
    return hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).digest()


class DisplayIds:
    """Hands out display ids, unique among a session's pending items (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str | None, dict[str, str]] = {}  # session -> display id -> item id
        self._recent: dict[str | None, deque[str]] = {}

    def allocate(self, session_id: str | None, item_id: str) -> str:
        """The display id of ``item_id`` (the same one again while it is pending)."""
        digest = _digest(item_id)
        with self._lock:
            pending = self._pending.setdefault(session_id, {})
            recent = self._recent.get(session_id, ())
            for length in range(_SHORTEST, 40):
                candidate = _encode(digest, length)
                owner = pending.get(candidate)
                if owner == item_id:
                    return candidate
                if owner is None and candidate not in recent:
                    pending[candidate] = item_id
                    return candidate
        raise RuntimeError("no display id is free")  # pragma: no cover - 2**190 ids would have to be pending

    def release(self, session_id: str | None, display_id: str) -> None:
        """``display_id`` is no longer pending; it is not handed out again soon."""
        with self._lock:
            pending = self._pending.get(session_id)
            if pending is None or pending.pop(display_id, None) is None:
                return
            if not pending:
                del self._pending[session_id]
            self._recent.setdefault(session_id, deque(maxlen=_REMEMBERED)).append(display_id)

    def pending(self, session_id: str | None) -> dict[str, str]:
        """The session's pending display ids and the item each names."""
        with self._lock:
            return dict(self._pending.get(session_id, {}))


def pick_by_id(
    ident: str, candidates: Sequence[P], ids: Callable[[P], list[str]], *, display: Callable[[P], str] | None = None,
    waiting: str | None = None, nothing: str = "nothing pending",
) -> P:
    """The one candidate ``ident`` names, among items pending now.

    Accepted: a display id (``display(candidate)``), one of the candidate's
    whole ``ids``, or a prefix of at least ``MIN_PREFIX`` characters of an
    id's unique part (after any provider prefix such as ``call_``) that fits
    no other candidate.  ``waiting`` describes the candidates in the error
    (default: their display ids, else their ids); ``nothing`` starts the
    not-found sentence.
    """
    ident = (ident or "").strip()

    def names(c: P) -> list[str]:
        shown = display(c) if display is not None else ""
        return ([shown] if shown else []) + ids(c)

    if waiting is None:
        waiting = ", ".join(sorted({(display(c) if display is not None else "") or ids(c)[0] for c in candidates}))
    waiting = waiting or "none"
    exact = [c for c in candidates if ident and ident in names(c)]
    if len(exact) == 1:
        return exact[0]
    matching = exact
    if not exact:
        wanted = unique_part(ident)
        if len(wanted) < MIN_PREFIX:
            hint = ""
            if ident and candidates:
                hint = (f"; give the id shown on the card, or at least {MIN_PREFIX} characters of the call's id "
                        "after its provider prefix (such as call_)")
            raise LookupError(f"{nothing} with id {ident!r} (waiting: {waiting}){hint}")
        matching = [c for c in candidates if any(unique_part(i).startswith(wanted) for i in ids(c))]
        if len(matching) == 1:
            return matching[0]
        if not matching:
            raise LookupError(f"{nothing} with id {ident!r} (waiting: {waiting})")
    named = "; ".join(" / ".join(names(c)) for c in matching)
    raise LookupError(f"{ident!r} matches {len(matching)} pending requests ({named}); give more of the id to pick one")

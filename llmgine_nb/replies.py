"""Reading a person's short reply as yes or no: the one grammar of the package.

A chat reply to "... - confirm?" (the task assistant), an answer typed at
an ``input()`` prompt or with ``%llmgine answer`` (the notebook) all go
through ``parse_yes_no``.  Anything that is not clearly a yes or a no is
``None``, and every caller treats that as "no" (fail closed), never as a
guess.  ``yes_no`` is the strict form for an API: it raises instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["parse_yes_no", "yes_no", "clean_reply", "is_on"]

_YES = frozenset({
    "y", "yes", "yep", "yeah", "yup", "ok", "okay", "sure", "confirm", "confirmed", "approve", "approved", "true",
    "correct", "right", "go ahead", "do it", "yes please", "sounds good", "looks good", "that's right",
})
_NO = frozenset({
    "n", "no", "nope", "nah", "cancel", "stop", "deny", "denied", "wrong", "don't", "abort", "no thanks", "false",
    "not that", "no way",
})
_YES_FIRST = frozenset({"y", "yes", "yep", "yeah", "yup", "ok", "okay", "sure"})
_NO_FIRST = frozenset({"n", "no", "nope", "nah", "don't", "cancel"})
# What may follow a yes-word and still leave a plain yes ("yes please, go ahead").
# Anything else ("sure, assign it to Jordan", "ok what does that do", "yeah
# right") asks for something more or means something else: not a clear yes.
_YES_TAIL = tuple(
    tuple(phrase.split())
    for phrase in (
        "please", "please do", "go ahead", "go for it", "do it", "thanks", "thank you", "thx", "ty",
        "sure", "yes", "yep", "yeah", "yup", "ok", "okay", "confirm", "confirmed", "approve", "approved",
        "correct", "that's correct", "that's right", "that's fine", "fine", "sounds good", "looks good",
        "good", "great", "perfect", "absolutely", "definitely", "of course",
    )
)  # fmt: skip


def clean_reply(text: str) -> str:
    """Lower case, one space between words, no trailing punctuation; curly apostrophes made straight."""
    return " ".join(str(text).lower().replace("\u2019", "'").split()).strip(" .!?,")


def _only_yes_tail(words: Sequence[str]) -> bool:
    """True when ``words`` are nothing but courtesy and more yes ("please", "go ahead", "thanks" ...)."""
    i = 0
    while i < len(words):
        for phrase in _YES_TAIL:
            if tuple(words[i : i + len(phrase)]) == phrase:
                i += len(phrase)
                break
        else:
            return False
    return True


def parse_yes_no(text: str) -> bool | None:
    """True for a clear yes, False for a clear no, None when the reply is neither.

    A question ("ok what does that do?", "right?") is never a yes, and nor
    is a yes followed by anything but courtesy ("sure, assign it to Jordan"):
    the caller treats None as no.
    """
    if "?" in str(text):
        return None  # a question back is not an answer
    reply = clean_reply(text)
    if not reply:
        return None
    if reply in _YES:
        return True
    if reply in _NO:
        return False
    words = re.findall(r"[a-z']+", reply)
    if words and words[0] in _YES_FIRST and _only_yes_tail(words[1:]):
        return True
    if words and words[0] in _NO_FIRST:
        return False
    return None




def yes_no(value: Any) -> bool:
    """``True``/``False`` as they are; a reply as ``parse_yes_no`` reads it; anything unclear raises ``ValueError``."""
    if isinstance(value, bool):
        return value
    answer = parse_yes_no(str(value))
    if answer is None:
        raise ValueError(f"answer yes or no, not {value!r}")
    return answer


def is_on(value: Any) -> bool:
    """A setting or environment flag: ``1``, ``true``, ``yes`` or ``on`` (any case) is on; anything else off."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _ON


_ON = frozenset({"1", "true", "yes", "on"})

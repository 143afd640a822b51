"""Reading a chat reply as the answer to a pending question.

When the assistant asks "... - confirm?" or "Do you mean 1) X, 2) Y or
3) Z?" in a chat, the user's next message is the answer.  These functions
read it; anything that is not clearly an answer counts as "no" / "no
choice" (fail closed), never as a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .matching import name_score

__all__ = ["parse_yes_no", "parse_choice"]

_YES = frozenset({
    "y", "yes", "yep", "yeah", "yup", "ok", "okay", "sure", "confirm", "confirmed", "approve", "approved",
    "correct", "right", "go ahead", "do it", "yes please", "sounds good", "looks good", "that's right",
})
_NO = frozenset({
    "n", "no", "nope", "nah", "cancel", "stop", "deny", "denied", "wrong", "don't", "abort", "no thanks",
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
_NONE = frozenset({"none", "neither", "none of them", "none of those", "no", "nope", "cancel", "nothing", "stop"})
_ORDINALS = {
    "first": 1, "1st": 1, "one": 1,
    "second": 2, "2nd": 2, "two": 2,
    "third": 3, "3rd": 3, "three": 3,
    "fourth": 4, "4th": 4, "four": 4,
    "fifth": 5, "5th": 5, "five": 5,
}  # fmt: skip
_NUMBER = re.compile(r"^(?:(?:option|number|no\.?|#)\s*)?(\d{1,2})\)?$")
_ORDINAL = re.compile(r"^(?:the\s+)?(" + "|".join(_ORDINALS) + r")(?:\s+(?:one|option))?$")
# Below this a reply is not taken as naming an option.
_OPTION_THRESHOLD = 0.75


def _clean(text: str) -> str:
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
    reply = _clean(text)
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


def parse_choice(text: str, options: Sequence[str]) -> str | None:
    """The option a reply picks ("2", "2)", "option 2", "the second", or the option's text), or None.

    A yes to a single option picks it; "none"/"neither"/"no" and anything
    unclear pick nothing.
    """
    reply = _clean(text)
    if not reply or not options:
        return None
    if reply in _NONE:
        return None
    if m := _NUMBER.match(reply):
        index = int(m.group(1))
        return options[index - 1] if 1 <= index <= len(options) else None
    if m := _ORDINAL.match(reply):
        index = _ORDINALS[m.group(1)]
        return options[index - 1] if index <= len(options) else None
    if len(options) == 1 and parse_yes_no(text):
        return options[0]
    exact = [o for o in options if _clean(o) == reply]
    if len(exact) == 1:
        return exact[0]
    scored = sorted(((name_score(reply, o), o) for o in options), reverse=True)
    best_score, best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if best_score >= _OPTION_THRESHOLD and best_score - runner_up >= 0.1:
        return best
    return None

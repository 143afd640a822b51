"""Reading a chat reply as the answer to a pending question.

When the assistant asks "... - confirm?" or "Do you mean 1) X, 2) Y or
3) Z?" in a chat, the user's next message is the answer.  These functions
read it; anything that is not clearly an answer counts as "no" / "no
choice" (fail closed), never as a guess.  The yes/no grammar is the
package's one (``llmgine_nb.replies``), shared with the notebook's prompts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...replies import clean_reply, parse_yes_no
from .matching import name_score

__all__ = ["parse_yes_no", "parse_choice"]

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


def parse_choice(text: str, options: Sequence[str]) -> str | None:
    """The option a reply picks ("2", "2)", "option 2", "the second", or the option's text), or None.

    A yes to a single option picks it; "none"/"neither"/"no" and anything
    unclear pick nothing.
    """
    reply = clean_reply(text)
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
    exact = [o for o in options if clean_reply(o) == reply]
    if len(exact) == 1:
        return exact[0]
    scored = sorted(((name_score(reply, o), o) for o in options), reverse=True)
    best_score, best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if best_score >= _OPTION_THRESHOLD and best_score - runner_up >= 0.1:
        return best
    return None

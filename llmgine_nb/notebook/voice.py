"""How the notebook front end speaks to the user: ``say`` and errors as sentences.

Every part of the front end (magics, approval prompts, the runtime) uses
these, so they live below all of them and import nothing of the package.
"""

from __future__ import annotations

import re
import sys

__all__ = ["say", "error_sentence"]


def say(text: str) -> None:
    """A magic's answer to the user, on the cell's standard output (this is the front end's voice, not logging)."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def error_sentence(error: str) -> str:
    """A command's error as a sentence: without the ``RuntimeError: `` its handler's exception adds."""
    return _ERROR_TYPE_PREFIX.sub("", error, count=1).strip()


_ERROR_TYPE_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Failed|NotFound|Refused|Timeout|Exit): ")

"""Text that can always be stored, sent and shown: lone surrogates replaced at the edges.

Python strings may hold lone UTF-16 surrogates (``"\\ud800"``): a JSON escape
from a model, a tool's ``bytes.decode(errors="surrogateescape")``, a pasted
prompt.  UTF-8 cannot encode them, so SQLite, files and sockets refuse the
string and the message would be lost.  Text is made safe where it enters
(the user's prompt, the model's reply and tool-call arguments, a tool's
result): a surrogate pair is joined into the character it stands for, and a
lone surrogate becomes U+FFFD (the replacement character, "�").  Everything
else is left exactly as it was.
"""

from __future__ import annotations

from typing import Any

__all__ = ["clean_text", "clean_value", "REPLACEMENT"]

REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced (and split surrogate pairs joined); the same object if none."""
    if text.isascii():  # the common case, and the fastest check there is
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16: a valid pair becomes its character, a lone half the replacement character.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def clean_value(value: Any) -> Any:
    """``clean_text`` applied to every string (keys included) inside JSON-like data."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(clean_value(v) for v in value)
    return value

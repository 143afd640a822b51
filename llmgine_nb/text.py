"""Text helpers every layer shares, one definition each.

* ``clean_text`` / ``clean_value``: text that can always be stored, sent and
  shown, lone surrogates replaced at the edges.

  Python strings may hold lone UTF-16 surrogates (``"\\ud800"``): a JSON escape
  from a model, a tool's ``bytes.decode(errors="surrogateescape")``, a pasted
  prompt.  UTF-8 cannot encode them, so SQLite, files and sockets refuse the
  string and the message would be lost.  Text is made safe where it enters
  (the user's prompt, the model's reply and tool-call arguments, a tool's
  result): a surrogate pair is joined into the character it stands for, and a
  lone surrogate becomes U+FFFD (the replacement character, "�").  Everything
  else is left exactly as it was.

* ``clip``: cutting text to a length, for a person or for a model;
  ``estimate_tokens``: the one rough token count (tools, the LLM layer, the
  context compiler and the notebook used to have a copy each).

This module imports nothing of the package, so anything may import it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["clean_text", "clean_value", "REPLACEMENT", "clip", "estimate_tokens", "tokens_for_chars", "CHARS_PER_TOKEN"]

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


#: About four characters a token: close for English, and cheap to compute.
CHARS_PER_TOKEN = 4


def clip(text: str | None, limit: int, *, one_line: bool = False, note: bool = False) -> str:
    """``text`` cut to at most ``limit`` characters.

    For a person (the default) it ends in "…".  ``note=True`` is for a model
    or an error message: the kept ``limit`` characters are followed by how
    many were cut, so the reader knows something is missing.  ``one_line``
    turns line breaks into spaces first (table cells, one-line summaries).
    """
    text = text or ""
    if one_line:
        text = text.replace("\n", " ")
    if len(text) <= limit:
        return text
    if note:
        return text[:limit] + f"... [{len(text) - limit} characters cut]"
    return text[: max(limit - 1, 0)] + "…"


def estimate_tokens(text: str | None) -> int:
    """A rough token count, rounded up, for offline models and providers that report none."""
    return tokens_for_chars(len(text)) if text else 0


def tokens_for_chars(count: int) -> int:
    """The estimate for ``count`` characters (when only their number is known, e.g. a stream's)."""
    return -(-count // CHARS_PER_TOKEN)

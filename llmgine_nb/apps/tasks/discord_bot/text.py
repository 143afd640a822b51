"""Text for Discord: replies split at the message length limit, errors as short sentences."""

from __future__ import annotations

__all__ = ["MESSAGE_LIMIT", "split_message", "error_sentence"]

# Discord refuses a message whose content is longer than this many characters.
MESSAGE_LIMIT = 2000


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` as messages of at most ``limit`` characters, nothing lost.

    Cuts at the last line break before the limit, else the last space, else
    hard at the limit; a code block open at a cut is closed in one message
    and reopened in the next, so Markdown renders the same.
    """
    if limit < 20:
        raise ValueError("the limit must leave room for a code fence (20 characters or more)")
    chunks: list[str] = []
    rest = text
    fence = ""  # the opening line of a ``` block still open at the last cut
    while rest:
        room = limit - len(fence) - 4  # leave room for a closing "\n```"
        if len(fence) + len(rest) <= limit:
            chunks.append(fence + rest)
            break
        cut = _cut_point(rest, room)
        piece, rest = rest[:cut], rest[cut:]
        body = fence + piece
        open_fence = _open_fence(body)
        if open_fence:
            chunks.append(body.rstrip("\n") + "\n```")
            fence = open_fence + "\n"
        else:
            chunks.append(body)
            fence = ""
        rest = rest.lstrip("\n") if not fence else rest
    return chunks or [""]


def _cut_point(text: str, room: int) -> int:
    window = text[:room]
    for separator in ("\n", " "):
        at = window.rfind(separator)
        if at > room // 2:
            return at + 1
    return room


def _open_fence(text: str) -> str:
    """The opening line (```lang) of a code block left open at the end of ``text``, or ""."""
    opening = ""
    for line in text.split("\n"):
        if line.startswith("```"):
            opening = "" if opening else line.strip()
    return opening


def error_sentence(exc: BaseException) -> str:
    """What to tell the person when their request failed: one sentence, no traceback, nothing internal."""
    if isinstance(exc, ValueError) and str(exc):
        first = str(exc).split("\n")[0].rstrip(".")
        return f"Sorry, I couldn't do that: {first}."
    return "Sorry, something went wrong on my side and nothing was changed; please try again in a moment."

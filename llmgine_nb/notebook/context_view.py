"""``%llmgine context``: exactly what the last turn sent, part by part, with the tokens of each.

Read from the session's last ``ContextCompiled`` event (the engine publishes
one per model call, the journal logs it) and the stored messages it names:
the parts the compiler wrote (system prompt, memory, summary), the pinned
messages, the history sent, each message's images, the tools offered, and
what was dropped or summarised to fit.  Token counts are the compiler's
own (its counter, cached per message), so they add up to what it reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..chat import ChatMessage
from ..context.tokens import TokenCounter
from ..engine.events import ContextCompiled
from ..text import clip
from .reports import Report, html_table, plural, report_title, text_table
from .style import esc

__all__ = ["ContextView", "context_view"]

_HEADERS = ("part", "role", "tokens", "what was sent")


def _describe(message: ChatMessage) -> str:
    text = clip(message.content or "", 90, one_line=True)
    if message.tool_calls:
        text = (text + " " if text else "") + "→ calls " + ", ".join(c.name for c in message.tool_calls)
    for image in message.images:
        text = (text + " " if text else "") + f"[image {image.describe()}]"
    return text or "(empty)"


class ContextView(Report):
    """The parts of the last request, as a table (HTML) or aligned text."""

    def __init__(self, event: ContextCompiled | None, rows: Sequence[tuple[str, str, int, str]], calls: int = 1) -> None:
        self.event = event
        self.rows = list(rows)
        self.calls = calls  # model calls the turn made (a tool call's results go back in another)

    def _summary(self) -> list[str]:
        e = self.event
        assert e is not None
        lines = [f"The last request to {e.model or 'the model'}: {e.total_tokens:,} of {e.budget_tokens:,} tokens "
                 f"in {plural(len(self.rows), 'part')}; request sha256 {(e.request_hash or '?')[:16]}"]
        left_out = []
        if e.summarised_messages:
            left_out.append(f"{plural(e.summarised_messages, 'older message')} summarised")
        if e.dropped_messages:
            left_out.append(f"{plural(e.dropped_messages, 'older message')} dropped")
        lines.append("Left out to fit: " + (", ".join(left_out) if left_out else "nothing") + ".")
        if self.calls > 1:
            lines.append(f"This was the last of the turn's {self.calls} model calls (the others sent less: "
                         "the same parts before the tool results).")
        if e.forgotten_ids:
            lines.append(f"Left out because you forgot them: {plural(len(e.forgotten_ids), 'message')} (%llmgine forget).")
        if e.images:
            lines.append(f"Images: {plural(len(e.images), 'image')}, {e.image_tokens:,} tokens (counted in their messages).")
        if e.tools:
            tools = ", ".join(f"{name} ({tokens:,})" for name, tokens in e.tools.items())
            lines.append(f"Tools offered ({sum(e.tools.values()):,} tokens, sent beside the messages): {tools}.")
        return lines

    def _cells(self) -> list[list[str]]:
        return [[part, role, f"{tokens:,}", what] for part, role, tokens, what in self.rows]

    def html(self) -> str:
        if self.event is None:
            return report_title("Nothing sent yet", "ask something first")
        lines = self._summary()
        rows = [[esc(c) for c in row] for row in self._cells()]
        notes = "".join(f"<div>{esc(line)}</div>" for line in lines[1:])
        return report_title(lines[0]) + html_table(_HEADERS, rows, numeric=(2,)) + notes

    def text(self) -> str:
        if self.event is None:
            return "Nothing has been sent in this session yet; ask something first."
        lines = self._summary()
        return "\n".join([lines[0], text_table(_HEADERS, self._cells()), *lines[1:]])


def _sent_messages(messages: list[ChatMessage], event: ContextCompiled) -> list[tuple[str, ChatMessage]]:
    """The stored messages the event names: pinned ones older than the cut, then the history sent."""
    by_id = {m.id: m for m in messages}
    sent = [("pinned", by_id[i]) for i in event.pinned_ids if i in by_id]
    ids = [m.id for m in messages]
    if event.history_from_id in by_id and event.history_to_id in by_id:
        start, end = ids.index(event.history_from_id), ids.index(event.history_to_id)
        forgotten = set(event.forgotten_ids)  # inside the range, but left out of the request
        sent += [("pinned" if m.pinned else "history", m) for m in messages[start : end + 1] if m.id not in forgotten]
    return sent


def context_view(store: Any, session_id: str, counter: TokenCounter | None = None) -> ContextView:
    """What the session's last model call was sent (``counter``: the engine's, warm; else a new one)."""
    found = store.events(session_id, types=[ContextCompiled])
    if not found:
        return ContextView(None, [])
    event = found[-1]
    calls = sum(1 for e in found if e.turn_id == event.turn_id)
    if counter is None or counter.model != event.model:
        counter = TokenCounter(event.model)
    rows = [(part.kind, part.role, part.tokens, clip(part.text, 90, one_line=True)) for part in event.written]
    for kind, message in _sent_messages(store.messages(session_id), event):
        rows.append((kind, message.role, counter.count(message), _describe(message)))
    return ContextView(event, rows, calls)

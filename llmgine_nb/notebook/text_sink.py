"""``TextSink``: a turn printed as it happens, for plain IPython shells and terminals.

They cannot update an output in place, so it prints what is new: streamed
text, one line per tool-call step, questions with the command that answers
them, and the footer.  (``live.DisplaySink`` is the notebook's sink.)
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from .blocks import Block, NoticeBlock, QuestionBlock, TextBlock, ToolBlock, shown_id
from .render import block_text, decision_sentence, failure_hint, footer_text
from .transcript import Transcript

if TYPE_CHECKING:
    from .live import LiveCell

__all__ = ["TextSink"]


class TextSink:
    """Prints the turn as it happens: streamed text, one line per tool call step, the footer.

    For plain IPython shells and terminals, which cannot update output in place.
    """

    def __init__(self, stream: TextIO | None = None, *, answer_hint: bool = True) -> None:
        self._stream = stream
        self.answer_hint = answer_hint
        self._printed_chars: dict[int, int] = {}
        self._printed_states: dict[int, str] = {}
        self._last_block: int | None = None
        self._at_line_start = True

    @property
    def stream(self) -> TextIO:
        if self._stream is not None:
            return self._stream

        return sys.stdout

    def start(self, cell: LiveCell) -> None:
        pass

    def show_final(self) -> None:
        pass  # the footer was printed when the turn ended

    def _write(self, text: str) -> None:
        if text:
            self.stream.write(text)
            self._at_line_start = text.endswith("\n")

    def _begin_block(self, index: int) -> None:
        if self._last_block is not None and self._last_block != index:
            self._write("\n" if self._at_line_start else "\n\n")
        elif not self._at_line_start and self._last_block != index:
            self._write("\n")
        self._last_block = index

    def render(self, cell: LiveCell, *, final: bool) -> None:
        t = cell.transcript
        for index, block in enumerate(t.blocks):
            if isinstance(block, TextBlock):
                text = t.redact(block.text)
                if not final and block.final is None and not block.interrupted:
                    # Still streaming: keep back a tail that could be the start of a secret
                    # whose rest has not arrived, so that it is printed only once redacted.
                    text = text[: max(0, len(text) - _secret_tail(t))]
                done = self._printed_chars.get(index, 0)
                if len(text) > done:
                    self._begin_block(index)
                    self._write(text[done:])
                    self._printed_chars[index] = len(text)
                if block.interrupted and self._printed_states.get(index) != "interrupted":
                    self._printed_states[index] = "interrupted"
                    self._write("\n[stopped: the reply above is partial]\n")
            else:
                state = _block_state(block)
                if state is not None and self._printed_states.get(index) != state:
                    self._printed_states[index] = state
                    self._begin_block(index)
                    self._write(t.redact(_block_line(block, self.answer_hint)) + "\n")
        if final:
            if not self._at_line_start:
                self._write("\n")
            if t.failure is not None:
                self._write(f"Error: {t.failure.reason}\n{failure_hint(t.failure.kind, t.failure.retryable)}\n".replace("`", ""))
            status = {"cancelled": "stopped · ", "failed": "failed · ", "step_limit": "step limit · "}.get(t.status, "")
            self._write(f"-- {status}{footer_text(t)}\n")
        try:
            self.stream.flush()
        except (AttributeError, ValueError):
            pass


def _secret_tail(t: Transcript) -> int:
    """How many characters of streamed text to hold back: one less than the longest known secret."""
    if t.redactor is None:
        return 0
    return max(0, t.redactor.longest_secret - 1)


def _block_state(block: Block) -> str | None:
    """The state of a non-text block worth a line of its own (None: nothing new to say)."""
    if isinstance(block, ToolBlock):
        if block.state in ("preparing", "requested", "running"):
            return None
        if block.approval is not None and block.approval.pending:
            return "awaiting approval"
        return block.state
    if isinstance(block, QuestionBlock):
        return "answered" if block.answered else "asked"
    return "shown"


def _block_line(block: Block, answer_hint: bool) -> str:
    if isinstance(block, ToolBlock) and block.approval is not None and block.approval.pending:
        from .style import call_signature

        why = f" - {block.approval.reason}" if block.approval.reason else ""
        lines = [f"[approval needed] {call_signature(block.tool_name, block.shown_arguments)} "
                 f"(risk: {block.approval.risk}){why}"]
        if answer_hint:
            lines.append(f"  answer with: %llmgine approve {shown_id(block)}   or   %llmgine deny {shown_id(block)} [reason]")
        return "\n".join(lines)
    if isinstance(block, ToolBlock) and block.approval is not None and block.state == "denied":
        from .style import call_signature

        return f"[tool] {call_signature(block.tool_name, block.shown_arguments)} - {decision_sentence(block.approval)}"
    if isinstance(block, QuestionBlock) and not block.answered and answer_hint:
        return block_text(block) + f"\n  answer with: %llmgine answer {shown_id(block)} VALUE"
    if isinstance(block, NoticeBlock):
        return block_text(block)
    return block_text(block)

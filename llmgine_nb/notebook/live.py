"""Live cells: a turn's output, updated in place as its events arrive.

``LiveCell`` folds each event into the turn's ``Transcript`` and asks its
sink to show it - at most ``max_updates_per_s`` times a second, however fast
the model streams (the first words of each reply show at once); the last
update always carries all the text.  Events
arrive on the bus's loop thread, clicks on the kernel's main thread: the
cell's lock keeps them apart.

Sinks:

* ``DisplaySink`` - a notebook output updated in place through a display
  handle (Markdown + a plain-text fallback).  When a person must answer
  (an approval, a question) and the frontend has widgets, the output turns
  into a box of widgets: the Markdown around the question stays Markdown,
  the question becomes a card with buttons.  When the turn ends, the output
  becomes one static Markdown output again, carrying the model, usage and
  cost in its metadata - so a saved notebook needs no widget state.
* ``TextSink`` - a terminal or plain IPython shell: text is printed as it
  streams, tool calls as lines, approvals with the command that answers them.
* ``NullSink`` - nothing shown (the Python API with ``display=False``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..llm.events import LLMTextDelta
from .blocks import Block, QuestionBlock, TextBlock, ToolBlock
from .render import (
    block_text,
    blocks_markdown,
    bundle,
    tail_html,
    transcript_text,
    turn_metadata,
)
from .transcript import Transcript

__all__ = ["LiveCell", "Sink", "DisplaySink", "NullSink", "WIDGET_MIME"]

log = logging.getLogger("llmgine_nb.notebook")

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
DEFAULT_UPDATES_PER_S = 15.0


class Sink(Protocol):
    """Where a live cell shows its transcript."""

    def start(self, cell: LiveCell) -> None: ...

    def render(self, cell: LiveCell, *, final: bool) -> None: ...

    def show_final(self) -> None:
        """For a blocking ask: show the finished turn as an output of its own (once)."""


class LiveCell:
    """The output of one turn, kept up to date from its events, throttled."""

    def __init__(
        self,
        transcript: Transcript,
        sink: Sink,
        *,
        fmt: str = "markdown",
        max_updates_per_s: float = DEFAULT_UPDATES_PER_S,
    ) -> None:
        self.transcript = transcript
        self.sink = sink
        self.fmt = fmt
        self.interval = 1.0 / max_updates_per_s if max_updates_per_s > 0 else 0.0
        #: How many times the sink showed the transcript (the first display included).
        self.updates = 0
        self.finished = False
        self.done = threading.Event()
        self._lock = threading.RLock()
        self._next_at = 0.0
        self._timer: Any = None
        self._shown_version = -1
        self._streaming: Any = None  # the text block deltas are appended to
        self._shown_parts = -1

    # -- the cell's life -----------------------------------------------------------

    def start(self) -> LiveCell:
        """Show the output (call this in the cell that asked, so the output lands there)."""
        with self._lock:
            self.sink.start(self)
            self.updates += 1
            self._shown_version = self.transcript.version
            self._next_at = time.perf_counter() + self.interval
        return self

    def feed(self, event: Any) -> None:
        """Fold in one event of the turn; shows it now, or at the next allowed moment."""
        if event.__class__ is LLMTextDelta:
            # The hot path: thousands per reply (benchmarks/bench_notebook.py).  Appending
            # to a list is atomic, so the lock is taken only to show or to set the timer.
            block = self._streaming
            if block is not None and block.call_id == event.call_id:
                block.parts.append(event.text)  # no version bump: _on_timer counts the parts
            else:
                with self._lock:
                    if self.finished:
                        return
                    self._streaming = self.transcript.add_text(event.call_id, event.model, event.text)
                    # The first words of a reply replace "Thinking..." at once, not at the
                    # next allowed moment: one extra update per model call, where waiting
                    # is felt most.
                    self._cancel_timer()
                    self._show(final=False, now=time.perf_counter())
                return
            if self._timer is None:
                with self._lock:
                    if self.finished:
                        return
                    now = time.perf_counter()
                    if now >= self._next_at:
                        self._show(final=False, now=now)
                    elif self._timer is None:
                        self._schedule(self._next_at - now)
            return
        with self._lock:
            if self.finished or not self.transcript.apply(event):
                return
            if self.transcript.done:
                self._finish()
            else:
                self._changed()

    def change(self, mutate: Callable[[Transcript], Any]) -> Any:
        """Change the transcript from outside the event stream (who decided, a question)."""
        with self._lock:
            value = mutate(self.transcript)
            if not self.finished:
                self._changed()
            return value

    def finish(self) -> None:
        """Show the final output now (the turn ended; idempotent)."""
        with self._lock:
            if not self.finished:
                self._finish()

    # -- throttling -------------------------------------------------------------------

    def _changed(self) -> None:
        now = time.perf_counter()
        if now >= self._next_at:
            self._show(final=False, now=now)
        elif self._timer is None:
            self._schedule(self._next_at - now)

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            timer = threading.Timer(delay, self._on_timer)
            timer.daemon = True
            timer.start()
            self._timer = timer
        else:
            self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self.finished or (self._shown_version == self.transcript.version and self._shown_parts == self._parts()):
                return
            self._show(final=False, now=time.perf_counter())

    def _parts(self) -> int:
        return len(self._streaming.parts) if self._streaming is not None else -1

    def _show(self, *, final: bool, now: float) -> None:
        self._shown_version = self.transcript.version
        self._shown_parts = self._parts()
        self._next_at = now + self.interval
        self.updates += 1
        try:
            self.sink.render(self, final=final)
        except Exception:  # a display problem must never break the turn
            log.exception("showing the turn's output failed")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self) -> None:
        self._cancel_timer()
        self.finished = True
        self._streaming = None
        self._show(final=True, now=time.perf_counter())
        self.done.set()


class NullSink:
    """Shows nothing; the transcript is still kept (``TurnHandle.transcript``)."""

    def start(self, cell: LiveCell) -> None:
        pass

    def render(self, cell: LiveCell, *, final: bool) -> None:
        pass

    def show_final(self) -> None:
        pass


# -- notebooks ---------------------------------------------------------------------------


class DisplaySink:
    """A notebook output updated in place; widget cards where a person must answer.

    ``interactive``: the frontend renders widgets (else approvals show the
    ``%llmgine approve`` command to type).  ``decide``/``answer`` are the
    runtime's, called by the cards' buttons.  ``display`` is IPython's
    ``display`` (injectable for benchmarks).

    ``blocking``: the cell waits for the turn.  The live output then starts
    and ends empty, and the finished turn is shown as a new output
    (``show_final``).  Tools that record outputs as first sent and ignore
    updates (nbval, which the tutorials run under) so see the answer.
    """

    def __init__(
        self,
        *,
        interactive: bool = True,
        decide: Any = None,
        answer: Any = None,
        user: str = "you",
        display: Callable[..., Any] | None = None,
        blocking: bool = False,
    ) -> None:
        # A blocked cell receives no clicks: its questions are asked with input() instead.
        self.interactive = interactive and not blocking
        self.blocking = blocking
        self.hints = not interactive and not blocking  # say which %llmgine command answers
        self._final: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._final_shown = False
        self.decide = decide
        self.answer = answer
        self.user = user
        self._display = display
        self.handle: Any = None
        self.root: Any = None  # the widget box, once there is something to click
        self._views: dict[tuple[str, str], Any] = {}
        self._markdown: dict[tuple[str, str], str] = {}
        self.cards: dict[str, Any] = {}
        self._transcript: Transcript | None = None  # whose redactor cleans the widget views

    def _show(self, data: dict[str, Any], **kwargs: Any) -> Any:
        if self._display is not None:
            return self._display(data, raw=True, **kwargs)
        from IPython.display import display

        return display(data, raw=True, **kwargs)

    def start(self, cell: LiveCell) -> None:
        if self.blocking:
            self.handle = self._show({}, display_id=True)  # an empty output: nothing to record yet
            return
        data = bundle(cell.transcript, cell.fmt, live=True, answer_hint=self.hints)
        self.handle = self._show(data, display_id=True)

    def render(self, cell: LiveCell, *, final: bool) -> None:
        t = cell.transcript
        if final:
            for card in self.cards.values():  # the decision shows on the card before it goes
                self._update_card(card, t)
            data, metadata = bundle(t, cell.fmt, live=False), turn_metadata(t)
            if self.blocking:
                self._final = (data, metadata)
                self._update({})  # the live output makes way for show_final()
            else:
                self._update(data, metadata=metadata)
            self._close_widgets()
            return
        if self.interactive and (self.root is not None or self._needs_widgets(t)):
            self._render_widgets(cell)
        else:
            self._update(bundle(t, cell.fmt, live=True, answer_hint=self.hints))

    def _update(self, data: dict[str, Any], **kwargs: Any) -> None:
        if self.handle is not None:
            self.handle.update(data, raw=True, **kwargs)

    def show_final(self) -> None:
        if self.blocking and self._final is not None and not self._final_shown:
            self._final_shown = True
            data, metadata = self._final
            self._show(data, metadata=metadata)

    # -- the widget form ----------------------------------------------------------------

    def _is_card(self, block: Block) -> bool:
        if isinstance(block, QuestionBlock):
            return True
        if isinstance(block, ToolBlock):
            return block.call_id in self.cards or (block.approval is not None and block.approval.pending)
        return False

    def _needs_widgets(self, t: Transcript) -> bool:
        return any(self._is_card(b) for b in t.blocks)

    def _render_widgets(self, cell: LiveCell) -> None:
        import ipywidgets as w

        t = self._transcript = cell.transcript
        last_text = next((b for b in reversed(t.blocks) if isinstance(b, TextBlock)), None)
        views: list[Any] = []
        run: list[Block] = []

        def flush_run() -> None:
            if run:
                key = ("md", str(id(run[0])))
                md = blocks_markdown(run, cell.fmt, live=True, last_text=last_text)
                views.append(self._markdown_view(key, md, "\n\n".join(block_text(b, cell.fmt) for b in run)))
                run.clear()

        for block in t.blocks:
            if self._is_card(block):
                flush_run()
                views.append(self._card_for(block, t).widget)
            else:
                run.append(block)
        flush_run()
        views.append(self._markdown_view(("tail", ""), tail_html(t, live=True), ""))

        if self.root is None:
            self.root = w.VBox(views)
            self.root.add_class("llmgine-turn")
            self._update({WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": self.root.model_id},
                           "text/plain": self._redact(transcript_text(t, cell.fmt))})
        elif list(self.root.children) != views:
            self.root.children = tuple(views)

    def _redact(self, text: str) -> str:
        return self._transcript.redact(text) if self._transcript is not None else text

    def _markdown_view(self, key: tuple[str, str], md: str, text: str) -> Any:
        import ipywidgets as w

        view = self._views.get(key)
        if view is None:
            view = self._views[key] = w.Output()
        md, text = self._redact(md), self._redact(text)
        if self._markdown.get(key) != md:
            self._markdown[key] = md
            view.outputs = (
                ({"output_type": "display_data", "data": {"text/markdown": md, "text/plain": text}, "metadata": {}},)
                if md else ()
            )
        return view

    def _card_for(self, block: Block, t: Transcript) -> Any:
        from .widgets import ApprovalCard, QuestionCard

        key = block.call_id if isinstance(block, ToolBlock) else block.request_id  # type: ignore[union-attr]
        card = self.cards.get(key)
        if card is None:
            if isinstance(block, ToolBlock):
                card = ApprovalCard(block, self.decide, user=self.user)
            else:
                card = QuestionCard(block, self.answer, user=self.user)  # type: ignore[arg-type]
            self.cards[key] = card
        self._update_card(card, t)
        return card

    @staticmethod
    def _update_card(card: Any, t: Transcript) -> None:
        from .widgets import ApprovalCard

        if isinstance(card, ApprovalCard):
            block = t.tool(card.call_id)
            if block is not None and block.approval is not None:
                if block.approval.pending:
                    card.refresh(block)
                else:
                    card.show_decision(block)
        else:
            for item in t.blocks:
                if isinstance(item, QuestionBlock) and item.request_id == card.request_id:
                    card.show_answer(item)

    def _close_widgets(self) -> None:
        if self.root is None:
            return
        from .widgets import close_tree

        try:
            close_tree(self.root)
        except Exception:
            log.debug("closing the turn's widgets failed", exc_info=True)
        self.root = None

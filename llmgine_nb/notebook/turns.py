"""``TurnRunner``: asking, retrying and stopping turns, each shown in a live cell.

A turn is a ``SendMessage`` command run on the bus's background loop; the
cell returns at once with a ``TurnHandle`` and the output updates in place
as the turn's events arrive (``TurnCells`` routes them).  Turns of one
session run one after the other; a second ``ask`` waits its turn.  The
kernel's interrupt cancels running turns (``InterruptHook``).

Everything it works with is given to it: the bus, the sessions and their
engines, the approval front end (for the cards' clicks and ``input()``),
the shell, the settings, the redactor, the user's namespace (for ``out=``) and two
functions - one that refreshes the notebook's tools before a turn, one
that says which front end is in use.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..context.notebook import NotebookContext
from ..engine.commands import CancelTurn, RetryTurn, SendMessage
from ..engine.turn import TurnResult
from .blocks import NoticeBlock
from .code_cells import put_code_below
from .config import FORMATS
from .handle import TurnHandle, answer_value
from .interrupt import InterruptHook
from .live import DisplaySink, LiveCell, NullSink
from .prompt_images import store_images
from .text_sink import TextSink
from .transcript import Transcript
from .voice import error_sentence

if TYPE_CHECKING:
    from ..engine import ChatEngine
    from .answers import Answerer
    from .cells import KernelParts
    from .sessions import SessionEngines

__all__ = ["TurnRunner"]

log = logging.getLogger("llmgine_nb.notebook")


class TurnRunner:
    """Starts turns in the background and shows each in its own live cell."""

    def __init__(
        self,
        parts: KernelParts,
        sessions: SessionEngines,
        answerer: Answerer,
        *,
        shell: Any,
        namespace: dict[str, Any] | None,
        refresh_tools: Callable[[], Any],
        ui: Callable[[], str],
    ) -> None:
        self.bus, self.config, self.redactor, self.cells = parts.bus, parts.config, parts.redactor, parts.cells
        self.sessions = sessions
        self.answerer = answerer
        self.shell = shell  # the IPython shell (None in a script): its kernel's interrupt stops turns
        self.namespace = namespace
        self.refresh_tools = refresh_tools
        self.ui = ui
        self.interrupt = InterruptHook(self._interrupted)
        self._handles: list[TurnHandle] = []
        self._active: dict[str, int] = {}  # session id -> turns asked and not finished
        self._active_lock = threading.Lock()
        self._locks: dict[str, asyncio.Lock] = {}  # one turn at a time per session

    @property
    def last(self) -> TurnHandle | None:
        """The most recent turn started here."""
        return self._handles[-1] if self._handles else None

    def ask(
        self, text: str, *, model: str | None, system: str | None, tools: bool, format: str | None,
        schema: type | None, session: str | None, display: bool, out: str | None, wait: bool, timeout: float | None,
        images: Sequence[Any] = (),
        code_cell: bool = False,
    ) -> TurnHandle:
        """Start a turn (see ``NotebookRuntime.ask``); ``code_cell``: its code goes into a new cell below."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("there is no prompt: give the question as text, e.g. %llmgine ask What is 2+2?")
        fmt = self.check_options(format, schema, out)
        engine = self.sessions.engine_for(session, create_named=True) if session else self.sessions.current
        command = SendMessage(
            session_id=engine.session_id, text=text, model=model, system=system, use_tools=tools,
            response_model=schema,
            images=store_images(images, getattr(self.shell, "user_ns", None) or {}, self.sessions.store),
        )
        # -f code puts the code into a new cell below: the payload that does it travels only in the
        # reply of the running cell, so the cell waits for the answer.
        code_below = (fmt == "code" or code_cell) and display and hasattr(self.shell, "set_next_input")
        handle = self._start(engine, text, command, model=model, fmt=fmt, schema=schema, display=display,
                             out=out, wait=wait or code_below, timeout=timeout,
                             warnings=self._unknown_variables(engine, text))
        if code_below and handle.done() and handle.result.status == "complete":
            put_code_below(self.shell, handle.result.text)
        return handle

    def _unknown_variables(self, engine: ChatEngine, text: str) -> list[str]:
        """A warning for each ``{name}`` in the prompt that names no variable (it goes to the model as typed)."""
        if self.namespace is None or not engine.compiler.interpolate:
            return []
        return [
            f"`{{{name}}}` is not a variable in this notebook, so it was sent as typed: define `{name}` and ask "
            f"again, or write `{{{{{name}}}}}` for literal braces."
            for name in NotebookContext(self.namespace).missing_names(text)
        ]

    def retry(self, *, format: str | None, display: bool, wait: bool, timeout: float | None) -> TurnHandle:
        """Run the current session's last message again (see ``NotebookRuntime.retry``)."""
        fmt = self.check_options(format, None, None)
        engine = self.sessions.current
        messages = self.sessions.store.messages(engine.session_id)
        last = next((m for m in reversed(messages) if m.role == "user"), None)
        if last is None:
            raise ValueError("there is no earlier message to retry in this session; ask something first")
        return self._start(engine, last.content or "", None, model=None, fmt=fmt, schema=None, display=display,
                           out=None, wait=wait, timeout=timeout)

    def check_options(self, format: str | None, schema: type | None, out: str | None) -> str:
        """The output format, once the options of a turn are known to be good (before anything starts)."""
        fmt = format or ("json" if schema is not None else self.config.format)
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if schema is not None and not _is_model_class(schema):
            raise ValueError(f"{schema!r} is not a pydantic model class; structured output needs a BaseModel subclass")
        if out is not None and not out.isidentifier():
            raise ValueError(f"{out!r} is not a valid variable name for --out")
        return fmt

    def _start(
        self, engine: ChatEngine, prompt: str, command: SendMessage | None, *, model: str | None, fmt: str,
        schema: type | None, display: bool, out: str | None, wait: bool, timeout: float | None,
        warnings: list[str] | None = None,
    ) -> TurnHandle:
        """Show the turn's cell and run ``command`` (None: the engine's retry) in the background."""
        self.refresh_tools()
        self.interrupt.install(self.shell)
        session_id = engine.session_id
        transcript = Transcript(prompt, model=model or engine.model, redactor=self.redactor)
        transcript.blocks.extend(NoticeBlock(warning, "warning") for warning in warnings or ())
        transcript.out = out
        if not self._active.get(session_id):
            transcript.mark_running()  # nothing ahead of it: it starts now, not "waiting"
        blocking = wait or (self.config.approval_prompt == "input" and self.ui() != "widgets")
        cell = LiveCell(transcript, self._sink(display, blocking=blocking), fmt=fmt,
                        max_updates_per_s=self.config.updates_per_second)
        cell.start()
        with self._active_lock:
            self._active[session_id] = self._active.get(session_id, 0) + 1
        future = self.bus.background.submit(self._run(session_id, cell, command, out=out, fmt=fmt))

        def finished(_: Any) -> None:  # runs on the loop thread: it must not wait for the main thread's locks
            with self._active_lock:
                self._active[session_id] -= 1

        future.add_done_callback(finished)
        handle = TurnHandle(prompt, session_id, cell, future, fmt, schema,
                            answer_while_waiting=self.answerer.answer_while_waiting, cancel=self.cancel)
        self._handles = [h for h in self._handles[-20:] if not h.done()] + [handle]
        if blocking:
            handle.wait(timeout)
        return handle

    async def _run(
        self, session_id: str, cell: LiveCell, command: SendMessage | None, *, out: str | None = None, fmt: str = "markdown"
    ) -> TurnResult:
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:  # one turn at a time per session; a second ask waits its turn
            self.cells.open(session_id, cell)
            cell.change(lambda t: t.mark_running())
            try:
                result = await self.bus.execute(command if command is not None else RetryTurn(session_id=session_id))
            finally:
                self.cells.close(session_id, cell)
        if result.success:  # a TurnResult, or its JSON when the command crossed a wire
            turn = TurnResult.read(result.result, command.output_type() if command is not None else None)
            if out:
                self._assign(out, turn, fmt)
            cell.finish()
            return turn
        # The engine refused the turn before it began (e.g. an empty message).
        reason = error_sentence(result.error or "the turn could not start")
        cell.change(lambda t: t.fail_locally("internal", reason[:1].upper() + reason[1:], result.error or ""))
        if out:
            self._assign(out, None, fmt)
        cell.finish()
        return TurnResult(turn_id="", session_id=session_id, status="failed", reason=reason, error_kind="internal")

    def _sink(self, display: bool, *, blocking: bool = False) -> Any:
        if not display:
            return NullSink()
        ui = self.ui()
        if ui == "text":
            return TextSink(answer_hint=self.config.approval_prompt == "command")
        return DisplaySink(
            interactive=ui == "widgets", decide=self.answerer.decide_from_card, answer=self.answerer.answer_from_card,
            user=self.config.user, blocking=blocking,
        )

    def _assign(self, name: str, turn: TurnResult | None, fmt: str) -> None:
        """Set ``name`` to the answer; after a failed or stopped turn, leave it undefined (its output says so)."""
        if self.namespace is None:
            return
        if turn is not None and turn.status not in ("failed", "cancelled"):
            self.namespace[name] = answer_value(turn, fmt)
        else:
            self.namespace.pop(name, None)  # an older answer must not pass for this one

    # -- stopping -------------------------------------------------------------------------

    def stop(self) -> int:
        """Cancel every running turn (partial replies are kept, marked); returns how many."""
        return sum(self.cancel(session_id, "stopped by the user") for session_id in self.cells.running_sessions())

    def cancel(self, session_id: str, reason: str) -> bool:
        """Cancel the turn running in ``session_id``; True if one was running."""
        if not self.sessions.serves(session_id):
            return False
        result = self.bus.execute_sync(CancelTurn(session_id=session_id, reason=reason), timeout=30)
        return bool(result.success and result.result)

    def _interrupted(self) -> bool:
        """The kernel's interrupt between cells: cancel the running turns (without waiting: a signal handler)."""
        running = self.cells.running_sessions()
        for session_id in running:
            self.bus.background.submit(self.bus.execute(CancelTurn(session_id=session_id, reason="interrupted")))
        return bool(running)


def _is_model_class(value: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(value, type) and issubclass(value, BaseModel)

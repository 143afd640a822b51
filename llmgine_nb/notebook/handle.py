"""``TurnHandle``: a turn running in the background, as ``NotebookRuntime.ask`` returns it.

It is given what it needs: the turn's future and cell, a function that
answers what the turn asks while a cell waits (``input()``), and one that
cancels the turn.  It knows nothing of the runtime that made it.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from ..engine.turn import TurnResult
from .background import BackgroundHandle
from .live import LiveCell
from .markdown import extract_code, parse_json_reply
from .transcript import Transcript

__all__ = ["TurnHandle"]


class TurnHandle(BackgroundHandle[TurnResult]):
    """A turn started by ``NotebookRuntime.ask``: running in the background, or done.

    ``wait()`` blocks until it ends and returns the ``TurnResult``; a
    KeyboardInterrupt (a kernel interrupt) while waiting cancels the turn,
    keeping the partial reply, then is raised again.
    """

    noun = "the turn"

    def __init__(
        self,
        prompt: str,
        session_id: str,
        cell: LiveCell,
        future: concurrent.futures.Future[TurnResult],
        fmt: str,
        schema: type | None,
        *,
        answer_while_waiting: Callable[[str], None],
        cancel: Callable[[str, str], bool],
    ) -> None:
        self._answer_while_waiting = answer_while_waiting  # (session id): asks what waits, with input()
        self._cancel = cancel  # (session id, reason) -> True if a turn was running
        self.prompt = prompt
        self.session_id = session_id
        self.cell = cell
        self.future = future
        self.format = fmt
        self.schema = schema

    @property
    def transcript(self) -> Transcript:
        """What the turn showed so far: text, tool calls, approvals, usage."""
        return self.cell.transcript

    @property
    def status(self) -> str:
        if not self.future.done():
            return self.transcript.status
        return self.result.status

    @property
    def text(self) -> str:
        return self.result.text if self.done() else self.transcript.text

    @property
    def value(self) -> Any:
        """The answer as a value: the structured object, parsed JSON, extracted code, or the text."""
        return answer_value(self.result, self.format)

    def wait(self, timeout: float | None = None) -> TurnResult:
        """Block until the turn ends; answers approvals with ``input()`` meanwhile (clicks cannot arrive)."""
        try:
            return self._wait(timeout, lambda: self._answer_while_waiting(self.session_id))
        finally:
            if self.future.done():
                self.cell.sink.show_final()  # a blocking ask's answer, as an output of its own

    def cancel(self, reason: str = "stopped by the user") -> bool:
        """Cancel the turn (the partial reply is kept, marked); True if it was still running."""
        if self.future.done():
            return False
        stopped = self._cancel(self.session_id, reason)
        try:
            self.future.result(timeout=10)
        except Exception:  # noqa: BLE001 - cancelled or failed: either way it is over
            pass
        return stopped

    def __repr__(self) -> str:
        prompt = self.prompt if len(self.prompt) <= 40 else self.prompt[:39] + "…"
        return f"<TurnHandle {prompt!r} {self.status}>"


def answer_value(result: TurnResult, fmt: str) -> Any:
    """A turn's answer as a value: the structured object, parsed JSON, extracted code, or the text."""
    if result.structured is not None:
        return result.structured
    if fmt == "json":
        try:
            return parse_json_reply(result.text)
        except ValueError:
            return result.text
    if fmt == "code":
        return extract_code(result.text)[1]
    return result.text

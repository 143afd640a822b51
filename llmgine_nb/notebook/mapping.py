"""A prompt over data in the notebook: ``runtime.map`` and ``%llmgine map``, with a progress bar.

The job (``batch.MapJob``) runs on the bus's background loop; the cell
returns at once with a ``MapHandle`` (``wait=True`` blocks, as a turn's
``--wait`` does).  Progress shows as an ipywidgets bar where widgets render,
as a line of text updated in place elsewhere, and ends as one static summary
(so a saved notebook needs no widget state).  The cost cap's question shows
on the bar with Yes/No buttons, and is answered like any other question
(``%llmgine answer cap-... yes``, ``rt.answer(...)``, ``input()`` while a
cell waits).
"""

from __future__ import annotations

import concurrent.futures
import glob
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..batch import MapJob, MapProgress, MapResult
from ..batch.rows import is_frame
from .background import BackgroundHandle

__all__ = ["MapHandle", "MapView", "progress_text"]

_UPDATES_PER_S = 4.0


def progress_text(p: MapProgress) -> str:
    """One line: how far the job is, what it cost, and the question if it waits for one."""
    done = p.answered + p.failed
    line = f"map {p.job_id}: {done}/{p.total} rows"
    if p.reused:
        line += f" ({p.reused} from the store)"
    if p.failed:
        line += f", {p.failed} failed"
    line += f", ${p.cost_usd:.4f} spent"
    if p.state == "asking":
        line += f"\n{p.question}\nanswer: %llmgine answer {p.question_id} yes (or no)"
    elif p.state in ("finished", "stopped"):
        line += f" - {p.state}"
    return line


class MapView:
    """Where a job's progress shows: a widget bar, a text line updated in place, or nothing."""

    def __init__(self, mode: str, *, answer: Callable[[str, bool], Any] | None = None) -> None:
        self.mode = mode  # widgets, text (a display handle), final (only the summary), none
        self.answer = answer
        self._lock = threading.Lock()
        self._last = 0.0
        self._handle: Any = None
        self._widgets: Any = None
        self._closing: list[Any] = []
        self._question_id = ""

    def start(self, total: int) -> None:
        from IPython.display import display

        if self.mode == "widgets":
            import ipywidgets as w

            bar = w.IntProgress(value=0, min=0, max=max(total, 1), description="map")
            label = w.Label("")
            yes, no = w.Button(description="Yes, go on", button_style="warning"), w.Button(description="No, stop")
            yes.on_click(lambda _: self._answered(True))
            no.on_click(lambda _: self._answered(False))
            buttons = w.HBox([yes, no], layout=w.Layout(display="none"))
            line = w.HBox([bar, label])
            box = w.VBox([line, buttons])
            self._widgets = (bar, label, buttons)
            self._closing = [box, line, buttons, bar, label, yes, no]
            self._handle = display(box, display_id=True)
        elif self.mode == "text":
            self._handle = display({"text/plain": f"map: 0/{total} rows"}, raw=True, display_id=True)

    def update(self, p: MapProgress) -> None:
        """Called on the loop's thread; at most a few redraws a second, but every question and the end at once."""
        now = time.monotonic()
        urgent = p.state != "running" or p.answered + p.failed == p.total
        with self._lock:
            if not urgent and now - self._last < 1 / _UPDATES_PER_S:
                return
            self._last = now
            if self._widgets is not None:
                bar, label, buttons = self._widgets
                bar.value = p.answered + p.failed
                label.value = progress_text(p).split("\n")[0].partition(": ")[2]
                self._question_id = p.question_id if p.state == "asking" else ""
                buttons.layout.display = "flex" if self._question_id else "none"
                if self._question_id:
                    label.value = p.question
            elif self._handle is not None:
                self._handle.update({"text/plain": progress_text(p)}, raw=True)

    def finish(self, result: MapResult) -> None:
        """The summary replaces the bar (or is shown, when nothing showed before)."""
        data = {"text/plain": result.summary()}
        if self.mode == "none":
            return
        for widget in self._closing:
            widget.close()
        if self._handle is not None:
            self._handle.update(data, raw=True)
        elif self.mode == "final":
            from IPython.display import display

            display(data, raw=True)

    def _answered(self, yes: bool) -> None:
        if self._question_id and self.answer is not None:
            self.answer(self._question_id, yes)


class MapHandle(BackgroundHandle[MapResult]):
    """A map job running in the background: ``wait()``, ``result``, ``value``, ``cancel()``."""

    noun = "the map job"

    def __init__(self, job: MapJob, future: concurrent.futures.Future[MapResult], view: MapView,
                 answer_while_waiting: Callable[[str | None], None]) -> None:
        self.job = job
        self.future = future
        self.view = view
        self._answer_while_waiting = answer_while_waiting

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def value(self) -> Any:
        """A DataFrame with the answers as columns when the rows were one; else the list of answers."""
        result = self.result
        return result.to_frame() if is_frame(result.source) else result.values

    def wait(self, timeout: float | None = None) -> MapResult:
        """Block until the job ends; the cost cap's question is asked with ``input()`` meanwhile."""
        return self._wait(timeout, lambda: self._answer_while_waiting(None))

    def cancel(self) -> bool:
        """Stop the job: rows answered so far are kept in the store; the next run asks the rest."""
        return self.future.cancel()

    def __repr__(self) -> str:
        state = self.result.summary() if self.done() and not self.future.cancelled() else "running"
        return f"<MapHandle {self.job_id}: {state}>"


def start_map(
    job: MapJob, loop: Any, *, mode: str, answer: Callable[[str, bool], Any],
    answer_while_waiting: Callable[[str | None], None], namespace: dict[str, Any] | None, out: str | None,
    wait: bool, timeout: float | None,
) -> MapHandle:
    """Run ``job`` on ``loop`` (a ``BackgroundLoop``), shown as ``mode`` says; set ``out`` when it ends."""
    if out is not None and not out.isidentifier():
        raise ValueError(f"{out!r} is not a valid variable name for --out")
    view = MapView("text" if mode == "markdown" else mode, answer=answer)
    job.on_progress = view.update
    view.start(len(job.items))

    async def run() -> MapResult:
        result = await job.run()
        if not wait:
            view.finish(result)
        return result

    handle = MapHandle(job, loop.submit(run()), view, answer_while_waiting)
    if out is not None and namespace is not None:
        def assign(_: Any) -> None:
            if handle.done() and not handle.future.cancelled() and handle.future.exception() is None:
                namespace[out] = handle.value

        handle.future.add_done_callback(assign)
    if wait:
        view.finish(handle.wait(timeout))
    return handle


def map_command(runtime: Any, rest: str) -> MapHandle:
    """``%llmgine map DATA [options] -- TEMPLATE``: the line read, the rows found, the job started."""
    from IPython.core.error import UsageError

    from .magic_options import parse_subcommand

    options, sep, template = rest.partition(" -- ")
    if not sep or not template.strip():
        raise UsageError("write the prompt after --: %llmgine map DATA [options] -- Classify the sentiment of: {text}")
    args = parse_subcommand("map", options)
    namespace = runtime.namespace or {}
    rows = namespace.get(args.data, args.data)  # a variable, else a glob pattern of files
    if rows is args.data and not glob.has_magic(args.data) and not Path(args.data).is_file():
        raise UsageError(f"there is no variable or file named {args.data!r}: give a DataFrame or list in your "
                         "namespace, or a glob pattern such as 'notes/*.txt'")
    schema = None
    if args.schema:
        schema = namespace.get(args.schema)
        if schema is None:
            raise UsageError(f"there is no {args.schema!r} in the notebook; define the pydantic model first")
    try:
        return runtime.map(template.strip(), rows, name=args.name, schema=schema, model=args.model,
                           concurrency=args.concurrency, max_cost=args.max_cost, retries=args.retries,
                           out=args.out, wait=args.wait)
    except KeyboardInterrupt:
        raise UsageError("the map job was stopped; the rows answered so far are kept and the next run "
                         "asks only the others") from None


def map_in_notebook(
    runtime: Any, template: str, rows: Any, answer_while_waiting: Callable[[str | None], None], *, name: str | None,
    schema: type | None, model: str | None, concurrency: int, max_cost: float | None, retries: int, display: bool,
    wait: bool, timeout: float | None, out: str | None,
) -> MapHandle:
    """``NotebookRuntime.map``: the job made with the runtime's bus, store and model, then started."""
    if model is not None:
        from ..llm import get_llm

        llm = get_llm(model, bus=runtime.bus)
    else:
        llm = runtime.engine.llm  # the current session's model
    job = MapJob(llm, template, rows, store=runtime.store.map_jobs, bus=runtime.bus, name=name, schema=schema,
                 concurrency=concurrency, max_cost=max_cost, retries=retries,
                 confirm_timeout=runtime.config.approval_timeout)
    return start_map(job, runtime.bus.background, mode=("none" if not display else "final" if wait else runtime.ui),
                     answer=lambda ident, yes: runtime.answer(ident, yes), answer_while_waiting=answer_while_waiting,
                     namespace=runtime.namespace, out=out, wait=wait, timeout=timeout)

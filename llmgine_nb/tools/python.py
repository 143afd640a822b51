"""``run_python``: the model writes Python, a person approves it, it runs - in another process.

Opt-in: nothing registers it unless you do::

    manager.register(python_tool(share={"sales": sales_df}))

Every call needs approval, and the approval card shows the code exactly as
it will run (``RequestApproval.preview``): numbered lines, and control
characters such as right-to-left overrides or zero-width spaces shown as
escapes, so that what is read is what runs.  "Always allow" is not
remembered for this tool: each piece of code is approved on its own.

By default the code runs in a separate worker process (``sandbox.py``) with
a timeout that really stops it, a memory limit, and nothing of the engine's
(tools, approval policies, keys, the store).  Values are shared explicitly
(``share=`` or ``tool.share(...)``); its variables persist between calls
until a timeout or crash restarts the worker.  Output: what it printed, the
last expression's value (as text, and as JSON when it is plain data), any
exception, and open matplotlib figures as PNG images.

``in_kernel=True`` (with a ``namespace``, e.g. ``get_ipython().user_ns``)
runs the code inside the kernel instead, as people who want the notebook's
own variables may ask for: the card then says the code can change anything,
and a timeout only stops waiting for it.
"""

from __future__ import annotations

import ast
import asyncio
import io
import itertools
import linecache
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import Field

from ..text import clip
from .results import ToolError, ToolOutput
from .sandbox import PythonWorker
from .tool import Tool

__all__ = ["python_tool", "run_code", "code_card", "IN_KERNEL_WARNING"]

IN_KERNEL_WARNING = (
    "IN THE KERNEL: this code runs inside the notebook's own process and can change anything there - "
    "tools, approval policies, keys, the store."
)

_counter = itertools.count(1)


class _ThreadRouter(io.TextIOBase):
    """Stands in for sys.stdout/stderr: writes from a capturing thread go to its buffer.

    Other threads (the kernel, other tools) keep writing to the real stream,
    and concurrent runs each capture only their own output.
    """

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.local = threading.local()

    def _target(self) -> Any:
        return getattr(self.local, "buffer", None) or self.fallback

    def write(self, text: str) -> int:
        written: int = self._target().write(text)
        return written

    def flush(self) -> None:
        target = self._target()
        if hasattr(target, "flush"):
            target.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno ... of the real stream
        return getattr(self.fallback, name)


_router_lock = threading.Lock()
_routers: dict[str, _ThreadRouter] = {}
_active = 0


@contextmanager
def _capture() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Capture this thread's stdout and stderr."""
    global _active
    out, err = io.StringIO(), io.StringIO()
    with _router_lock:
        for stream in ("stdout", "stderr"):
            current = getattr(sys, stream)
            if not isinstance(current, _ThreadRouter):
                router = _ThreadRouter(current)
                _routers[stream] = router
                setattr(sys, stream, router)
        _active += 1
    routers = dict(_routers)
    routers["stdout"].local.buffer = out
    routers["stderr"].local.buffer = err
    try:
        yield out, err
    finally:
        routers["stdout"].local.buffer = None
        routers["stderr"].local.buffer = None
        with _router_lock:
            _active -= 1
            if _active == 0:
                for stream, router in _routers.items():
                    if getattr(sys, stream) is router:
                        setattr(sys, stream, router.fallback)
                _routers.clear()


def run_code(code: str, namespace: MutableMapping[str, Any], *, max_repr: int = 2000) -> dict[str, Any]:
    """Execute ``code`` in ``namespace``.

    Returns ``{"stdout", "stderr", "result", "error"}``: ``result`` is the
    repr of the last expression (None if there is none or it is None);
    ``error`` is None or ``{"type", "message", "traceback"}``.
    """
    filename = f"<run_python-{next(_counter)}>"
    # Registered so that tracebacks can show the lines of the code.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    result: str | None = None
    error: dict[str, str] | None = None
    with _capture() as (out, err):
        try:
            tree = ast.parse(code, filename, "exec")
            last = tree.body[-1] if tree.body else None
            if isinstance(last, ast.Expr):
                tree.body.pop()  # evaluated on its own below, for its value
            else:
                last = None
            scope = cast(dict[str, Any], namespace)  # exec needs a dict; user_ns and our default are dicts
            exec(compile(tree, filename, "exec"), scope)  # noqa: S102 - runs approved code only
            if last is not None:
                value = eval(compile(ast.Expression(last.value), filename, "eval"), scope)  # noqa: S307
                if value is not None:
                    result = clip(repr(value), max_repr, note=True)
        except (Exception, SystemExit) as exc:  # the model's errors are its to read
            error = {"type": type(exc).__name__, "message": str(exc), "traceback": _short_traceback(exc, filename)}
    return {"stdout": out.getvalue(), "stderr": err.getvalue(), "result": result, "error": error}


def _short_traceback(exc: BaseException, filename: str) -> str:
    """Only the frames of the model's code, then the exception line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def format_outcome(outcome: dict[str, Any]) -> str:
    """The text the model reads for one run."""
    parts = [outcome["notice"].rstrip("\n")] if outcome.get("notice") else []
    if outcome["stdout"]:
        parts.append("stdout:\n" + outcome["stdout"].rstrip("\n"))
    if outcome["stderr"]:
        parts.append("stderr:\n" + outcome["stderr"].rstrip("\n"))
    if outcome["result"] is not None:
        parts.append("result: " + outcome["result"])
    images = outcome.get("images") or []
    if images:
        parts.append(f"images: {len(images)} PNG {'figure' if len(images) == 1 else 'figures'} (shown to the user)")
    if outcome["error"] is not None:
        parts.append(outcome["error"]["traceback"])
    return "\n".join(parts) if parts else "(the code ran; no output and no value)"


# Characters that make text read differently from what it is: bidirectional controls
# (a right-to-left override can make `evil() # "` look like a comment), zero-width
# characters, and C0/C1 controls other than tab and newline.
_INVISIBLE = {
    *range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0), 0xAD, 0x061C,
    *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0xFEFF,
}


def _visible(line: str) -> str:
    if line.isascii() and line.isprintable():
        return line
    return "".join(
        (f"\\u{ord(ch):04x}" if ord(ch) > 0xFF else f"\\x{ord(ch):02x}") if ord(ch) in _INVISIBLE else ch
        for ch in line
    )


def code_card(code: str, heading: str) -> str:
    """The approval card's text for ``code``: a heading, then every line numbered, controls escaped.

    Every character of the code is there (nothing is cut, however long);
    what cannot be seen is written as an escape such as ``\\u202e``.
    """
    lines = code.split("\n")
    hidden = sum(1 for ch in code if ord(ch) in _INVISIBLE and ch not in "\t\n")
    width = len(str(len(lines)))
    size = f"{len(lines)} {'line' if len(lines) == 1 else 'lines'}, {len(code):,} characters"
    warning = (
        f"\nWARNING: the code contains {hidden} invisible or control "
        f"{'character' if hidden == 1 else 'characters'}, shown as \\u escapes; read them before approving."
        if hidden else ""
    )
    body = "\n".join(f"{number:>{width}} | {_visible(line)}" for number, line in enumerate(lines, 1))
    return f"{heading} ({size}){warning}\n{body}"


def python_tool(
    namespace: MutableMapping[str, Any] | None = None,
    *,
    share: Mapping[str, Any] | None = None,
    in_kernel: bool = False,
    name: str = "run_python",
    timeout: float = 60.0,
    memory_mb: int = 1024,
    workdir: str | Path | None = None,
    permissions: set[str] | frozenset[str] = frozenset(),
) -> Tool:
    """A ``run_python`` tool; the code runs in a separate worker process unless ``in_kernel=True``.

    ``share``: values the code can use, copied into its process (plain data,
    DataFrames, file paths); more later with ``tool.share(name=value)``.
    ``timeout`` stops the code (its process is killed); ``memory_mb`` caps
    its memory; ``workdir`` is its working directory (default: a new
    temporary one).  ``tool.worker`` is the ``PythonWorker``; call
    ``tool.worker.stop()`` to end it.

    ``in_kernel=True`` is the explicit opt-in to run in this process, in
    ``namespace`` (a fresh dict if None; ``tool.namespace``): the card says
    the code can change anything, and a timeout only stops waiting.

    Either way the approval policy is fixed to "always", the card shows the
    exact code, and the tool runs alone (never beside other calls).
    """
    if namespace is not None and not in_kernel:
        raise TypeError(
            "namespace= shares this kernel's own objects, which only the in-kernel mode can do: pass "
            "in_kernel=True to opt in (approved code can then change anything here), or share={...} "
            "values with the separate process the code runs in by default"
        )
    if in_kernel:
        made = _in_kernel_tool(namespace, share, name, timeout, permissions)
    else:
        made = _worker_tool(share, name, timeout, memory_mb, workdir, permissions)
    # What makes offering it safe: it always asks, the card shows the very
    # code that will run, and it never runs beside other calls.
    made.locked_options = frozenset({"approval", "remember_approval", "risk", "preview", "concurrent"})
    return made


_CODE = Annotated[str, Field(description="Python source to run. The value of the last expression is returned.")]
_DOC = "Run Python code once the user has approved it; returns what it printed, the last expression's value and any error."


def _outcome_to_output(outcome: dict[str, Any]) -> ToolOutput:
    if outcome["error"] is not None:
        raise ToolError(format_outcome(outcome), value=outcome)
    return ToolOutput(format_outcome(outcome), outcome)


def _worker_tool(
    share: Mapping[str, Any] | None, name: str, timeout: float, memory_mb: int,
    workdir: str | Path | None, permissions: set[str] | frozenset[str],
) -> Tool:
    worker = PythonWorker(timeout=timeout, memory_mb=memory_mb, workdir=workdir)
    if share:
        worker.share(**share)
    limit = f"{memory_mb} MB of memory" if memory_mb else "no memory limit"
    heading = f"Python, run in a separate process ({timeout:g} s timeout, {limit}; no access to the engine or keys)"

    async def run_python(code: _CODE) -> ToolOutput:
        try:
            outcome = await asyncio.to_thread(worker.run, code)
        except asyncio.CancelledError:
            worker.stop()  # the turn was cancelled: the code stops too, it does not run on unseen
            raise
        return _outcome_to_output(outcome)

    run_python.__doc__ = _DOC
    made = Tool.from_function(
        run_python, name=name, risk="destructive", approval="always", permissions=permissions,
        timeout=timeout + 30,  # the worker's own timeout stops the code; this only guards the guard
        concurrent=False, preview=lambda arguments: code_card(str(arguments.get("code", "")), heading),
        remember_approval=False,
    )
    made.worker = worker  # type: ignore[attr-defined]
    made.share = worker.share  # type: ignore[attr-defined]
    return made


def _in_kernel_tool(
    namespace: MutableMapping[str, Any] | None, share: Mapping[str, Any] | None, name: str,
    timeout: float, permissions: set[str] | frozenset[str],
) -> Tool:
    ns: MutableMapping[str, Any] = namespace if namespace is not None else {"__name__": "__run_python__"}
    ns.update(share or {})

    def run_python(code: _CODE) -> ToolOutput:
        return _outcome_to_output(run_code(code, ns))

    run_python.__doc__ = _DOC
    made = Tool.from_function(
        run_python, name=name, risk="destructive", approval="always", permissions=permissions,
        timeout=timeout, concurrent=False,
        preview=lambda arguments: code_card(str(arguments.get("code", "")), IN_KERNEL_WARNING),
        remember_approval=False,
    )
    made.namespace = ns  # type: ignore[attr-defined]
    made.share = ns.update  # type: ignore[attr-defined]
    return made

"""``run_python``: the model writes Python, a person approves it, it runs.

Opt-in: nothing registers it unless you do::

    manager.register(python_tool(namespace=get_ipython().user_ns))

Every call needs approval, and the approval request shows the code itself
(``RequestApproval.preview``).  "Always allow" is not remembered for this
tool: each piece of code is approved on its own.  The code runs in the
namespace you give (a notebook's ``user_ns`` shares its variables) or in a
fresh one kept between calls.  Output: what it printed, the value of its
last expression and any exception (type, message, a short traceback).

This is not a sandbox: approved code can do anything Python can.  A timeout
stops waiting for the code, but cannot stop a thread that is still running.
"""

from __future__ import annotations

import ast
import io
import itertools
import linecache
import sys
import threading
import traceback
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Annotated, Any

from pydantic import Field

from ..text import clip
from .results import ToolError, ToolOutput
from .tool import Tool

__all__ = ["python_tool", "run_code"]

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

    def write(self, text: str) -> int:  # type: ignore[override]
        return self._target().write(text)  # type: ignore[no-any-return]

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
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 - runs approved code only
            if last is not None:
                value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)  # noqa: S307
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
    parts = []
    if outcome["stdout"]:
        parts.append("stdout:\n" + outcome["stdout"].rstrip("\n"))
    if outcome["stderr"]:
        parts.append("stderr:\n" + outcome["stderr"].rstrip("\n"))
    if outcome["result"] is not None:
        parts.append("result: " + outcome["result"])
    if outcome["error"] is not None:
        parts.append(outcome["error"]["traceback"])
    return "\n".join(parts) if parts else "(the code ran; no output and no value)"


def python_tool(
    namespace: MutableMapping[str, Any] | None = None,
    *,
    name: str = "run_python",
    timeout: float | None = 60.0,
    permissions: set[str] | frozenset[str] = frozenset(),
) -> Tool:
    """A ``run_python`` tool bound to ``namespace`` (a fresh dict, kept between calls, if None).

    Its approval policy is fixed to "always", the approval request shows the
    code (``preview``), and it runs alone (never beside other calls).  The
    namespace is ``tool.namespace``.
    """
    ns: MutableMapping[str, Any] = namespace if namespace is not None else {"__name__": "__run_python__"}

    def run_python(
        code: Annotated[str, Field(description="Python source to run. The value of the last expression is returned.")],
    ) -> ToolOutput:
        """Run Python code once the user has approved it; returns what it printed, the last expression's value and any error."""
        outcome = run_code(code, ns)
        if outcome["error"] is not None:
            raise ToolError(format_outcome(outcome), value=outcome)
        return ToolOutput(format_outcome(outcome), outcome)

    made = Tool.from_function(
        run_python,
        name=name,
        risk="destructive",
        approval="always",
        permissions=permissions,
        timeout=timeout,
        concurrent=False,
        preview=lambda arguments: str(arguments.get("code", "")),
        remember_approval=False,
    )
    # What makes offering it safe: it always asks, the card shows the very
    # code that will run, and it never runs beside other calls.
    made.locked_options = frozenset({"approval", "remember_approval", "risk", "preview", "concurrent"})
    made.namespace = ns  # type: ignore[attr-defined]
    return made

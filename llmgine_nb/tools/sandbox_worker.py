"""The worker process that runs approved ``run_python`` code (started by ``sandbox.py``).

Standard library only, and started with ``python -I`` from its file path: it
imports nothing of llmgine_nb, so it holds no tools, policies, keys or store
of the engine.  Requests arrive as JSON lines on a private copy of stdin and
answers leave as JSON lines on a private copy of stdout; the real file
descriptors 0 and 1 point at /dev/null, so neither ``input()`` nor a child
process writing to fd 1 can read or corrupt the protocol.  ``print`` output
of the code is captured per run.

    request  {"op": "run", "code": "..."}            answer {"stdout", "stderr", "result", "json",
             {"op": "share", "path": "/tmp/x.pkl"}          "error", "images": [base64 PNG, ...]}
"""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import json
import linecache
import os
import pickle
import sys
import traceback
from typing import Any

MAX_REPR = 2000
MAX_JSON = 100_000


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _short_traceback(exc: BaseException, filename: str) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _as_json(value: Any) -> Any:
    """The value itself when it is small plain JSON, else None."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value if len(text) <= MAX_JSON else None


def _figures() -> list[str]:
    """Open matplotlib figures as base64 PNGs (then closed), if the code used pyplot."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    images = []
    for number in pyplot.get_fignums():
        buffer = io.BytesIO()
        pyplot.figure(number).savefig(buffer, format="png")
        images.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    pyplot.close("all")
    return images


def run(code: str, namespace: dict[str, Any], number: int) -> dict[str, Any]:
    filename = f"<run_python-{number}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    out, err = io.StringIO(), io.StringIO()
    result: str | None = None
    as_json: Any = None
    error: dict[str, str] | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            tree = ast.parse(code, filename, "exec")
            last = tree.body[-1] if tree.body else None
            if isinstance(last, ast.Expr):
                tree.body.pop()  # evaluated on its own below, for its value
            else:
                last = None
            exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 - the person approved this code
            if last is not None:
                value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)  # noqa: S307
                if value is not None:
                    text = repr(value)
                    result = text if len(text) <= MAX_REPR else text[:MAX_REPR] + f"... [{len(text) - MAX_REPR} more]"
                    as_json = _as_json(value)
        except BaseException as exc:  # noqa: B036 - SystemExit, KeyboardInterrupt: the code's, to report
            error = {"type": type(exc).__name__, "message": str(exc), "traceback": _short_traceback(exc, filename)}
        try:
            images = _figures()
        except Exception as exc:  # noqa: BLE001 - a figure that cannot be drawn is reported, not fatal
            images = []
            err.write(f"(a figure could not be saved: {type(exc).__name__}: {exc})\n")
    return {
        "stdout": out.getvalue(), "stderr": err.getvalue(), "result": result, "json": as_json,
        "error": error, "images": images,
    }


def main() -> None:
    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - for the life of the process
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    sys.argv = ["run_python"]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    number = 0
    for line in requests:
        request = json.loads(line)
        if request.get("op") == "share":
            with open(request["path"], "rb") as handle:
                namespace.update(pickle.load(handle))  # noqa: S301 - written by our own parent process
            answer: dict[str, Any] = {"shared": True}
        else:
            number += 1
            answer = run(request["code"], namespace, number)
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()

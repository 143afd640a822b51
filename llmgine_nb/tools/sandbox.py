"""A separate process that runs approved Python code: ``PythonWorker``.

The code the model wrote runs in a worker process (``sandbox_worker.py``),
not in the kernel, so that:

- a timeout really stops it: the worker's whole process group is killed,
  and the next run starts a fresh worker (saying its variables are gone);
- it has a memory limit (``RLIMIT_AS``; a bigger allocation is a
  ``MemoryError`` in the code, or the end of the worker);
- it has none of the engine's objects: no tools, approval policies, keys or
  store.  The worker is started with ``python -I`` and an environment that
  holds no credentials (only ``PATH``, ``HOME``, locale and temp settings),
  in its own working directory.

Values are shared explicitly (``worker.share(df=frame, path=...)``: pickled
to the worker, so plain data, DataFrames and paths travel, the engine's
objects do not).  Results come back as text, JSON and PNG images (open
matplotlib figures).  What it does *not* stop: the code runs as the same
user, so it can read and write that user's files (the database file
included) and reach the network.  See the README's security section.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["PythonWorker", "WORKER_SCRIPT", "scrubbed_environment"]

log = logging.getLogger("llmgine_nb.tools.sandbox")

WORKER_SCRIPT = Path(__file__).with_name("sandbox_worker.py")

# The only settings the worker inherits: enough to run Python, never a credential.
_KEPT = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT")


def scrubbed_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: a short allowlist (no keys, no ``LLMGINE_*``), plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if name in _KEPT or name.startswith("LC_")}
    env.update({"MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra or {})
    return env


class PythonWorker:
    """One worker process, started on first use and again after it was stopped or died.

    ``timeout`` (seconds) bounds each run; ``memory_mb`` the worker's address
    space (0: no limit); ``workdir`` is where the code runs (default: a new
    temporary directory).  Thread-safe: runs are serialised.
    """

    def __init__(self, *, timeout: float = 60.0, memory_mb: int = 1024, workdir: str | Path | None = None) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="llmgine-run-python-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._shared: dict[str, Any] = {}
        self._buffer = b""
        self.restarts = 0  # workers started after the first (a timeout or a crash ended the previous one)
        self._state_lost = False  # the last worker was stopped mid-run: its variables are gone

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def _start(self) -> None:
        if self._process is not None:
            self.restarts += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-I", "-u", str(WORKER_SCRIPT), str(self.memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=self.workdir, env=scrubbed_environment(), start_new_session=True,
        )
        self._buffer = b""
        if self._shared:
            self._send_shared(dict(self._shared))

    def stop(self) -> None:
        """Kill the worker (and anything it started); the next run starts a new one."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the code may have started processes of its own
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    close = stop

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- sharing and running ------------------------------------------------------------

    def share(self, **values: Any) -> None:
        """Make ``values`` variables of the code (pickled into the worker, now and after every restart)."""
        for name, value in values.items():
            try:
                pickle.dumps(value)
            except Exception as exc:
                raise TypeError(
                    f"{name!r} cannot be shared with the code's process ({type(exc).__name__}: {exc}); "
                    "share plain data (numbers, text, lists, dicts, DataFrames) or a file path instead"
                ) from None
        with self._lock:
            self._shared.update(values)
            if self._process is not None and self._process.poll() is None:
                self._send_shared(values)

    def _send_shared(self, values: dict[str, Any]) -> None:
        handle, path = tempfile.mkstemp(prefix="share-", suffix=".pkl", dir=self.workdir)
        try:
            with os.fdopen(handle, "wb") as file:
                pickle.dump(values, file)
            answer = self._exchange({"op": "share", "path": path}, self.timeout)
            if answer is None or not answer.get("shared"):
                raise RuntimeError("the code's process could not load the shared values")
        finally:
            Path(path).unlink(missing_ok=True)

    def run(self, code: str) -> dict[str, Any]:
        """Run ``code``; the worker's answer, or an ``error`` saying it timed out or died."""
        with self._lock:
            note = ""
            if self._process is None or self._process.poll() is not None:
                if self._state_lost or self._process is not None:
                    note = "(A new process was started for this code: variables made by earlier code are gone.)\n"
                self._state_lost = False
                self._start()
            started = time.monotonic()
            answer = self._exchange({"op": "run", "code": code}, self.timeout)
            if answer is not None:
                answer["notice"] = note
                return answer
            elapsed = time.monotonic() - started
            process = self._process
            code_exit = process.poll() if process is not None else None
            self.stop()
            self._state_lost = True
            if code_exit is None:
                message = f"the code did not finish within {self.timeout:g} s, so its process was stopped"
                kind = "Timeout"
            else:
                message = f"the code's process ended (exit code {code_exit}) after {elapsed:.1f} s"
                if code_exit < 0 and self.memory_mb:  # killed by a signal: often memory
                    message += f"; it may have run out of its {self.memory_mb} MB of memory"
                kind = "WorkerDied"
            return {
                "stdout": "", "stderr": "", "result": None, "json": None, "images": [], "notice": note,
                "error": {"type": kind, "message": message, "traceback": f"{kind}: {message}"},
            }

    def _exchange(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one request and read its answer line; None on timeout or a dead worker."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        deadline = time.monotonic() + timeout
        stdout = process.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(stdout.fileno(), 1 << 16)
                if not chunk:
                    return None  # the worker ended
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        return answer

"""A plain IPython shell (no kernel, no widgets) in a subprocess, driven cell by cell: the text front end.

``run_shell(script, tmp_path)`` runs ``PRELUDE`` (a fresh ``InteractiveShell``
with the extension loaded, and the helpers below), then ``setup``, then
``script``, in a new Python process with its own database and IPython
folder, and returns what the shell printed.  Inside the script:

* ``cell(source)`` runs a cell as typed and prints ``### <first line>``
  before it, so that ``section(output, heading)`` finds what that cell printed;
* ``until(condition)`` waits for background work (a turn, a server), then a
  moment more for its throttled output to print.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PRELUDE = '''
import sys, time
from IPython.core.interactiveshell import InteractiveShell
from llmgine_nb.notebook import runtime
shell = InteractiveShell.instance()

def cell(source):
    """Run a cell as typed; mark where it starts in the output."""
    print(f"### {source.strip().splitlines()[0]}", flush=True)
    result = shell.run_cell(source, store_history=True)
    sys.stdout.flush()
    return result

def until(condition, timeout=20):
    """Wait for background work; then a moment more, for its (throttled) output to print."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            time.sleep(0.3)
            return
        time.sleep(0.02)
    raise SystemExit("timed out")

cell("%load_ext llmgine_nb")
'''


def run_shell(script: str, tmp_path: Path, *, setup: str = "", stdin: str = "", timeout: float = 180) -> str:
    """Run ``setup`` and ``script`` (dedented) after ``PRELUDE``; the shell's output (stdout, then stderr)."""
    env = dict(os.environ, LLMGINE_DB=str(tmp_path / "llmgine.db"), IPYTHONDIR=str(tmp_path / "ipython"),
               LLMGINE_MODEL="", OPENAI_API_KEY="")
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + setup + textwrap.dedent(script)],
        input=stdin, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, f"the shell failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def section(output: str, heading: str) -> str:
    """What the cell starting with ``heading`` printed (up to the next cell)."""
    start = output.index(f"### {heading}") + len(heading) + 4
    end = output.find("\n### ", start)
    return output[start:end if end != -1 else None]

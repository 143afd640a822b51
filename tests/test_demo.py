"""The README's main command (``make demo`` = ``python -m llmgine_nb.demo``) runs end to end offline."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_runs_the_task_assistant_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LLMGINE_MODEL" and not k.endswith("_API_KEY")}
    out = subprocess.run(
        [sys.executable, "-m", "llmgine_nb.demo", "--db", str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=120, env=env, check=True,
    ).stdout
    assert "model: scripted" in out
    assert "Verified: this discord user is Priya Natarajan" in out
    assert "[approval of create_task: approved]" in out and "Created T13" in out
    assert "Marked T3 'Book rooms for recruitment interviews' as done." in out
    assert "the board now has 13 tasks" in out
    assert "Traceback" not in out

"""The README's main command (``make demo`` = ``python -m llmgine_nb.demo``) runs end to end offline,
says what to run next and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LLMGINE_MODEL" and not k.endswith("_API_KEY")}
    return {**env, **extra}


def test_demo_runs_the_task_assistant_offline_and_leaves_no_files(tmp_path):
    temp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    temp.mkdir()
    cwd.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "llmgine_nb.demo"], cwd=cwd,
        capture_output=True, text=True, timeout=120, env=offline_env(TMPDIR=str(temp)), check=True,
    ).stdout
    assert "model: scripted" in out
    assert "Verified: this chat account belongs to Priya Natarajan" in out and "discord" not in out.lower()
    assert "[approval of create_task: approved]" in out and "Created T13" in out
    assert "Marked T3 'Book rooms for recruitment interviews' as done." in out
    assert "the board now has 13 tasks" in out
    assert "cost $0.00 (the offline model is free)" in out and "$0.000000" not in out
    assert "What next:" in out and "make lab" in out and "tutorials/01-quickstart.ipynb" in out
    assert "LLMGINE_MODEL=" in out and ".env" in out
    assert "Traceback" not in out
    assert list(temp.iterdir()) == [] and list(cwd.iterdir()) == [], "no board.db, no llmgine.db left behind"


def test_demo_with_db_keeps_its_files(tmp_path):
    subprocess.run([sys.executable, "-m", "llmgine_nb.demo", "--db", str(tmp_path / "demo.db")],
                   capture_output=True, text=True, timeout=120, env=offline_env(), check=True)
    assert {"demo.db", "board.db"} <= {p.name for p in tmp_path.iterdir()}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_says_it_is_installing_and_shows_pip_progress(tmp_path):
    plan = subprocess.run(["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=True).stdout
    install = next(line for line in plan.splitlines() if "--require-hashes" in line)
    assert "Installing llmgine-nb's dependencies" in plan and "--quiet" not in install

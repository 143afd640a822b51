"""Two processes writing to one database at once: no "database is locked", nothing lost."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from llmgine_nb.chat import ChatMessage
from llmgine_nb.store import Store

PER_WRITER = 1000

# Opens the (not yet existing) database - so both processes race through the
# migrations too - waits for "go", then writes its messages one transaction
# each into a session shared with the other writer.
WRITER = r"""
import sys
from llmgine_nb.chat import ChatMessage
from llmgine_nb.store import Store, StoreError

db, me, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(db)
try:
    shared = store.create_session("shared")
except StoreError:
    shared = store.get_session("shared")
own = store.get_or_create_session("own-" + me)
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    store.append_message(shared if i % 2 else own, ChatMessage(id=f"{me}-{i}", role="user", content=f"{me} says {i}"))
print("done", flush=True)
"""


def test_two_processes_write_1000_messages_each(tmp_path, db_target):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = db_target
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), name, str(PER_WRITER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n", proc.communicate()[1]
    for proc in procs:  # start both at (nearly) the same moment
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, results):
        assert "locked" not in err
        assert proc.returncode == 0, err
        assert out == "done\n"

    with Store(db) as store:
        assert store.integrity_check() == []
        ids = {row[0] for row in store.conn.execute("SELECT id FROM messages")}
        assert ids == {f"{me}-{i}" for me in "ab" for i in range(PER_WRITER)}
        shared = store.messages("shared")
        assert len(shared) == PER_WRITER  # half of each writer's messages
        # Each writer's messages keep their order within the shared session.
        for me in "ab":
            mine = [int(m.id.split("-")[1]) for m in shared if m.id.startswith(me)]
            assert mine == sorted(mine) and len(mine) == PER_WRITER // 2
        assert [m.id for m in store.messages("own-a")] == [f"a-{i}" for i in range(0, PER_WRITER, 2)]
        assert len(store.list_sessions()) == 3


def _hold_write_lock(path, seconds: float) -> threading.Thread:
    """Another connection (as another process would) takes the file's write lock and keeps it ``seconds``."""
    holder = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_write_waits_for_another_writers_lock_and_goes_in_when_it_is_freed(tmp_path):
    store = Store(tmp_path / "wait.db")
    session = store.create_session()
    holder = _hold_write_lock(tmp_path / "wait.db", 0.3)
    started = time.monotonic()
    store.append_message(session, ChatMessage(role="user", content="after the other writer"))
    waited = time.monotonic() - started
    holder.join()
    assert waited >= 0.25  # it did wait for the lock ...
    assert [m.content for m in store.messages(session)] == ["after the other writer"]  # ... and wrote
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000  # the wait left the setting as it was


def test_a_write_gives_up_after_the_timeout_and_leaves_the_store_usable(tmp_path):
    store = Store(tmp_path / "busy.db", timeout=0.2)
    session = store.create_session()
    holder = _hold_write_lock(tmp_path / "busy.db", 1.0)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        store.append_message(session, ChatMessage(role="user", content="too soon"))
    holder.join()
    store.append_message(session, ChatMessage(role="user", content="later"))
    assert [m.content for m in store.messages(session)] == ["later"]

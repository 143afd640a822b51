"""Two processes writing to one database at once: no "database is locked", nothing lost."""

from __future__ import annotations

import subprocess
import sys

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

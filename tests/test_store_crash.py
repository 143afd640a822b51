"""Crash safety: writers killed with SIGKILL at random points never corrupt the
database nor lose a write that had returned."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from llmgine_nb.chat import ChatMessage
from llmgine_nb.store import Store

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL (POSIX)")

RUNS = 24  # writer processes killed, two at a time on the same database

# The writer: a conversation written turn by turn through the store, with single
# messages, approvals and tool results in between.  Each write is reported on
# the writer's stdout, flushed, only after the store call returned.
#
# Starting Python and importing the store costs about half a second, so a
# "zygote" process imports once and forks one writer per run on request.  Each
# writer is its own process with its own stdout (a file per run), killed by the
# test with SIGKILL.
ZYGOTE = r"""
import os, sys
from llmgine_nb.chat import ChatMessage, ToolCall
from llmgine_nb.messages import Event
from llmgine_nb.store import LLMCall, Store

class TurnLogged(Event):
    turn: str
    step: int

def report(line):
    sys.stdout.write(line + "\n")  # one write per line, flushed before the next store call
    sys.stdout.flush()

def writer(db, me):
    store = Store(db)
    session = store.get_or_create_session("crash-" + me)
    report("ready")
    i = 0
    while True:
        turn = f"{me}-{i}"
        call = ToolCall.from_raw(f"call-{turn}", "lookup", '{"q": "%s"}' % turn)
        messages = [
            ChatMessage(id=f"{turn}-u", role="user", content=f"question {turn} " + "lorem ipsum " * 20),
            ChatMessage(id=f"{turn}-a", role="assistant", tool_calls=[call], model="scripted"),
            ChatMessage(id=f"{turn}-t", role="tool", tool_call_id=call.id, name="lookup", content=f"result {turn}"),
            ChatMessage(id=f"{turn}-r", role="assistant", content=f"answer {turn}", model="scripted"),
        ]
        store.record_turn(
            session, messages,
            llm_calls=[LLMCall(model="scripted", input_tokens=10, output_tokens=5)],
            events=[TurnLogged(session_id=session.id, turn=turn, step=k) for k in range(5)],
        )
        report("turn " + turn)
        store.append_message(session, ChatMessage(id=f"{turn}-x", role="user", content=f"follow-up {turn}"))
        report(f"msg {turn}-x")
        pending = ToolCall.from_raw(f"pending-{turn}", "book", "{}")
        store.append_message(session, ChatMessage(id=f"{turn}-p", role="assistant", tool_calls=[pending]))
        report(f"msg {turn}-p")
        store.record_approval(session, pending.id, "denied", who="crash-test")
        report("approval " + pending.id)
        i += 1

for command in sys.stdin:
    verb, *args = command.split()
    if verb == "run":
        db, me, out = args
        pid = os.fork()
        if pid == 0:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            try:
                writer(db, me)
            except BaseException as exc:
                report(f"error {exc!r}")
            os._exit(3)
        print("pid", pid, flush=True)
    elif verb == "wait":
        _, status = os.waitpid(int(args[0]), 0)
        print("status", os.waitstatus_to_exitcode(status), flush=True)
"""


class Zygote:
    """The forking helper process, driven over its stdin/stdout."""

    def __init__(self, script: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, "the zygote process died"
        return answer.split()[1]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _wait_ready(out: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = out.read_text() if out.exists() else ""
        assert "error" not in text, text
        if text.startswith("ready\n"):
            return
        time.sleep(0.002)
    raise AssertionError(f"writer never got ready: {out.read_text() if out.exists() else ''}")


def test_sigkill_at_random_points_loses_nothing_that_returned(tmp_path, db_target):
    """On SQLite a writer may die holding the file's write lock; on PostgreSQL (an engine
    worker's death) mid-transaction, holding a session's lock: the server rolls it back."""
    script = tmp_path / "zygote.py"
    script.write_text(ZYGOTE)
    db = db_target
    rng = random.Random(1234)
    reported_turns: list[str] = []
    reported_msgs: list[str] = []
    reported_approvals: list[str] = []
    killed_busy = 0
    zygote = Zygote(script)
    try:
        for pair in range(RUNS // 2):
            # Two writers at once on the same file: one may die holding the write lock.
            runs = []
            for side in "ab":
                out = tmp_path / f"run-{pair}{side}.out"
                runs.append((int(zygote.ask(f"run {db} r{pair}{side} {out}")), out))
            for _, out in runs:
                _wait_ready(out)
            for pid, _ in runs:
                time.sleep(rng.uniform(0.002, 0.12))  # random points: mid-transaction, between writes ...
                os.kill(pid, signal.SIGKILL)
            for pid, out in runs:
                assert int(zygote.ask(f"wait {pid}")) == -signal.SIGKILL, out.read_text()
                # Whole lines only: a kill during the report itself leaves a partial one.
                lines = out.read_text().split("\n")[1:-1]
                killed_busy += bool(lines)
                for line in lines:
                    kind, ident = line.split(" ", 1)
                    {"turn": reported_turns, "msg": reported_msgs, "approval": reported_approvals}[kind].append(ident)
    finally:
        zygote.close()

    assert killed_busy >= RUNS // 2, "most writers should have been killed while writing"
    assert reported_turns, "no write ever returned: the test did not exercise anything"

    with Store(db) as store:
        sqlite = store.backend == "sqlite"
        assert store.integrity_check() == []
        if sqlite:  # PostgreSQL checks foreign keys on every write
            assert store.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        ids = {row[0] for row in store.conn.execute("SELECT id FROM messages")}
        # Every write that returned is there ...
        for turn in reported_turns:
            assert {f"{turn}-u", f"{turn}-a", f"{turn}-t", f"{turn}-r"} <= ids, turn
        assert set(reported_msgs) <= ids
        denied = {row[0] for row in store.conn.execute("SELECT call_id FROM tool_calls WHERE status = 'denied'")}
        assert set(reported_approvals) <= denied
        # ... and no turn is half-written: record_turn is all or nothing.
        per_turn = Counter(mid.rsplit("-", 1)[0] for mid in ids if mid.rsplit("-", 1)[1] in {"u", "a", "t", "r"})
        assert set(per_turn.values()) == {4}
        turn_of = "json_extract(payload, '$.turn')" if sqlite else "payload::json->>'turn'"
        events = Counter(row[0] for row in store.conn.execute(f"SELECT {turn_of} FROM events"))
        assert set(events.values()) == {5} and set(events) == set(per_turn)
        # Positions in each session are gap-free.
        for (session_id,) in store.conn.execute("SELECT id FROM sessions").fetchall():
            seqs = [
                r[0]
                for r in store.conn.execute("SELECT seq FROM messages WHERE session_id = ? ORDER BY seq", (session_id,))
            ]
            assert seqs == list(range(len(seqs)))
        # The full-text index (search reads it and the queue of new messages, which survived
        # the kills too) agrees with the rows, and the database still takes writes.
        assert len(store.search("lorem", limit=1_000_000)) == len(per_turn)
        if sqlite:
            store.index_for_search()
            store.conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        store.append_message(store.get_or_create_session("after"), ChatMessage(role="user", content="alive"))
        assert store.messages("after")[0].content == "alive"

"""Event numbers stay unique and gap-free when several processes number one session's events at once.

Engine workers (issue 17) share one store; each writes the events of the turns it
runs, and a session's followers read them back by number (``after=N``).  Four
processes here number events of the same three sessions in random batches, all
at once: every session ends up numbered 1..N with no gap and no number twice,
and each writer's events keep their order.  On SQLite the one write lock
serialises them; on PostgreSQL writers of one session queue on its advisory lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

from llmgine_nb.store import Store
from llmgine_nb.store.streams import last_seq, number_and_append, numbered_events

WRITERS = 4
PER_WRITER = 300
SESSIONS = ("s1", "s2", "s3")

WRITER = r"""
import json, random, sys
from llmgine_nb.messages import Event
from llmgine_nb.store import Store
from llmgine_nb.store.streams import number_and_append

class Step(Event):
    writer: str
    n: int

db, me, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sessions = ["s1", "s2", "s3"]
store = Store(db)
rng = random.Random(me)
print("ready", flush=True)
sys.stdin.readline()
n = 0
while n < count:
    batch = []
    for _ in range(min(rng.randint(1, 5), count - n)):
        event = Step(session_id=rng.choice(sessions), writer=me, n=n)
        batch.append((event.session_id, event, event.to_json()))
        n += 1
    numbers = number_and_append(store, batch)
    assert len(numbers) == len(batch)
print("done", flush=True)
"""


def test_concurrent_writers_number_each_session_without_gaps(tmp_path, db_target):
    Store(db_target).close()  # migrated once, before the race
    script = tmp_path / "numbering_writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db_target), f"w{k}", str(PER_WRITER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for k in range(WRITERS)
    ]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n", proc.communicate()[1]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0 and out == "done\n", err

    with Store(db_target) as store:
        seen: dict[str, list[int]] = defaultdict(list)
        total = 0
        for session in SESSIONS:
            numbered = numbered_events(store, session)
            assert [seq for seq, _ in numbered] == list(range(1, len(numbered) + 1)), session
            assert last_seq(store, session) == len(numbered)
            total += len(numbered)
            for _, payload in numbered:
                record = json.loads(payload)
                seen[(record["writer"], session)].append(record["n"])
        assert total == WRITERS * PER_WRITER
        for numbers in seen.values():  # each writer's events of a session in the order it wrote them
            assert numbers == sorted(numbers)


def test_numbers_continue_after_those_given_by_the_single_writer(db_target):
    from llmgine_nb.messages import Event

    class Note(Event):
        text: str

    with Store(db_target) as store:
        first = [Note(session_id="s", text=str(i)) for i in range(3)]
        from llmgine_nb.store.streams import append_numbered

        append_numbered(store, [("s", i + 1, e, e.to_json()) for i, e in enumerate(first)])
        more = [Note(session_id=sid, text="x") for sid in ("s", "t", "s")]
        assert number_and_append(store, [(e.session_id, e, e.to_json()) for e in more]) == [4, 1, 5]
        assert [seq for seq, _ in numbered_events(store, "s")] == [1, 2, 3, 4, 5]

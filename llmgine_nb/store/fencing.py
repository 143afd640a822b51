"""Fencing tokens: a writer that lost a session to a newer holder cannot write it any more.

    store.fencing = worker_fences          # token(session_id) -> int | None; refused(...)
    store.claim_fence(session_id)          # before reading the session: stale writers are refused from now on

Engine workers (``llmgine_nb.distributed``) hold leases on partitions of the
sessions; each acquisition of a lease comes with a number that only grows (the
fencing token, ``distributed/leases.py``).  A worker frozen past its lease (a
SIGSTOP, a long GC pause, a stalled VM) wakes up still believing it runs a
turn of a session that another worker has taken over; Redis-side, its writes
are already refused, but the store would take them.  So the store keeps, per
session, the highest token that has written it (``sessions.fence``, migration
m009), and a write carrying a lower one raises ``Fenced`` inside the write's
transaction: nothing of it lands.

The check takes the session's write turn first (``serialise_session``: the
one write lock on SQLite, the session's advisory lock on PostgreSQL), so a
new holder's claim and a stale holder's write are ordered: whichever comes
second sees the other's outcome.  A store without ``fencing`` (a notebook,
the server) runs none of this.
"""

from __future__ import annotations

from typing import Protocol

from .database import Connection, one, serialise_session
from .records import Fenced

__all__ = ["Fencing", "check"]


class Fencing(Protocol):
    """Who the store asks for a writer's token (an engine worker; see ``Store.fencing``)."""

    def token(self, session_id: str) -> int | None:
        """The token this process writes the session with (None: the session is not fenced here)."""

    def refused(self, error: Fenced) -> None:
        """A write of this process was refused (called before ``error`` is raised)."""


def check(conn: Connection, session_id: str, token: int) -> None:
    """Inside a write transaction: refuse it (``Fenced``) if the session has seen a token above ``token``;
    else record ``token`` as the session's highest.

    A session not stored (yet) has nothing to protect: the write goes on (and
    fails on its own if it needs the session).  Only a higher token is
    written, so a holder's later writes read one row and write nothing more.
    """
    serialise_session(conn, session_id)
    row = one(conn, "SELECT fence FROM sessions WHERE id = ?", (session_id,))
    if row is None:
        return
    recorded = int(row["fence"])
    if token < recorded:
        raise Fenced(session_id, token, recorded)
    if token > recorded:
        conn.execute("UPDATE sessions SET fence = ? WHERE id = ?", (token, session_id))

"""Where things live in Redis: one naming scheme shared by workers and front ends.

    keys = Keys("llmgine")
    keys.commands(keys.partition_of(session_id))   # the stream a session's commands go to

A session's commands go to one of ``partitions`` command streams, chosen by
a hash of its id; a worker holds a lease on a partition while it reads it,
so one worker at a time handles a session's commands, in the order they were
sent.  Everything a deployment keeps in Redis starts with ``prefix`` (tests
and benchmarks use a prefix of their own, so several can share one server).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

__all__ = ["Keys", "GROUP", "DEFAULT_PARTITIONS"]

#: The consumer group every worker reads the command streams in.
GROUP = "workers"

#: Command streams per deployment: more than the workers you expect, so they spread evenly.
DEFAULT_PARTITIONS = 16


@dataclass(frozen=True)
class Keys:
    prefix: str = "llmgine"
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1 (the number of command streams)")
        if not self.prefix or any(c in self.prefix for c in " {}"):
            raise ValueError(f"the Redis key prefix {self.prefix!r} must be a plain word such as 'llmgine'")

    def partition_of(self, session_id: str | None) -> int:
        """The command stream a session's commands go to (commands of no session: 0)."""
        if not session_id:
            return 0
        return zlib.crc32(session_id.encode()) % self.partitions

    def commands(self, partition: int) -> str:
        return f"{self.prefix}:commands:{partition}"

    def partition_lease(self, partition: int) -> str:
        return f"{self.prefix}:lease:{partition}"

    def fence_epoch(self) -> str:
        """The last fencing token given with a partition's lease (one counter for all: tokens only grow)."""
        return f"{self.prefix}:fence"

    def worker(self, worker_id: str) -> str:
        """The worker's heartbeat: present while it lives."""
        return f"{self.prefix}:worker:{worker_id}"

    def workers(self) -> str:
        """Pattern of every worker's heartbeat (counted to share the partitions fairly)."""
        return f"{self.prefix}:worker:*"

    def results(self, client_id: str) -> str:
        """The stream the results of a front end's commands return on."""
        return f"{self.prefix}:results:{client_id}"

    def events(self, session_id: str) -> str:
        """The session's numbered events, for every follower (trimmed: the store keeps them all)."""
        return f"{self.prefix}:events:{session_id}"

    def done(self, command_id: str) -> str:
        """The result of a handled command: a redelivered copy gets it again instead of running twice."""
        return f"{self.prefix}:done:{command_id}"

    def started(self, command_id: str) -> str:
        """The user message of a turn a command started (a redelivered turn resumes from the store)."""
        return f"{self.prefix}:started:{command_id}"

    def runner(self, session_id: str) -> str:
        """The worker running a turn of the session now (a worker that lost its lease may still be)."""
        return f"{self.prefix}:runner:{session_id}"

    def partitions_setting(self) -> str:
        return f"{self.prefix}:partitions"

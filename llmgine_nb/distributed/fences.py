"""An engine worker's fencing tokens, as the store asks for them (``store/fencing.py``).

A session's writes carry the token of its partition's latest lease taken by
this worker (``Partitions.tokens``, from ``leases.py``).  When the store
refuses one (a worker holding the partition with a newer token has written
the session), the worker has stalled past its lease: the partition is handed
back (``Partitions.fenced_out``), and the worker stops what it was doing for
the session without answering (``is_fenced``; the new holder answers).
"""

from __future__ import annotations

import logging

from ..store import Fenced
from .keys import Keys
from .partitions import Partitions

__all__ = ["PartitionFences"]

log = logging.getLogger("llmgine_nb.distributed.fences")


class PartitionFences:
    """``Store.fencing`` for a worker: tokens by partition, refusals noted per session."""

    def __init__(self, keys: Keys, partitions: Partitions) -> None:
        self.keys = keys
        self.partitions = partitions
        self._refused: dict[str, int] = {}  # session -> the token a write of it was refused with

    def token(self, session_id: str) -> int | None:
        return self.partitions.tokens.get(self.keys.partition_of(session_id))

    def refused(self, error: Fenced) -> None:
        # Called where the write was made: the loop, or a thread of the bus.
        if self._refused.get(error.session_id) == error.token:
            return  # said already (a turn may try several writes before it stops)
        self._refused[error.session_id] = error.token
        partition = self.keys.partition_of(error.session_id)
        log.warning("worker %s: a newer holder of partition %d has written session %s; this worker writes "
                    "nothing more there until it holds the partition again (%s)",
                    self.partitions.worker_id, partition, error.session_id, error)
        self.partitions.fenced_out(partition)

    def is_fenced(self, session_id: str) -> bool:
        """Whether the store refuses this worker's writes of the session with its current token."""
        refused = self._refused.get(session_id)
        if refused is None:
            return False
        if refused != self.token(session_id):
            self._refused.pop(session_id, None)  # the partition was taken again since, with a newer token
            return False
        return True

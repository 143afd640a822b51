"""Keeping a worker's heartbeat and partition leases alive from a thread of its own.

The worker's event loop runs turns, and a turn may block it (a synchronous
store call waiting on a locked database file, a tool that does not await).
Renewing on that loop would let a lease expire while the worker is alive and
running a turn there; another worker would take the partition and run the
turn a second time.  So the renewals run here, in a thread with its own
(synchronous) Redis connection, every third of a lease's life.

The thread also tells the worker how long each lease is certainly still its
own: ``valid_until`` is the time the last successful renewal was *sent* plus
the lease's life (less a margin for clock drift), so ``holds()`` is a local
check, no round trip.  A renewal that finds the lease taken marks the
partition lost; the worker then begins nothing more there (fencing: its
results are also written only while Redis still names it the owner,
``worker.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .leases import ACQUIRE_OR_RENEW

__all__ = ["LeaseRenewer", "sync_twin"]

log = logging.getLogger("llmgine_nb.distributed.renewer")

#: The part of a lease's life a worker trusts its own clock for (the rest covers drift and a slow reply).
TRUSTED_FRACTION = 0.8

# The connection settings a synchronous client takes from an asyncio one (the rest are the asyncio client's own).
_SETTINGS = {"host", "port", "db", "username", "password", "path", "socket_timeout", "socket_connect_timeout",
             "decode_responses", "client_name", "protocol"}


def sync_twin(client: Any) -> Any:
    """A synchronous redis-py client on the same server as the asyncio ``client``."""
    import redis
    import redis.connection

    pool = client.connection_pool
    kind = getattr(redis.connection, pool.connection_class.__name__, redis.connection.Connection)
    settings = {key: value for key, value in pool.connection_kwargs.items()
                if key in _SETTINGS or key.startswith("ssl_")}
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=kind, **settings))


class LeaseRenewer:
    """Renews ``heartbeat`` and the leases of the partitions ``hold()`` names, from its own thread."""

    def __init__(self, client: Any, owner: str, ttl_ms: int, heartbeat: str, lease_key: Callable[[int], str],
                 on_lost: Callable[[int], None]) -> None:
        self.client = client
        self.owner = owner
        self.ttl_ms = ttl_ms
        self.heartbeat = heartbeat
        self.lease_key = lease_key
        self.on_lost = on_lost  # called from the thread: it must only hand the news to the loop
        self._renew = client.register_script(ACQUIRE_OR_RENEW)
        self._lock = threading.Lock()
        self._valid_until: dict[int, float] = {}  # held partition -> monotonic time its lease is surely ours until
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the loop asks -------------------------------------------------------

    def hold(self, partition: int, acquired_at: float) -> None:
        """A lease the loop has just taken (at ``acquired_at``, monotonic): keep it alive from now on."""
        with self._lock:
            self._valid_until[partition] = acquired_at + self._trusted_s()

    def drop(self, partition: int) -> None:
        with self._lock:
            self._valid_until.pop(partition, None)

    def holds(self, partition: int) -> bool:
        """Whether the lease is certainly still ours (a renewal reached Redis recently enough)."""
        with self._lock:
            return time.monotonic() < self._valid_until.get(partition, 0.0)

    # -- the thread ---------------------------------------------------------------

    def start(self) -> None:
        self.renew_once()
        self._thread = threading.Thread(target=self._run, name=f"leases-{self.owner}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl_ms / 1000 + 5)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                self.renew_once()
            except Exception as exc:  # Redis away (restarting): the leases stay until they expire; retry
                log.warning("worker %s: could not renew its leases (%s); retrying", self.owner, exc)

    def renew_once(self) -> None:
        sent = time.monotonic()
        self.client.set(self.heartbeat, "alive", px=self.ttl_ms)
        with self._lock:
            held = list(self._valid_until)
        for partition in held:
            # Renewed if ours; taken back if it expired while Redis was away and nobody took it meanwhile.
            ours = bool(self._renew(keys=[self.lease_key(partition)], args=[self.owner, self.ttl_ms]))
            with self._lock:
                if partition not in self._valid_until:
                    continue  # released meanwhile
                if ours:
                    self._valid_until[partition] = sent + self._trusted_s()
                    continue
                del self._valid_until[partition]  # not renewed (nor taken back) again: it is the new holder's
            log.warning("worker %s lost the lease of partition %d; it begins nothing more there", self.owner, partition)
            self.on_lost(partition)

    def _trusted_s(self) -> float:
        return self.ttl_ms * TRUSTED_FRACTION / 1000

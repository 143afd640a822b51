"""Which command streams a worker reads: leases on partitions, shared fairly among the live workers.

Every ``lease_ms / 3`` a thread of the worker's own renews its heartbeat and
its leases (``renewer.py``: a turn blocking the event loop cannot let them
expire); every half second (or ``lease_ms / 3`` if shorter) the loop counts
the live workers (their heartbeats) and takes free partitions up to its fair
share (``ceil(partitions / workers)``), or hands back the ones above it.  A
partition it takes first gets what its previous owner left unacknowledged
(``XAUTOCLAIM``: that owner's lease has expired, so it is dead or gone), then
new entries (``XREADGROUP >``).  A partition handed back is first drained: no
new entries are read, and the lease is released once those in flight are done.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from .keys import GROUP, Keys
from .leases import Leases
from .redis_transport import REDIS_ERRORS, retrying, stop_task
from .renewer import LeaseRenewer, sync_twin

__all__ = ["Partitions"]

log = logging.getLogger("llmgine_nb.distributed.partitions")

Dispatch = Callable[[int, list[tuple[str, dict[str, str]]]], Awaitable[None]]
Released = Callable[[int], Awaitable[None]]

#: Entries read from a stream at a time.
READ_COUNT = 100
#: How long a read blocks waiting for entries (ms): also how soon a drained reader notices.
BLOCK_MS = 500
#: How often (at most, seconds) a worker counts the live workers and takes or hands back partitions.
BALANCE_S = 0.5


class Partitions:
    def __init__(self, redis: Any, keys: Keys, worker_id: str, lease_ms: int,
                 dispatch: Dispatch, released: Released, lease_client: Any = None) -> None:
        self.redis = redis
        self.keys = keys
        self.worker_id = worker_id
        self.lease_ms = lease_ms
        self.leases = Leases(redis, worker_id, lease_ms, keys.fence_epoch())
        # The fencing token of each partition's latest acquisition (``leases.py``).  Kept after the
        # partition goes: a write the worker still makes there is checked with it, and refused if stale.
        self.tokens: dict[int, int] = {}
        # The renewals run in a thread with a synchronous client of their own (``renewer.py``).
        self.renewer = LeaseRenewer(lease_client if lease_client is not None else sync_twin(redis), worker_id,
                                    lease_ms, keys.worker(worker_id), keys.partition_lease, self._lost_from_thread)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dispatch = dispatch
        self.released = released
        self.readers: dict[int, asyncio.Task[None]] = {}  # held partitions
        self.draining: set[int] = set()
        self.lost: set[int] = set()  # leases that expired under us: another worker may hold them now
        self.busy: Callable[[int], bool] = lambda partition: False
        self._keeper: asyncio.Task[None] | None = None
        # Each worker tries the partitions in its own order, so two starting at once rarely collide.
        offset = zlib.crc32(worker_id.encode()) % keys.partitions
        self._order = [(offset + i) % keys.partitions for i in range(keys.partitions)]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await retrying("create the consumer groups", self._create_groups)
        await retrying("start the heartbeat", lambda: asyncio.to_thread(self.renewer.start))
        await self._keep()
        self._keeper = asyncio.ensure_future(self._keep_forever())

    async def _create_groups(self) -> None:
        import redis.exceptions

        for partition in range(self.keys.partitions):
            try:
                await self.redis.xgroup_create(self.keys.commands(partition), GROUP, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def stop(self) -> None:
        """Read nothing more (what is in flight goes on)."""
        await stop_task(self._keeper)
        self.draining.update(self.readers)
        await asyncio.gather(*self.readers.values(), return_exceptions=True)

    async def release_all(self) -> None:
        for partition in list(self.readers):
            await self._release(partition)
        await asyncio.to_thread(self.renewer.stop)
        try:
            await self.redis.delete(self.keys.worker(self.worker_id))
        except REDIS_ERRORS:
            pass  # the heartbeat expires on its own

    # -- keeping leases ---------------------------------------------------------

    async def _keep_forever(self) -> None:
        while True:
            # The renewals run in their own thread; this only shares the partitions, so it may look often:
            # a worker that starts gets its share within a second or two, not several lease lives.
            await asyncio.sleep(min(self.lease_ms / 3000, BALANCE_S))
            try:
                await self._keep()
            except REDIS_ERRORS as exc:
                log.warning("worker %s: Redis unavailable while renewing leases (%s); retrying", self.worker_id, exc)
            except Exception:
                log.exception("worker %s: renewing leases failed", self.worker_id)

    def _lost_from_thread(self, partition: int) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._lose, partition)

    def _lose(self, partition: int) -> None:
        """The lease expired under us: read no more, and leave what is not begun to the new holder."""
        if partition in self.readers:
            self.draining.add(partition)
            self.lost.add(partition)

    def fenced_out(self, partition: int) -> None:
        """The store refused a write made with this partition's token (a newer holder wrote the session):
        treat the lease as lost, so the partition is handed back and taken again with a new token.
        Any thread may call this."""
        self._lost_from_thread(partition)

    async def still_held(self, partition: int) -> bool:
        """Whether the partition is still ours to act for; waits while a renewal is overdue (Redis away)."""
        while partition not in self.lost and partition in self.readers:
            if self.renewer.holds(partition):
                return True
            await asyncio.sleep(0.05)
        return False

    async def _keep(self) -> None:
        for partition in [p for p in self.draining if p in self.readers and not self.busy(p)]:
            if self.readers[partition].done():
                await self._release(partition)
        live = [key async for key in self.redis.scan_iter(match=self.keys.workers(), count=1000)]
        fair = math.ceil(self.keys.partitions / max(1, len(live)))
        held = [p for p in self.readers if p not in self.draining]
        if len(held) > fair:
            for partition in sorted(held, key=self.busy)[: len(held) - fair]:
                log.info("worker %s hands partition %d back (%d workers live)", self.worker_id, partition, len(live))
                self.draining.add(partition)
        elif len(held) < fair:
            for partition in self._order:
                if len(held) >= fair:
                    break
                asked_at = time.monotonic()
                if partition in self.readers:
                    continue
                token = await self.leases.acquire(self.keys.partition_lease(partition))
                if token is not None:
                    self.tokens[partition] = token
                    self.renewer.hold(partition, asked_at)
                    held.append(partition)
                    self.readers[partition] = asyncio.ensure_future(self._read(partition))

    async def _release(self, partition: int) -> None:
        reader = self.readers.pop(partition, None)
        await stop_task(reader)
        self.draining.discard(partition)
        self.lost.discard(partition)
        self.renewer.drop(partition)
        await self.released(partition)
        try:
            await self.leases.release(self.keys.partition_lease(partition))
        except REDIS_ERRORS:
            pass  # it expires on its own

    # -- reading ------------------------------------------------------------------

    async def _read(self, partition: int) -> None:
        stream = self.keys.commands(partition)
        try:
            await self._claim_left_over(partition, stream)
            while partition not in self.draining:
                try:
                    reply = await self.redis.xreadgroup(GROUP, self.worker_id, {stream: ">"},
                                                        count=READ_COUNT, block=BLOCK_MS)
                except REDIS_ERRORS as exc:
                    log.info("worker %s: reading partition %d: Redis unavailable (%s)", self.worker_id, partition, exc)
                    await asyncio.sleep(0.2)
                    continue
                for _stream, entries in reply or ():
                    # (fields None: the entry was deleted meanwhile)
                    await self.dispatch(partition, [(entry_id, fields) for entry_id, fields in entries if fields])
        except Exception:
            log.exception("worker %s: the reader of partition %d failed; it is handed back", self.worker_id, partition)
            self.draining.add(partition)

    async def _claim_left_over(self, partition: int, stream: str) -> None:
        """What the previous holder read and never acknowledged: ours now, oldest first."""
        start = "0-0"
        while True:
            reply = await retrying(
                "claim left-over entries",
                functools.partial(self.redis.xautoclaim, stream, GROUP, self.worker_id, min_idle_time=0,
                                  start_id=start, count=READ_COUNT),
            )
            start, entries = reply[0], reply[1]
            await self.dispatch(partition, [(entry_id, fields) for entry_id, fields in entries if fields])
            if start in ("0-0", b"0-0"):
                return

"""The front end's side of the Redis Streams transport.

    transport = await RedisTransport.connect("redis://127.0.0.1:6379/0", store=store)
    result = await transport.send(SendMessage(session_id=sid, text="hi"))   # run by some worker
    async for seq, text in transport.follow(sid):                           # that session's events
        ...

``send`` adds the command (as JSON) to its session's command stream and waits
for its result on this front end's own result stream; a worker of the
consumer group runs it (``worker.py``).  Delivery is at least once: a
command whose worker died is run by the next owner of its stream, and a
command handled already answers with its recorded result, so ``send`` may
repeat an ``XADD`` it is unsure of (the Redis connection dropped).
``follow`` reads the session's event stream from its oldest kept entry,
skipping numbers already seen; a gap (the stream is trimmed, the store is
the durable record) is filled from the store when one is given.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..messages import Command, CommandResult, Message
from ..server.stream import wire_text
from ..store.streams import numbered_events
from .keys import DEFAULT_PARTITIONS, Keys

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["RedisTransport", "connect_redis", "retrying", "agree_partitions", "RESULTS_KEPT", "REDIS_ERRORS", "stop_task"]

log = logging.getLogger("llmgine_nb.distributed")

T = TypeVar("T")

#: Entries a result stream keeps (approximately): results are read as they arrive.
RESULTS_KEPT = 10_000
#: How long a front end's result stream outlives its last result (seconds).
RESULTS_TTL_S = 24 * 3600


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions as errors

    return (errors.ConnectionError, errors.TimeoutError, errors.BusyLoadingError, ConnectionError, OSError)


REDIS_ERRORS = _redis_errors()


def connect_redis(url: str) -> Any:
    """A redis-py asyncio client for ``url`` that gives back text (our messages are JSON)."""
    try:
        import redis.asyncio as aioredis
    except ImportError:  # pragma: no cover - the extra is missing
        raise RuntimeError("the Redis transport needs redis-py: pip install 'llmgine-nb[distributed]'") from None
    return aioredis.Redis.from_url(url, decode_responses=True, health_check_interval=10)


async def retrying(what: str, call: Callable[[], Awaitable[T]], *, patience_s: float = 60.0) -> T:
    """``call()``, again after a dropped connection (Redis restarting), for up to ``patience_s``."""
    deadline = time.monotonic() + patience_s
    pause = 0.05
    while True:
        try:
            return await call()
        except REDIS_ERRORS as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(
                    f"Redis did not answer for {patience_s:.0f} s while trying to {what} ({exc}); "
                    "check that redis-server is running and the URL is right."
                ) from exc
            log.info("Redis unavailable while trying to %s (%s); retrying in %.2f s", what, exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


async def agree_partitions(redis: Any, keys: Keys) -> Keys:
    """The deployment's partition count: the first process sets it, every later one reads it."""
    await redis.set(keys.partitions_setting(), keys.partitions, nx=True)
    stored = int(await redis.get(keys.partitions_setting()))
    return keys if stored == keys.partitions else Keys(keys.prefix, stored)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait for it to end.

    Cancelled during a read, redis-py may close the connection and raise a
    ``ConnectionError`` instead, which our loops take for Redis restarting and
    retry; so the cancel is repeated until the task ends.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.cancelled() and task.exception() is not None:
        log.debug("a stopped task had failed", exc_info=task.exception())


class RedisTransport:
    """Commands to the workers, results and events back, over Redis Streams."""

    def __init__(self, redis: Any, *, keys: Keys | None = None, store: Store | None = None,
                 client_id: str | None = None, patience_s: float = 60.0, prefix: str = "llmgine") -> None:
        self.redis = redis
        self.keys = keys or Keys(prefix)
        self.store = store
        self.client_id = client_id or uuid.uuid4().hex
        self.patience_s = patience_s
        self._waiting: dict[str, asyncio.Future[CommandResult]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._agreed = keys is not None  # else the deployment's partition count is read before the first send

    @classmethod
    async def connect(cls, url: str, *, prefix: str = "llmgine", partitions: int = DEFAULT_PARTITIONS,
                      store: Store | None = None, patience_s: float = 60.0) -> RedisTransport:
        redis = connect_redis(url)
        keys = await retrying("read the partition count", lambda: agree_partitions(redis, Keys(prefix, partitions)),
                              patience_s=patience_s)
        return cls(redis, keys=keys, store=store, patience_s=patience_s)

    # -- commands -----------------------------------------------------------------

    async def send(self, command: Command, timeout: float | None = None) -> CommandResult:
        """Run ``command`` on a worker and return its result (``timeout``: seconds, None waits)."""
        future = await self.submit(command)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            if future.done():
                self._waiting.pop(command.id, None)

    async def submit(self, command: Command) -> asyncio.Future[CommandResult]:
        """Send ``command`` now; the future settles with its result."""
        if not self._agreed:
            self.keys = await retrying("read the partition count", lambda: agree_partitions(self.redis, self.keys),
                                       patience_s=self.patience_s)
            self._agreed = True
        if self._reader is None or self._reader.done():
            self._reader = asyncio.ensure_future(self._read_results())
        future = self._waiting.get(command.id)
        if future is None:
            future = self._waiting[command.id] = asyncio.get_running_loop().create_future()
        stream = self.keys.commands(self.keys.partition_of(command.session_id))
        fields = {"command": command.to_json(), "reply_to": self.client_id}
        await retrying(f"send {type(command).__name__}", lambda: self.redis.xadd(stream, fields),
                       patience_s=self.patience_s)
        return future

    async def _read_results(self) -> None:
        stream = self.keys.results(self.client_id)
        cursor = "0-0"  # the stream is this client's own, new with it: read it from the start
        while True:
            try:
                reply = await self.redis.xread({stream: cursor}, count=500, block=1000)
            except REDIS_ERRORS as exc:
                log.info("reading results: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(0.2)
                continue
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    cursor = entry_id
                    self._settle(fields.get("result", ""))

    def _settle(self, text: str) -> None:
        try:
            result = Message.from_json(text)
        except (ValueError, TypeError, LookupError):
            log.error("a result that cannot be read arrived and was dropped: %.200s", text)
            return
        if not isinstance(result, CommandResult):
            return
        future = self._waiting.pop(result.command_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    # -- events --------------------------------------------------------------------

    async def follow(self, session_id: str, after: int = 0) -> AsyncIterator[tuple[int, str]]:
        stream = self.keys.events(session_id)
        last, cursor = after, "0-0"
        while True:
            try:
                reply = await self.redis.xread({stream: cursor}, count=500, block=1000)
            except REDIS_ERRORS as exc:
                log.info("following session %s: Redis unavailable (%s); retrying", session_id, exc)
                await asyncio.sleep(0.2)
                continue
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    cursor = entry_id
                    seq = int(fields["seq"])
                    if seq <= last:
                        continue
                    if seq > last + 1 and self.store is not None:
                        for missed, payload in numbered_events(self.store, session_id, after=last, limit=seq - last - 1):
                            yield missed, wire_text(missed, payload)
                    last = seq
                    yield seq, fields["event"]

    async def close(self) -> None:
        await stop_task(self._reader)
        self._reader = None
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()
        await self.redis.aclose()

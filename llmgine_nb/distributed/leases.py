"""Leases with expiry: one owner at a time, kept only while the owner renews it.

A lease is a Redis string holding its owner's id, set with ``NX`` and an
expiry; renewing (``renewer.py``, from a thread), releasing and writing a
command's end (``worker.py``) check the owner in one Lua script each, so a
worker that lost its lease (it stalled past the expiry and another took over)
can neither renew nor remove the new owner's, nor answer for its partition.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Leases", "ACQUIRE_OR_RENEW", "FENCED_FINISH", "CLAIM_RUNNER"]

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Renew the lease if ours; take it back if it expired and nobody took it meanwhile (Redis was away).
ACQUIRE_OR_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# A command's end, written only while its partition's lease is still the writer's (fencing):
# KEYS lease, done, results, commands stream, runner; ARGV owner, lease ms, result, done ttl s,
# record (1/0), reply (1/0), results kept, results ttl s, entry id, group, a turn's end (1/0).
# The runner mark of a turn is the writer's to remove either way: its turn is over.
FENCED_FINISH = """
if ARGV[11] == '1' and redis.call('GET', KEYS[5]) == ARGV[1] then
  redis.call('DEL', KEYS[5])
end
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
elseif holder ~= ARGV[1] then
  return 0
end
if ARGV[5] == '1' then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
end
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'result', ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[8])
end
redis.call('XACK', KEYS[4], ARGV[10], ARGV[9])
return 1
"""

# Mark a session's turn as run by this worker, unless another live worker runs one there now
# (it lost the partition's lease mid-turn: its turn goes on until it ends). KEYS runner, started;
# ARGV owner, heartbeat key prefix, mark ttl s, claim (1/0). Returns the other runner's id ("" if
# none) and, in the same round trip, the command's started mark ("" if none).
CLAIM_RUNNER = """
local runner = redis.call('GET', KEYS[1])
if runner and runner ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. runner) == 1 then
  return {runner, ''}
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
end
return {'', redis.call('GET', KEYS[2]) or ''}
"""


class Leases:
    """Acquire, renew and release leases for ``owner`` on one Redis client."""

    def __init__(self, redis: Any, owner: str, ttl_ms: int) -> None:
        if ttl_ms < 100:
            raise ValueError("a lease must last at least 100 ms (ttl_ms)")
        self.redis = redis
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, key: str) -> bool:
        return bool(await self.redis.set(key, self.owner, nx=True, px=self.ttl_ms))

    async def release(self, key: str) -> None:
        await self._release(keys=[key], args=[self.owner])

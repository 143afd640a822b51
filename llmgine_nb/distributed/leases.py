"""Leases with expiry: one owner at a time, kept only while the owner renews it.

A lease is a Redis string holding its owner's id, set with ``NX`` and an
expiry; renewing (``renewer.py``, from a thread), releasing and writing a
command's end (``worker.py``) check the owner in one Lua script each, so a
worker that lost its lease (it stalled past the expiry and another took over)
can neither renew nor remove the new owner's, nor answer for its partition.

Each acquisition also gets a fencing token (``acquire``): the next value of
one counter, taken in the same script as the lease, so a later holder of a
partition always has a higher token than an earlier one.  The store refuses
the writes of a session made with a token lower than one that has written it
(``store/fencing.py``): a worker that stalled past its lease cannot write the
history its partition's new holder now writes.  The counter starts from
Redis's clock in microseconds, so a Redis that lost its data (no persistence)
still gives tokens above those it gave before.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Leases", "ACQUIRE", "ACQUIRE_OR_RENEW", "FENCED_FINISH", "CLAIM_RUNNER"]

# Take a free lease and the next fencing token: KEYS lease, token counter; ARGV owner, lease ms.
# Returns the token, or 0 when another holds the lease.
ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], now[1] .. string.format('%06d', tonumber(now[2])))
end
return redis.call('INCR', KEYS[2])
"""

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

    def __init__(self, redis: Any, owner: str, ttl_ms: int, token_key: str) -> None:
        if ttl_ms < 100:
            raise ValueError("a lease must last at least 100 ms (ttl_ms)")
        self.redis = redis
        self.owner = owner
        self.ttl_ms = ttl_ms
        self.token_key = token_key
        self._acquire = redis.register_script(ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, key: str) -> int | None:
        """The lease if free: its fencing token (higher than any given before), else None."""
        token = int(await self._acquire(keys=[key, self.token_key], args=[self.owner, self.ttl_ms]))
        return token or None

    async def release(self, key: str) -> None:
        await self._release(keys=[key], args=[self.owner])

"""Leases with expiry: one owner at a time, kept only while the owner renews it.

A lease is a Redis string holding its owner's id, set with ``NX`` and an
expiry; renewing and releasing check the owner in one Lua script, so a worker
that lost its lease (it stalled past the expiry and another took over) can
neither renew nor remove the new owner's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Leases"]

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leases:
    """Acquire, renew and release leases for ``owner`` on one Redis client."""

    def __init__(self, redis: Any, owner: str, ttl_ms: int) -> None:
        if ttl_ms < 100:
            raise ValueError("a lease must last at least 100 ms (ttl_ms)")
        self.redis = redis
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, key: str) -> bool:
        return bool(await self.redis.set(key, self.owner, nx=True, px=self.ttl_ms))

    async def renew(self, key: str) -> bool:
        """Extend the lease; False if it is no longer ours (expired, or taken by another)."""
        return bool(await self._renew(keys=[key], args=[self.owner, self.ttl_ms]))

    async def release(self, key: str) -> None:
        await self._release(keys=[key], args=[self.owner])

"""``RedisLockManager(backend)``: a lock with a lease in Redis.

``CacheSetup.setup(lock_manager=...)`` takes it for its lease (``lock_ttl``): oxicache's own
cross-process single-flight (one handler run per key in every process) uses a lock of that
lease. ``acquire``/``release`` remain for code that called them directly.
"""

from __future__ import annotations

import logging
import uuid

from ..backends.redis import RedisBackend
from ..types import LockManager

__all__ = ["MAX_LOCK_TTL_SECONDS", "RedisLockManager"]

#: The default lease, seconds.
MAX_LOCK_TTL_SECONDS = 5

log = logging.getLogger("oxicache.compat.fastapi_cachemate")

#: Deletes the lock only if this manager still holds it (its token), atomically.
_RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


class RedisLockManager(LockManager):
    def __init__(self, backend: RedisBackend, lock_ttl: int | None = None) -> None:
        self._backend = backend
        self.lock_ttl = lock_ttl or MAX_LOCK_TTL_SECONDS
        self._token = uuid.uuid4().hex

    async def acquire(self, lock_key: str) -> bool:
        """True if this manager now holds ``lock_key`` (for ``lock_ttl`` seconds at most)."""
        try:
            return bool(await self._backend.set(lock_key, self._token, ttl=self.lock_ttl, nx=True))
        except Exception as exc:  # a lock that cannot be taken is not held
            log.warning("lock %s not acquired: %s", lock_key, exc)
            return False

    async def release(self, lock_key: str) -> bool:
        """True if ``lock_key`` was held by this manager and is released."""
        try:
            released = await self._backend.client.eval(_RELEASE, 1, lock_key, self._token)
        except Exception as exc:
            log.warning("lock %s not released: %s", lock_key, exc)
            return False
        return bool(released)

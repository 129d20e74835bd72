"""``RedisBackend(client=redis.asyncio.Redis(...))``: the Redis oxicache caches in.

``CacheSetup.setup(backend=RedisBackend(...))`` runs oxicache's Redis engine on that client;
the backend's own ``get``/``set`` work on raw keys, for code that called them directly.
"""

from __future__ import annotations

from typing import Any

from ..types import Backend

__all__ = ["RedisBackend"]


class RedisBackend(Backend):
    """fastapi-cachemate's Redis backend, on a redis-py asyncio client (values are bytes:
    the client must not decode responses)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def get(self, key: str) -> tuple[int, bytes | None]:
        """``(milliseconds left, value)``, read in one round trip."""
        async with self._client.pipeline() as pipe:
            pipe.get(key)
            pipe.pttl(key)
            raw, left = await pipe.execute()
        return left, raw

    async def set(self, key: str, data: bytes | str, *, ttl: int, nx: bool = False) -> Any:
        return await self._client.set(key, data, ex=ttl, nx=nx)

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def client(self) -> Any:
        return self._client

"""``RedisBackend(redis_client)``: oxicache's Redis engine on your redis-py asyncio client."""

from __future__ import annotations

from typing import Any

from ....backends.redis.client import RedisBackend as _Engine
from ._engine import EngineBackend

__all__ = ["RedisBackend"]


class RedisBackend(EngineBackend):
    """``RedisBackend(redis.asyncio.Redis(...))`` (or a ``RedisCluster``): oxicache's
    :class:`oxicache.backends.RedisBackend` with ``client=`` that client. The client must not
    decode responses (values are bytes), as with fastapi-cache2."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.is_cluster = type(redis).__name__ == "RedisCluster"

    def make_engine(self, prefix: str) -> _Engine:
        return _Engine(client=self.redis, prefix=prefix)

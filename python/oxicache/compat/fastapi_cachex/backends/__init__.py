"""The backends of fastapi-cachex, each standing for an oxicache engine."""

from .base import BaseCacheBackend
from .config import RedisConfig
from .memcached import MemcachedBackend
from .memory import MemoryBackend
from .redis import AsyncRedisCacheBackend

__all__ = [
    "AsyncRedisCacheBackend",
    "BaseCacheBackend",
    "MemcachedBackend",
    "MemoryBackend",
    "RedisConfig",
]

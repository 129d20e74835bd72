"""Storage engines behind oxicache: one small protocol (:mod:`.base`), one module per engine.

Engines with a client library are imported on first access (``oxicache.backends.RedisBackend``),
so ``import oxicache`` never needs redis-py or any other optional dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Backend
from .guard import GuardedBackend
from .memory import MemoryBackend

if TYPE_CHECKING:
    from .dynamodb import DynamoDBBackend
    from .memcached.client import MemcachedBackend
    from .redis.client import RedisBackend

__all__ = [
    "Backend",
    "DynamoDBBackend",
    "GuardedBackend",
    "MemcachedBackend",
    "MemoryBackend",
    "RedisBackend",
]

_LAZY = {
    "DynamoDBBackend": ".dynamodb",
    "MemcachedBackend": ".memcached",
    "RedisBackend": ".redis",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

"""fastapi-cache2's backends, on oxicache's engines.

``InMemoryBackend()`` is oxicache's in-process store; ``RedisBackend(client)``,
``MemcachedBackend(aiomcache_client)`` and ``DynamoBackend(table_name, region)`` build
oxicache's :mod:`oxicache.backends` engines from what fastapi-cache2 took. Each still answers
fastapi-cache2's own four methods (``get``, ``get_with_ttl``, ``set``, ``clear``) on raw keys.
"""

from __future__ import annotations

from typing import Any

from ..types import Backend
from . import inmemory
from ._engine import EngineBackend, PeerBackendAdapter

__all__ = ["Backend", "EngineBackend", "PeerBackendAdapter", "inmemory"]


def __getattr__(name: str) -> Any:
    # Like fastapi-cache2's package: the engines with a client library load on first access.
    if name in ("redis", "memcached", "dynamodb"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""``MemcachedBackend``: oxicache's :class:`~oxicache.backends.MemcachedBackend`."""

from __future__ import annotations

from typing import Any

from .base import BaseCacheBackend

__all__ = ["MemcachedBackend"]

DEFAULT_MEMCACHE_PREFIX = "fastapi_cachex:"


class MemcachedBackend(BaseCacheBackend):
    """memcached, with fastapi-cachex's constructor (``servers=["host:port", ...]``).

    oxicache speaks the protocol itself over asyncio (no pymemcache, no worker threads).
    Unlike fastapi-cachex's, ``clear_path`` and ``clear_pattern`` work here (oxicache keeps
    per-path tags and per-route generation counters), and ``clear()`` drops this app's
    entries only, not the whole server (no ``flush_all``).
    """

    def __init__(self, servers: list[str], key_prefix: str = DEFAULT_MEMCACHE_PREFIX) -> None:
        from ....backends.memcached.client import MemcachedBackend as Engine

        if any(c.isspace() or ord(c) < 33 or ord(c) > 126 for c in key_prefix):
            raise ValueError(f"key_prefix must be printable ASCII without spaces: {key_prefix!r}")
        self.key_prefix = key_prefix
        self._engine = Engine(list(servers), prefix=key_prefix.rstrip(":") or "oxicache")

    def oxicache_backend(self) -> Any:
        return self._engine

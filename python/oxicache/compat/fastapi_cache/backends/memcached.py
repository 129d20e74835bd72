"""``MemcachedBackend(mcache)``: oxicache's memcached engine on the server of an aiomcache
client."""

from __future__ import annotations

from typing import Any

from ....backends.memcached.client import MemcachedBackend as _Engine
from ._engine import EngineBackend

__all__ = ["MemcachedBackend"]


class MemcachedBackend(EngineBackend):
    """``MemcachedBackend(aiomcache.Client(host, port))``: oxicache's
    :class:`oxicache.backends.MemcachedBackend` on that client's server (oxicache speaks the
    protocol itself; the aiomcache client is only read for its address). ``"host:port"`` or a
    list of them is accepted too. Unlike fastapi-cache2's, ``FastAPICache.clear`` works on it
    (oxicache invalidates by namespace generations)."""

    def __init__(self, mcache: Any) -> None:
        self.mcache = mcache
        self.servers = _servers_of(mcache)

    def make_engine(self, prefix: str) -> _Engine:
        return _Engine(self.servers, prefix=prefix)


def _servers_of(mcache: Any) -> list[str | tuple[str, int]]:
    if isinstance(mcache, str):
        return [mcache]
    if isinstance(mcache, list | tuple) and all(isinstance(s, str | tuple) for s in mcache):
        return list(mcache)
    pool = getattr(mcache, "_pool", None)
    host = getattr(pool, "_host", None)
    port = getattr(pool, "_port", None)
    if isinstance(host, str) and isinstance(port, int):
        return [(host, port)]
    raise TypeError(
        f"MemcachedBackend: cannot find the server of {mcache!r}: pass an aiomcache.Client "
        "or 'host:port'"
    )

"""What the compat backends share: an oxicache engine behind fastapi-cache2's four methods."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ....backends.base import Backend as EngineProtocol
from ..types import Backend

__all__ = ["EngineBackend", "PeerBackendAdapter"]

#: What ``set(key, value)`` without ``expire`` keeps a raw value for (engines need a TTL).
_NO_EXPIRY = 365 * 24 * 3600


class EngineBackend(Backend):
    """A fastapi-cache2 backend whose storage is an oxicache engine.

    ``FastAPICache.init`` asks it for the engine with the app's key prefix
    (:meth:`engine_for`); its own ``get``/``set``/``get_with_ttl``/``clear`` use that engine
    on raw keys, for code that called the backend directly.
    """

    _engine: EngineProtocol | None = None

    def make_engine(self, prefix: str) -> EngineProtocol:  # pragma: no cover - abstract
        raise NotImplementedError

    def engine_for(self, prefix: str) -> EngineProtocol | str:
        """The engine (or backend URL) oxicache is configured with."""
        engine = self._engine
        if engine is None or getattr(engine, "prefix", prefix) != prefix:
            engine = self._engine = self.make_engine(prefix)
        return engine

    def engine(self) -> EngineProtocol:
        if self._engine is None:
            self._engine = self.make_engine("oxicache")
        return self._engine

    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        engine = self.engine()
        value = await engine.get(key)
        if value is None:
            return 0, None
        ttl = await engine.ttl(key)
        return (int(ttl) if ttl is not None else -1), value

    async def get(self, key: str) -> bytes | None:
        return await self.engine().get(key)

    async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
        await self.engine().set(key, value, float(expire or _NO_EXPIRY))

    async def clear(self, namespace: str | None = None, key: str | None = None) -> int:
        if namespace:
            return await self.engine().delete_prefix(namespace)
        if key:
            return int(await self.engine().delete(key))
        return 0


class PeerBackendAdapter:
    """oxicache's backend protocol on a fastapi-cache2 backend of your own (a subclass of
    ``fastapi_cache.types.Backend``): entries are stored through its ``get``/``set``, and
    invalidated through its ``clear``. Such a backend knows no tags: ``invalidate(path=...)``
    leaves its entries to expire."""

    name = "fastapi-cache"
    max_item_size: int | None = None

    def __init__(self, peer: Backend, prefix: str) -> None:
        self.peer = peer
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"PeerBackendAdapter({self.peer!r}, prefix={self.prefix!r})"

    async def get(self, key: str) -> bytes | None:
        return await self.peer.get(key)

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        await self.peer.set(key, value, max(1, math.ceil(ttl)))

    async def ttl(self, key: str) -> float | None:
        left, value = await self.peer.get_with_ttl(key)
        return None if value is None else float(left)

    async def delete(self, key: str) -> bool:
        return bool(await self.peer.clear(key=key))

    async def delete_prefix(self, prefix: str) -> int:
        return int(await self.peer.clear(namespace=prefix.rstrip(":")))

    async def delete_tag(self, tag: str) -> int:
        return 0

    async def clear(self) -> None:
        await self.peer.clear(namespace=self.prefix)

    async def close(self) -> None:
        return None

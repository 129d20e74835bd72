"""``MemoryBackend``: the Backend protocol on the in-process Rust store.

What a remote engine does, in this process's memory: the same byte-bounded quick_cache store
the routes use (``_core.BlobStore``), values kept as the very ``bytes`` objects given, with a
TTL and tags. It is the reference the contract suite runs every engine against, and a way to
exercise the remote code paths (envelopes, frames, the guard) without a server. It is not
shared between processes: for one process, the default (no backend) is faster.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import _core
from ..exceptions import ConfigError, EntryTooLarge

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Keys, values, TTLs and tags in this process's memory (see the module doc)."""

    name = "memory"

    def __init__(
        self,
        *,
        prefix: str = "oxicache",
        max_size: int = 64 * 1024 * 1024,
        max_item_size: int | None = 8 * 1024 * 1024,
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError("MemoryBackend: prefix must be a non-empty string")
        self.prefix = prefix
        self.max_item_size = max_item_size
        limit = max_item_size if max_item_size is not None else max_size
        # Room for the key and bookkeeping beside the largest value accepted.
        self._store = _core.BlobStore(max_size, limit + 64 * 1024)

    def __repr__(self) -> str:
        return f"MemoryBackend(prefix={self.prefix!r})"

    async def get(self, key: str) -> bytes | None:
        return self._store.get(key)

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        if self.max_item_size is not None and len(value) > self.max_item_size:
            raise EntryTooLarge(
                f"{len(value)} bytes is over the memory backend's limit of {self.max_item_size}"
            )
        if not self._store.set(key, value, float(ttl), list(tags)):
            raise EntryTooLarge(f"{len(value)} bytes is over the memory store's entry limit")

    async def ttl(self, key: str) -> float | None:
        return self._store.ttl(key)

    async def delete(self, key: str) -> bool:
        return self._store.delete(key)

    async def delete_prefix(self, prefix: str) -> int:
        return self._store.delete_prefix(prefix)

    async def delete_tag(self, tag: str) -> int:
        return self._store.delete_tag(tag)

    async def clear(self) -> None:
        self._store.delete_prefix(self.prefix + ":")

    async def close(self) -> None:
        return None

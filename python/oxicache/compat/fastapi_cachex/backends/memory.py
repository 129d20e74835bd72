"""``MemoryBackend``: this process's memory."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from ..types import CacheEntry, counter_entry, counter_value
from ._local import KV, BoundedEngine, LocalEntries
from .base import BaseCacheBackend, check_counter, entry_ttl, validate_delta

__all__ = ["MemoryBackend"]


class MemoryBackend(BaseCacheBackend):
    """The in-process cache of each worker.

    Without ``max_entries``, cached routes use oxicache's in-process store (Rust, bounded by
    bytes: ``oxicache.configure(max_size=...)``, 256 MiB by default) and the key-value
    primitives a dictionary of their own. With ``max_entries=N``, everything this backend
    holds (cached responses and the primitives' keys alike) is kept in one store of at most
    ``N`` entries: storing one more evicts the least recently used, as in fastapi-cachex.

    Expired entries are dropped when read or when room is needed, so ``cleanup_interval``
    is accepted and validated but no task runs.
    """

    def __init__(self, cleanup_interval: int = 60, *, max_entries: int | None = None) -> None:
        if cleanup_interval <= 0:
            raise ValueError(f"cleanup_interval must be positive, got {cleanup_interval!r}")
        if max_entries is not None:
            if isinstance(max_entries, bool) or not isinstance(max_entries, int):
                raise TypeError(f"max_entries must be an int or None, got {max_entries!r}")
            if max_entries <= 0:
                raise ValueError(f"max_entries must be positive, got {max_entries!r}")
        self.cleanup_interval = cleanup_interval
        self.max_entries = max_entries
        self.entries = LocalEntries(max_entries)
        self._engine = None if max_entries is None else BoundedEngine(self.entries)

    def oxicache_backend(self) -> Any:
        return "memory://" if self._engine is None else self._engine

    def start_cleanup(self) -> None:
        """Nothing to start: expired entries are dropped as they are met."""

    def stop_cleanup(self) -> None:
        """Nothing to stop."""

    async def aclose(self) -> None:
        """Nothing to close."""

    async def get(self, key: str) -> CacheEntry | None:
        item = self.entries.get(KV, key)
        return None if item is None else copy.copy(item.value)

    async def set(self, key: str, value: CacheEntry, ttl: int | timedelta | None = None) -> None:
        self.entries.store(KV, key, copy.copy(value), entry_ttl(ttl))

    async def delete(self, key: str) -> bool:
        return self.entries.pop(KV, key) is not None

    async def delete_many(self, keys: Iterable[str]) -> int:
        doomed = set(keys)
        return self.entries.remove_where(KV, lambda key, _: key in doomed)

    async def get_and_delete(self, key: str) -> CacheEntry | None:
        item = self.entries.pop(KV, key)
        return None if item is None else item.value

    async def set_if_absent(
        self, key: str, value: CacheEntry, ttl: int | timedelta | None = None
    ) -> bool:
        seconds = entry_ttl(ttl)
        with self.entries.lock:
            if self.entries.get(KV, key) is not None:
                return False
            self.entries.store(KV, key, copy.copy(value), seconds)
            return True

    async def delete_if_equals(self, key: str, expected: CacheEntry) -> bool:
        with self.entries.lock:
            item = self.entries.get(KV, key)
            if item is None or item.value != expected:
                return False
            self.entries.pop(KV, key)
            return True

    async def expire_if_equals(self, key: str, expected: CacheEntry, ttl: int | timedelta) -> bool:
        seconds = entry_ttl(ttl)
        with self.entries.lock:
            item = self.entries.get(KV, key)
            if item is None or item.value != expected:
                return False
            item.expiry = self.entries.expiry_of(seconds)
            return True

    async def set_if_equals(
        self,
        key: str,
        expected: CacheEntry,
        value: CacheEntry,
        ttl: int | timedelta | None = None,
    ) -> bool:
        seconds = entry_ttl(ttl)
        with self.entries.lock:
            item = self.entries.get(KV, key)
            if item is None or item.value != expected:
                return False
            self.entries.store(KV, key, copy.copy(value), seconds)
            return True

    async def increment(self, key: str, delta: int = 1, ttl: int | timedelta | None = None) -> int:
        validate_delta(delta)
        seconds = entry_ttl(ttl)
        with self.entries.lock:
            item = self.entries.get(KV, key)
            if item is None:
                self.entries.store(KV, key, counter_entry(delta), seconds)
                return delta
            value = check_counter(counter_value(item.value) + delta)
            item.value = counter_entry(value)
            return value

    async def get_all_keys(self) -> list[str]:
        return [key for key, _ in self.entries.live(KV)]

    async def get_cache_data(self) -> dict[str, tuple[CacheEntry, float | None]]:
        return {key: (copy.copy(item.value), item.expiry) for key, item in self.entries.live(KV)}

    async def _clear_keys(self) -> None:
        self.entries.remove_where(KV, lambda _key, _item: True)

    async def _clear_key_pattern(self, pattern: str) -> int:
        return self.entries.remove_where(KV, lambda key, _: fnmatchcase(key, pattern))

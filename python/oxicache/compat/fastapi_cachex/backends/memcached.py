"""``MemcachedBackend``: oxicache's :class:`~oxicache.backends.MemcachedBackend` for cached
routes, and the key-value primitives on the same servers."""

from __future__ import annotations

import hashlib
import secrets
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from ..exceptions import BackendUnavailableError, CacheXError
from ..types import CacheEntry, counter_value, decode_entry, encode_entry
from .base import BaseCacheBackend, ClientSlot, check_counter, entry_ttl, validate_delta

__all__ = ["MemcachedBackend"]

DEFAULT_MEMCACHE_PREFIX = "fastapi_cachex:"
#: Memcached reads an expiry over 30 days as an absolute Unix time.
_RELATIVE_LIMIT = 30 * 24 * 3600
_MAX_KEY = 250


def _exptime(ttl: int | None) -> int:
    if ttl is None:
        return 0
    return ttl if ttl <= _RELATIVE_LIMIT else int(time.time()) + ttl


class MemcachedBackend(BaseCacheBackend):
    """memcached, with fastapi-cachex's constructor (``servers=["host:port", ...]``).

    oxicache speaks the protocol over asyncio (emcache; no pymemcache, no worker threads).
    Unlike fastapi-cachex's, ``clear_path`` and ``clear_pattern`` work here (oxicache keeps
    per-path tags and per-route generation counters), and ``clear()`` drops this app's
    entries only, not the whole server (no ``flush_all``).

    The key-value primitives keep their keys under a generation number of their own
    (``clear()`` and ``clear_pattern()`` move it on: memcached cannot list keys, so a pattern
    drops every primitive key, more than asked and never less). ``get_all_keys`` and
    ``get_cache_data`` are empty, with a ``RuntimeWarning``, as in fastapi-cachex.
    """

    def __init__(self, servers: list[str], key_prefix: str = DEFAULT_MEMCACHE_PREFIX) -> None:
        from ....backends.memcached.client import MemcachedBackend as Engine

        if any(c.isspace() or ord(c) < 33 or ord(c) > 126 for c in key_prefix):
            raise ValueError(f"key_prefix must be printable ASCII without spaces: {key_prefix!r}")
        self.key_prefix = key_prefix
        self.servers = list(servers)
        prefix = key_prefix.rstrip(":") or "oxicache"
        self._engine = Engine(list(servers), prefix=prefix)
        self._kv = f"{prefix}:kv"
        self._slot = ClientSlot(self._connect, "close")

    def oxicache_backend(self) -> Any:
        return self._engine

    async def _connect(self) -> Any:
        import emcache

        hosts = [s.rsplit(":", 1) for s in self.servers]
        return await emcache.create_client(
            [emcache.MemcachedHostAddress(h, int(p)) for h, p in hosts],
            timeout=1.0,
            connection_timeout=1.0,
        )

    @asynccontextmanager
    async def _mc(self) -> AsyncIterator[Any]:
        try:
            yield await self._slot.get()
        except (TimeoutError, OSError) as e:
            raise BackendUnavailableError(f"memcached is unavailable: {e}") from e

    async def _generation(self, mc: Any) -> bytes:
        """The primitives' current generation (created at a random start when missing, so
        one evicted and recreated never repeats an old one)."""
        key = f"{self._kv}#gen".encode()
        found = await mc.get(key)
        if found is not None:
            return bytes(found.value)
        import emcache

        with suppress(emcache.NotStoredStorageCommandError):
            await mc.add(key, str(secrets.randbits(56)).encode())
        found = await mc.get(key)
        return b"0" if found is None else bytes(found.value)

    async def _key(self, mc: Any, key: str) -> bytes:
        generation = (await self._generation(mc)).decode().strip()
        name = f"{self._kv}:{generation}:{key}"
        raw = name.encode()
        if len(raw) > _MAX_KEY or any(b <= 32 or b >= 127 for b in raw):
            digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=20)
            raw = f"{self._kv}:{generation}:#{digest.hexdigest()}".encode()
        return raw

    # --- primitives --------------------------------------------------------------------------

    async def get(self, key: str) -> CacheEntry | None:
        async with self._mc() as mc:
            found = await mc.get(await self._key(mc, key))
        return None if found is None else decode_entry(bytes(found.value))

    async def set(self, key: str, value: CacheEntry, ttl: int | timedelta | None = None) -> None:
        seconds = entry_ttl(ttl)
        async with self._mc() as mc:
            await mc.set(await self._key(mc, key), encode_entry(value), exptime=_exptime(seconds))

    async def delete(self, key: str) -> bool:
        import emcache

        async with self._mc() as mc:
            try:
                await mc.delete(await self._key(mc, key))
            except emcache.NotFoundCommandError:
                return False
        return True

    async def get_and_delete(self, key: str) -> CacheEntry | None:
        import emcache

        async with self._mc() as mc:
            name = await self._key(mc, key)
            found = await mc.gets(name)
            if found is None:
                return None
            try:
                # Only the caller whose delete removes it gets it: a cas to an instantly
                # expired value settles who read it first.
                await mc.cas(name, b"", found.cas, exptime=-1)
            except emcache.StorageCommandError:
                return None
        return decode_entry(bytes(found.value))

    async def set_if_absent(
        self, key: str, value: CacheEntry, ttl: int | timedelta | None = None
    ) -> bool:
        import emcache

        seconds = entry_ttl(ttl)
        async with self._mc() as mc:
            try:
                await mc.add(
                    await self._key(mc, key), encode_entry(value), exptime=_exptime(seconds)
                )
            except emcache.NotStoredStorageCommandError:
                return False
        return True

    async def _swap(
        self, key: str, expected: CacheEntry, value: bytes | None, ttl: int | None
    ) -> bool:
        """Replaces ``key``'s value (``None``: removes it) only while it holds ``expected``,
        with memcached's check-and-set."""
        import emcache

        async with self._mc() as mc:
            name = await self._key(mc, key)
            found = await mc.gets(name)
            if found is None or decode_entry(bytes(found.value)) != expected:
                return False
            data, exptime = (b"", -1) if value is None else (value, _exptime(ttl))
            try:
                await mc.cas(name, data, found.cas, exptime=exptime)
            except emcache.StorageCommandError:
                return False
        return True

    async def delete_if_equals(self, key: str, expected: CacheEntry) -> bool:
        return await self._swap(key, expected, None, None)

    async def expire_if_equals(self, key: str, expected: CacheEntry, ttl: int | timedelta) -> bool:
        return await self._swap(key, expected, encode_entry(expected), entry_ttl(ttl))

    async def set_if_equals(
        self,
        key: str,
        expected: CacheEntry,
        value: CacheEntry,
        ttl: int | timedelta | None = None,
    ) -> bool:
        return await self._swap(key, expected, encode_entry(value), entry_ttl(ttl))

    async def increment(self, key: str, delta: int = 1, ttl: int | timedelta | None = None) -> int:
        """Adds ``delta`` with memcached's ``incr`` (a negative one with check-and-set, since
        memcached's ``decr`` stops at 0): counters are unsigned here, as in fastapi-cachex."""
        import emcache

        validate_delta(delta)
        seconds = entry_ttl(ttl)
        async with self._mc() as mc:
            name = await self._key(mc, key)
            while True:
                found = await mc.gets(name)
                if found is None:
                    if delta < 0:
                        raise CacheXError("Counter increment would leave memcached's range")
                    try:
                        await mc.add(name, str(delta).encode(), exptime=_exptime(seconds))
                        return delta
                    except emcache.NotStoredStorageCommandError:
                        continue  # created meanwhile: add to it
                entry = decode_entry(bytes(found.value))
                current = counter_value(entry) if entry is not None else None
                if current is None:
                    raise CacheXError("Cache key holds a value that is not a counter")
                value = check_counter(current + delta)
                if value < 0:
                    raise CacheXError("Counter increment would leave memcached's range")
                if delta >= 0:
                    bumped = await mc.increment(name, delta)
                    if bumped is None:
                        continue  # expired meanwhile
                    return int(bumped)
                try:
                    # cas keeps no expiry of its own: the counter's window is approximated
                    # by the ttl given (memcached cannot read an item's expiry).
                    await mc.cas(name, str(value).encode(), found.cas, exptime=_exptime(seconds))
                    return value
                except emcache.StorageCommandError:
                    continue

    async def get_all_keys(self) -> list[str]:
        warnings.warn(
            "memcached cannot list keys: get_all_keys() returns an empty list",
            RuntimeWarning,
            stacklevel=2,
        )
        return []

    async def get_cache_data(self) -> dict[str, tuple[CacheEntry, float | None]]:
        warnings.warn(
            "memcached cannot list keys: get_cache_data() returns an empty dict",
            RuntimeWarning,
            stacklevel=2,
        )
        return {}

    async def _clear_keys(self) -> None:
        async with self._mc() as mc:
            await self._generation(mc)
            await mc.increment(f"{self._kv}#gen".encode(), 1)

    async def _clear_key_pattern(self, pattern: str) -> int:
        await self._clear_keys()
        return 0

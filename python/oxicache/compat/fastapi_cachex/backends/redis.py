"""``AsyncRedisCacheBackend``: oxicache's :class:`~oxicache.backends.RedisBackend` for cached
routes, and the key-value primitives on the same server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from ..exceptions import BackendUnavailableError, CacheXError
from ..types import CacheEntry, decode_entry, encode_entry
from .base import BaseCacheBackend, ClientSlot, entry_ttl, validate_delta
from .config import DEFAULT_REDIS_PREFIX, RedisConfig

__all__ = ["AsyncRedisCacheBackend"]

_BATCH = 500
_GLOB = frozenset("*?[]\\")

# A counter created by this call gets the ttl; an existing one keeps its expiry (a fixed
# window, the shape rate limiters need).
_INCREMENT = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return value
"""
# The compare-and-* operations: the caller compared the decoded entry; the script acts only if
# the key still holds the very bytes that were compared.
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXPIRE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_SET_IF = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2])
else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1
"""


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _GLOB else c for c in text)


class AsyncRedisCacheBackend(BaseCacheBackend):
    """Redis, with fastapi-cachex's constructor.

    Cached routes use oxicache's connection (pipelined reads, a deadline per read, a circuit
    breaker: a Redis that is down makes requests misses, never errors). ``key_prefix``
    becomes the oxicache prefix (its trailing ``:`` dropped); route entries are oxicache's
    framed envelopes, not fastapi-cachex's JSON, so the two libraries do not read each
    other's entries: use a fresh prefix, or let the old keys expire. The key-value primitives
    keep their keys under ``<prefix>:kv:`` on the same server, with a client of their own;
    a failed call raises :class:`BackendUnavailableError` (also the original error's type is
    chained). ``protocol`` is accepted and ignored (oxicache speaks RESP2). Other keyword
    arguments go to redis-py's client, as in fastapi-cachex.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: str | None = None,
        db: int = 0,
        socket_timeout: float = 1.0,
        socket_connect_timeout: float = 1.0,
        key_prefix: str = DEFAULT_REDIS_PREFIX,
        protocol: int = 2,
        **kwargs: Any,
    ) -> None:
        for name in ("encoding", "decode_responses"):
            if name in kwargs:
                raise TypeError(
                    f"AsyncRedisCacheBackend() got an unexpected keyword argument {name!r}"
                )
        try:
            from ....backends.redis.client import RedisBackend
        except ImportError as exc:  # pragma: no cover - redis is a dependency of the extra
            raise CacheXError("redis is not installed: pip install 'oxicache[redis]'") from exc
        self.key_prefix = key_prefix
        self.protocol = protocol
        host_part = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self._url = f"redis://{quote(host_part, safe='[]:')}:{int(port)}/{int(db)}"
        client_kwargs = dict(kwargs)
        if password is not None:
            client_kwargs["password"] = password
        client_kwargs.setdefault("socket_timeout", socket_timeout)
        client_kwargs.setdefault("socket_connect_timeout", socket_connect_timeout)
        self._client_kwargs = client_kwargs
        prefix = key_prefix.rstrip(":") or "oxicache"
        self._kv = f"{prefix}:kv:"
        self._engine = RedisBackend(self._url, prefix=prefix, **client_kwargs)
        self._slot = ClientSlot(self._connect, "aclose")

    @staticmethod
    def load_from_config(config: RedisConfig) -> AsyncRedisCacheBackend:
        """A backend from a :class:`RedisConfig`."""
        return AsyncRedisCacheBackend(
            host=config.host,
            port=config.port,
            password=None if config.password is None else config.password.get_secret_value(),
            db=config.db,
            socket_timeout=config.socket_timeout,
            socket_connect_timeout=config.socket_connect_timeout,
            key_prefix=config.key_prefix,
            protocol=config.protocol,
        )

    def oxicache_backend(self) -> Any:
        return self._engine

    # --- the primitives' client, per process and event loop ---------------------------------

    @asynccontextmanager
    async def _redis(self) -> AsyncIterator[Any]:
        import redis.exceptions

        try:
            yield await self._slot.get()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
            raise BackendUnavailableError(f"Redis is unavailable: {e}") from e

    async def _connect(self) -> Any:
        import redis.asyncio

        return redis.asyncio.Redis.from_url(self._url, **self._client_kwargs)

    def _key(self, key: str) -> str:
        return self._kv + key

    async def _scan(self, client: Any, pattern: str) -> list[bytes]:
        return [k async for k in client.scan_iter(match=self._escaped() + pattern, count=_BATCH)]

    def _escaped(self) -> str:
        return _escape(self._kv)

    # --- primitives --------------------------------------------------------------------------

    async def get(self, key: str) -> CacheEntry | None:
        async with self._redis() as r:
            return decode_entry(await r.get(self._key(key)))

    async def set(self, key: str, value: CacheEntry, ttl: int | timedelta | None = None) -> None:
        seconds = entry_ttl(ttl)
        async with self._redis() as r:
            await r.set(self._key(key), encode_entry(value), ex=seconds)

    async def delete(self, key: str) -> bool:
        async with self._redis() as r:
            return bool(await r.delete(self._key(key)))

    async def delete_many(self, keys: Iterable[str]) -> int:
        names = [self._key(k) for k in keys]
        removed = 0
        async with self._redis() as r:
            for at in range(0, len(names), _BATCH):
                removed += await r.delete(*names[at : at + _BATCH])
        return removed

    async def get_and_delete(self, key: str) -> CacheEntry | None:
        async with self._redis() as r:
            return decode_entry(await r.getdel(self._key(key)))

    async def set_if_absent(
        self, key: str, value: CacheEntry, ttl: int | timedelta | None = None
    ) -> bool:
        seconds = entry_ttl(ttl)
        async with self._redis() as r:
            return bool(await r.set(self._key(key), encode_entry(value), ex=seconds, nx=True))

    async def _compare(self, key: str, expected: CacheEntry, script: str, *args: Any) -> bool:
        async with self._redis() as r:
            raw = await r.get(self._key(key))
            if raw is None or decode_entry(raw) != expected:
                return False
            return bool(await r.eval(script, 1, self._key(key), raw, *args))

    async def delete_if_equals(self, key: str, expected: CacheEntry) -> bool:
        return await self._compare(key, expected, _DELETE_IF)

    async def expire_if_equals(self, key: str, expected: CacheEntry, ttl: int | timedelta) -> bool:
        return await self._compare(key, expected, _EXPIRE_IF, entry_ttl(ttl))

    async def set_if_equals(
        self,
        key: str,
        expected: CacheEntry,
        value: CacheEntry,
        ttl: int | timedelta | None = None,
    ) -> bool:
        seconds = entry_ttl(ttl) or 0
        return await self._compare(key, expected, _SET_IF, encode_entry(value), seconds)

    async def increment(self, key: str, delta: int = 1, ttl: int | timedelta | None = None) -> int:
        import redis.exceptions

        validate_delta(delta)
        seconds = entry_ttl(ttl) or 0
        async with self._redis() as r:
            try:
                return int(await r.eval(_INCREMENT, 1, self._key(key), delta, seconds))
            except redis.exceptions.ResponseError as e:
                if "overflow" in str(e):
                    raise CacheXError(
                        "Counter increment would overflow a signed 64-bit integer"
                    ) from e
                raise CacheXError("Cache key holds a value that is not a counter") from e

    async def get_all_keys(self) -> list[str]:
        async with self._redis() as r:
            found = await self._scan(r, "*")
        return [k.decode()[len(self._kv) :] for k in found]

    async def get_cache_data(self) -> dict[str, tuple[CacheEntry, float | None]]:
        import time

        async with self._redis() as r:
            names = await self._scan(r, "*")
            data: dict[str, tuple[CacheEntry, float | None]] = {}
            for at in range(0, len(names), _BATCH):
                pipe = r.pipeline(transaction=False)
                for name in names[at : at + _BATCH]:
                    pipe.get(name)
                    pipe.pttl(name)
                replies = await pipe.execute()
                now = time.time()
                chunk = names[at : at + _BATCH]
                for i, name in enumerate(chunk):
                    entry, pttl = decode_entry(replies[2 * i]), replies[2 * i + 1]
                    if entry is not None:
                        expiry = now + pttl / 1000 if pttl is not None and pttl >= 0 else None
                        data[name.decode()[len(self._kv) :]] = (entry, expiry)
        return data

    async def _clear_keys(self) -> None:
        await self._clear_key_pattern("*")

    async def _clear_key_pattern(self, pattern: str) -> int:
        async with self._redis() as r:
            names = await self._scan(r, pattern)
            removed = 0
            for at in range(0, len(names), _BATCH):
                removed += await r.delete(*names[at : at + _BATCH])
        return removed

"""``CacheManager``: the application cache, JSON values under a key prefix, on the backend's
key-value primitives."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import json
import random
import time
import warnings
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from .backends.base import BaseCacheBackend, entry_ttl
from .exceptions import LockTimeoutError
from .lock import CacheLock
from .proxy import BackendProxy
from .types import CacheEntry

__all__ = ["CacheManager"]

_GLOB = frozenset("*?[]\\")
_MISSING = object()
#: Waiters poll the cache from 50 ms, backing off by half up to 0.5 s (10 % jitter).
_FIRST_POLL, _MAX_POLL, _BACKOFF = 0.05, 0.5, 1.5
#: The keys this task computes under a lock, so a nested get_or_set of the same key does not
#: wait for itself.
_computing: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "cachex_computing", default=frozenset()
)

Factory = Callable[[], Any] | Callable[[], Awaitable[Any]]


def _check_lock(lock: object, *, optional: bool) -> None:
    if (lock is None and optional) or isinstance(lock, bool):
        return
    kind = "a bool or None" if optional else "a bool"
    raise TypeError(f"lock must be {kind}, got {type(lock).__name__}")


class CacheManager:
    """Any JSON value under ``key_prefix + key``, on ``backend`` (default: the backend set
    with ``BackendProxy.set()``).

    Values go through JSON both ways, on a miss too: a tuple comes back as a list, integer
    dict keys as strings. ``default_ttl`` applies when ``set`` gets no ``ttl`` (``None``:
    no expiry). ``get_or_set`` computes a missing value once across every process sharing
    the backend (a :class:`CacheLock` per key) unless ``lock=False``.
    """

    def __init__(
        self,
        backend: BaseCacheBackend | None = None,
        key_prefix: str = "cache:",
        default_ttl: int | timedelta | None = None,
        *,
        lock: bool = True,
        lock_ttl: int | timedelta = 60,
    ) -> None:
        self.backend = backend if backend is not None else BackendProxy.get()
        self.key_prefix = key_prefix
        self.default_ttl = entry_ttl(default_ttl, "default_ttl")
        _check_lock(lock, optional=False)
        if lock_ttl is None:
            raise ValueError("lock_ttl must be a positive number of seconds, not None")
        self.lock = lock
        self.lock_ttl: int = entry_ttl(lock_ttl, "lock_ttl") or 0
        if self._prefix_is_glob:
            warnings.warn(
                f"CacheManager key_prefix {key_prefix!r} holds a glob character (*?[]\\): "
                "clear_pattern() lists every key and filters them here instead of asking "
                "the backend; choose a prefix without them to keep it fast",
                UserWarning,
                stacklevel=2,
            )

    @property
    def _prefix_is_glob(self) -> bool:
        return not _GLOB.isdisjoint(self.key_prefix)

    def _key(self, key: str) -> str:
        return self.key_prefix + key

    @staticmethod
    def _entry(value: Any) -> CacheEntry:
        content = json.dumps(value).encode()
        return CacheEntry(fingerprint=hashlib.sha256(content).hexdigest(), content=content)

    def _ttl(self, ttl: int | timedelta | None) -> int | None:
        return entry_ttl(ttl) if ttl is not None else self.default_ttl

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``; ``default`` when missing, expired or not JSON."""
        entry = await self.backend.get(self._key(key))
        if entry is None:
            return default
        try:
            return json.loads(entry.content)
        except (ValueError, UnicodeDecodeError):
            return default

    async def set(self, key: str, value: Any, ttl: int | timedelta | None = None) -> None:
        """Stores ``value`` (JSON-serializable: ``TypeError`` otherwise) for ``ttl``
        seconds (default ``default_ttl``)."""
        seconds = self._ttl(ttl)
        await self.backend.set(self._key(key), self._entry(value), seconds)

    async def add(self, key: str, value: Any, ttl: int | timedelta | None = None) -> bool:
        """Stores ``value`` only if ``key`` holds nothing (one atomic step: of concurrent
        callers exactly one gets True)."""
        seconds = self._ttl(ttl)
        return await self.backend.set_if_absent(self._key(key), self._entry(value), seconds)

    async def delete(self, key: str) -> bool:
        """Removes ``key``; whether it held a value."""
        return await self.backend.get_and_delete(self._key(key)) is not None

    async def has(self, key: str) -> bool:
        """Whether ``key`` holds a live value (not decoded)."""
        return await self.backend.get(self._key(key)) is not None

    async def _compute(self, key: str, factory: Factory, ttl: int | None) -> Any:
        value = factory()
        if inspect.isawaitable(value):
            value = await value
        entry = self._entry(value)
        await self.backend.set(self._key(key), entry, ttl if ttl is not None else self.default_ttl)
        return json.loads(entry.content)

    async def _compute_holding(
        self, key: str, factory: Factory, ttl: int | None, held: CacheLock
    ) -> Any:
        token = _computing.set(_computing.get() | {self._lock_id(key)})
        try:
            found = await self.get(key, _MISSING)
            if found is not _MISSING:
                return found  # computed by the previous holder meanwhile
            return await self._compute(key, factory, ttl)
        finally:
            _computing.reset(token)
            with suppress(Exception):  # the lease frees it anyway
                await held.release()

    def _lock_id(self, key: str) -> str:
        return f"{id(self.backend)}:{self._key(key)}"

    async def get_or_set(
        self,
        key: str,
        factory: Factory,
        ttl: int | timedelta | None = None,
        *,
        lock: bool | None = None,
        lock_ttl: int | timedelta | None = None,
        wait_timeout: float | None = None,
        raise_on_timeout: bool = False,
    ) -> Any:
        """The value of ``key``; on a miss, ``factory()`` (awaited if it gives an awaitable)
        is stored and returned as it reads back.

        With the lock (the manager's ``lock`` unless ``lock=`` says otherwise), one caller
        computes while the others poll the cache with backoff; a waiter takes over when the
        holder fails or its lease (``lock_ttl``) ends. After ``wait_timeout`` seconds a waiter
        computes itself, or raises :class:`LockTimeoutError` with ``raise_on_timeout``.
        """
        _check_lock(lock, optional=True)
        seconds = entry_ttl(ttl)
        lease = entry_ttl(lock_ttl, "lock_ttl")
        if wait_timeout is not None:
            if isinstance(wait_timeout, bool) or not isinstance(wait_timeout, int | float):
                raise TypeError(
                    f"wait_timeout must be a number of seconds or None, got "
                    f"{type(wait_timeout).__name__}"
                )
            if wait_timeout <= 0:
                raise ValueError(f"wait_timeout must be greater than zero, got {wait_timeout!r}")
        found = await self.get(key, _MISSING)
        if found is not _MISSING:
            return found
        if not (self.lock if lock is None else lock) or self._lock_id(key) in _computing.get():
            return await self._compute(key, factory, seconds)
        lease = self.lock_ttl if lease is None else lease
        held = CacheLock(self._key(key), ttl=lease, backend=self.backend)
        if await held.acquire(blocking=False):
            return await self._compute_holding(key, factory, seconds, held)
        started = time.monotonic()
        pause = _FIRST_POLL
        while True:
            elapsed = time.monotonic() - started
            if wait_timeout is not None and elapsed >= wait_timeout:
                found = await self.get(key, _MISSING)
                if found is not _MISSING:
                    return found
                if raise_on_timeout:
                    raise LockTimeoutError(
                        f"Waiting for cache key {key!r} timed out after {wait_timeout}s"
                    )
                return await self._compute(key, factory, seconds)
            sleep = pause * random.uniform(0.9, 1.1)
            if wait_timeout is not None:
                sleep = min(sleep, wait_timeout - elapsed)
            await asyncio.sleep(max(0.0, sleep))
            pause = min(pause * _BACKOFF, _MAX_POLL)
            found = await self.get(key, _MISSING)
            if found is not _MISSING:
                return found
            held = CacheLock(self._key(key), ttl=lease, backend=self.backend)
            if await held.acquire(blocking=False):
                return await self._compute_holding(key, factory, seconds, held)

    async def clear_pattern(self, pattern: str) -> int:
        """Removes this manager's keys whose rest (after ``key_prefix``) matches the glob
        ``pattern``; how many. On memcached (no key listing) every key of the primitives
        is dropped, more than asked, and 0 is returned."""
        if self._prefix_is_glob:
            prefix = self.key_prefix
            keys = [
                k
                for k in await self.backend.get_all_keys()
                if k.startswith(prefix) and fnmatchcase(k[len(prefix) :], pattern)
            ]
            return await self.backend.delete_many(keys)
        return await self.backend._clear_key_pattern(self._key(pattern))

    async def clear_prefix(self, prefix: str | None = None) -> int:
        """Removes this manager's keys that start with ``key_prefix + prefix``; how many
        (none on memcached, which cannot list keys)."""
        start = self._key(prefix or "")
        keys = [k for k in await self.backend.get_all_keys() if k.startswith(start)]
        return await self.backend.delete_many(keys)

    async def clear(self) -> int:
        """Removes every key of this manager (see :meth:`clear_prefix`)."""
        return await self.clear_prefix()

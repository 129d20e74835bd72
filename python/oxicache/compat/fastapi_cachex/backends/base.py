"""What the compatibility backends share: the oxicache engine each stands for, fastapi-cachex's
clearing methods, and its key-value primitives.

Cached routes are stored by oxicache's engine (``BackendProxy.set()`` configures it with
:func:`oxicache.configure`); their entries are oxicache's, under digest keys. The key-value
primitives (``get``/``set``/``delete``/``increment``/``set_if_absent``/...) store
:class:`~oxicache.compat.fastapi_cachex.types.CacheEntry` values beside them, on the same
server, under keys of their own (``CacheManager``, ``@cached``, ``CacheLock`` and counters use
them). ``get_all_keys`` and ``get_cache_data`` list those keys; cached routes are listed by the
monitoring routes (:func:`~oxicache.compat.fastapi_cachex.add_routes`).

The fallbacks written here in terms of ``get``/``set``/``delete`` are not atomic; every
built-in backend overrides them with one atomic operation, as fastapi-cachex's do.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any

from ....backends.base import Backend
from ..exceptions import CacheXError, TTLTypeError, TTLValueError
from ..types import CacheEntry, counter_entry, counter_value

__all__ = [
    "ENTRY_MAX_TTL",
    "MAX_TTL",
    "BaseCacheBackend",
    "ClientSlot",
    "check_counter",
    "entry_ttl",
    "validate_delta",
    "validate_ttl",
]

#: The longest ``ttl`` ``@cache`` accepts (ten years, in seconds).
MAX_TTL = 10 * 365 * 24 * 3600
#: The longest ``ttl`` the key-value primitives accept (2**31 - 1 seconds), as in 0.5.
ENTRY_MAX_TTL = 2**31 - 1
_INT64 = 2**63


def _seconds(ttl: int | timedelta, name: str) -> int:
    if isinstance(ttl, timedelta):
        if ttl.microseconds:
            raise TTLValueError(f"{name} must be a whole number of seconds, got {ttl!r}")
        return int(ttl.total_seconds())
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise TTLTypeError(
            f"{name} must be an int number of seconds or a timedelta, got {type(ttl).__name__}"
        )
    return ttl


def validate_ttl(ttl: int | timedelta | None, name: str = "ttl") -> int | None:
    """``@cache``'s ``ttl`` as whole seconds (``None`` stays ``None``; ``0`` stores nothing)."""
    if ttl is None:
        return None
    seconds = _seconds(ttl, name)
    if seconds < 0:
        raise TTLValueError(f"{name} must not be negative")
    if seconds > MAX_TTL:
        raise TTLValueError(f"{name} must be at most {MAX_TTL} seconds")
    return seconds


def entry_ttl(ttl: int | timedelta | None, name: str = "ttl") -> int | None:
    """A primitive's ``ttl``: ``None`` (no expiry) or a positive number of whole seconds,
    as fastapi-cachex 0.5 accepts (zero means different things on every server)."""
    if ttl is None:
        return None
    seconds = _seconds(ttl, name)
    if seconds <= 0:
        raise TTLValueError(f"{name} must be a positive number of seconds or None, got {ttl!r}")
    if seconds > ENTRY_MAX_TTL:
        raise TTLValueError(f"{name} must be at most {ENTRY_MAX_TTL} seconds")
    return seconds


def validate_delta(delta: int) -> int:
    """A counter's ``delta``: an ``int`` that fits a signed 64-bit integer."""
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError(f"delta must be an int, got {type(delta).__name__}")
    if not -_INT64 <= delta < _INT64:
        raise ValueError("delta must fit in a signed 64-bit integer")
    return delta


def check_counter(value: int) -> int:
    if not -_INT64 <= value < _INT64:
        raise CacheXError("Counter increment would overflow a signed 64-bit integer")
    return value


class ClientSlot:
    """The primitives' client of a remote backend, one per process and event loop: made on
    first use, and again in a forked child or another loop (whose sockets are not ours)."""

    def __init__(self, make: Callable[[], Awaitable[Any]], close: str) -> None:
        self._make = make
        self._close = close
        self._client: Any = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None

    async def get(self) -> Any:
        owner = (os.getpid(), asyncio.get_running_loop())
        if self._client is None or self._owner != owner:
            self._client = await self._make()
            self._owner = owner
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owner == (os.getpid(), asyncio.get_running_loop()):
            await getattr(client, self._close)()


class BaseCacheBackend:
    """A backend of the compatibility layer (see the module docstring).

    Subclasses implement ``get``, ``set``, ``delete``, ``get_all_keys``, ``get_cache_data``
    and the two hooks ``_clear_keys`` / ``_clear_key_pattern``; the other primitives have
    (non-atomic) fallbacks here.
    """

    def oxicache_backend(self) -> Backend | str:
        """What :func:`oxicache.configure` is given when this backend is set."""
        return "memory://"

    # --- key-value primitives ---------------------------------------------------------------

    async def get(self, key: str) -> CacheEntry | None:
        """The entry stored under ``key``, or ``None`` (absent or expired)."""
        raise NotImplementedError

    async def set(self, key: str, value: CacheEntry, ttl: int | timedelta | None = None) -> None:
        """Stores ``value`` under ``key`` for ``ttl`` seconds (``None``: no expiry)."""
        raise NotImplementedError

    async def delete(self, key: str) -> bool:
        """Removes ``key``; whether it held a live entry."""
        raise NotImplementedError

    async def get_all_keys(self) -> list[str]:
        """Every live key stored through the primitives."""
        raise NotImplementedError

    async def get_cache_data(self) -> dict[str, tuple[CacheEntry, float | None]]:
        """Every live key stored through the primitives, with its entry and its expiry (epoch
        seconds, ``None``: never)."""
        raise NotImplementedError

    async def _clear_keys(self) -> None:
        """Removes every key stored through the primitives."""
        raise NotImplementedError

    async def _clear_key_pattern(self, pattern: str) -> int:
        """Removes the primitives' keys matching the glob ``pattern``; how many."""
        raise NotImplementedError

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Removes every key of ``keys``; how many held a live entry."""
        count = 0
        for key in keys:
            count += bool(await self.delete(key))
        return count

    async def get_and_delete(self, key: str) -> CacheEntry | None:
        """Removes ``key`` and returns what it held (one caller of several gets it)."""
        value = await self.get(key)
        if value is None or not await self.delete(key):
            return None
        return value

    async def set_if_absent(
        self, key: str, value: CacheEntry, ttl: int | timedelta | None = None
    ) -> bool:
        """Stores ``value`` only when ``key`` holds nothing live; whether it did."""
        ttl = entry_ttl(ttl)
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete_if_equals(self, key: str, expected: CacheEntry) -> bool:
        """Removes ``key`` only while it holds ``expected``."""
        if await self.get(key) != expected:
            return False
        return bool(await self.delete(key))

    async def expire_if_equals(self, key: str, expected: CacheEntry, ttl: int | timedelta) -> bool:
        """Gives ``key`` a new ``ttl`` only while it holds ``expected``."""
        seconds = entry_ttl(ttl)
        if await self.get(key) != expected:
            return False
        await self.set(key, expected, seconds)
        return True

    async def set_if_equals(
        self,
        key: str,
        expected: CacheEntry,
        value: CacheEntry,
        ttl: int | timedelta | None = None,
    ) -> bool:
        """Replaces ``expected`` with ``value`` only while ``key`` still holds it."""
        seconds = entry_ttl(ttl)
        if await self.get(key) != expected:
            return False
        await self.set(key, value, seconds)
        return True

    async def increment(self, key: str, delta: int = 1, ttl: int | timedelta | None = None) -> int:
        """Adds ``delta`` to the counter at ``key`` (created at ``delta``, with ``ttl``, when
        absent); the new value. :class:`CacheXError` when ``key`` holds something else."""
        validate_delta(delta)
        seconds = entry_ttl(ttl)
        current = await self.get(key)
        value = delta if current is None else check_counter(counter_value(current) + delta)
        await self.set(key, counter_entry(value), seconds)
        return value

    # --- clearing ---------------------------------------------------------------------------

    async def clear(self) -> None:
        """Drops every entry: the cached routes' (:func:`oxicache.clear`: the in-process
        store, and the remote backend's keys under the app's prefix) and the primitives'."""
        from .._invalidation import clear_all

        await clear_all()
        await self._clear_keys()

    async def clear_path(self, path: str, include_params: bool = False) -> int:
        """Drops the entries stored for ``path`` (see
        :func:`oxicache.compat.fastapi_cachex.clear_path`: every query variant), and the
        primitives' key named ``path`` if there is one."""
        from .._invalidation import clear_path

        return await clear_path(path, include_params) + bool(await self.delete(path))

    async def clear_pattern(self, pattern: str) -> int:
        """Drops the cached routes whose fastapi-cachex key (or path) would match
        ``pattern`` (see :func:`oxicache.compat.fastapi_cachex.clear_pattern`), and the
        primitives' keys matching it."""
        from .._invalidation import clear_pattern

        return await clear_pattern(pattern) + await self._clear_key_pattern(pattern)

    async def aclose(self) -> None:
        """Closes the engine's connections and the primitives' client, if this backend owns
        them."""
        slot = getattr(self, "_slot", None)
        if isinstance(slot, ClientSlot):
            await slot.close()
        engine = getattr(self, "_engine", None)
        if engine is not None and not isinstance(engine, str):
            await engine.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

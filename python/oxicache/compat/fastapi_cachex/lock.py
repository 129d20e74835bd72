"""``CacheLock``: a lock held in the backend, so every process using it excludes the others."""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import suppress
from datetime import timedelta
from types import TracebackType

from .backends.base import BaseCacheBackend, entry_ttl
from .exceptions import LockTimeoutError
from .proxy import BackendProxy
from .types import CacheEntry

__all__ = ["CacheLock"]

#: The fingerprint of a lock's entry (its content is the holder's token).
LOCK_FINGERPRINT = "lock"


class CacheLock:
    """A lock named ``name``, held as the key ``key_prefix + name`` for at most ``ttl``
    seconds (a holder that dies frees it then).

    ``await lock.acquire()`` / ``await lock.release()``, or ``async with CacheLock(...)``
    (which raises :class:`LockTimeoutError` when ``timeout`` passes first). A held lock is
    released only by its holder (a token compared in one atomic step), so a holder whose
    lease ran out never frees the next holder's lock. One instance is one acquisition: make
    a new one for each.
    """

    def __init__(
        self,
        name: str,
        ttl: int | timedelta = 60,
        blocking: bool = True,
        timeout: float | None = None,
        poll_interval: float = 0.1,
        backend: BaseCacheBackend | None = None,
        key_prefix: str = "lock:",
    ) -> None:
        self.name = name
        self.ttl: int = entry_ttl(ttl) or 0
        if self.ttl <= 0:
            # entry_ttl(None) is None: a lock must expire.
            raise TypeError("ttl must be an int number of seconds or a timedelta, not None")
        self.blocking = blocking
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._backend = backend
        self.key_prefix = key_prefix
        self._entry = CacheEntry(
            fingerprint=LOCK_FINGERPRINT, content=secrets.token_hex(16).encode()
        )
        self._held = False

    @property
    def key(self) -> str:
        """The backend key this lock is held as."""
        return f"{self.key_prefix}{self.name}"

    def _get_backend(self) -> BaseCacheBackend:
        return self._backend if self._backend is not None else BackendProxy.get()

    async def acquire(
        self,
        blocking: bool | None = None,
        timeout: float | None = None,
        poll_interval: float | None = None,
        ttl: int | timedelta | None = None,
    ) -> bool:
        """Takes the lock: True when taken; False when held elsewhere (not blocking) or when
        ``timeout`` seconds passed first (blocking). Arguments override the instance's."""
        if self._held:
            raise RuntimeError(
                "This CacheLock instance is already held: use a new CacheLock for each acquisition"
            )
        wait = self.blocking if blocking is None else blocking
        limit = self.timeout if timeout is None else timeout
        interval = self.poll_interval if poll_interval is None else poll_interval
        lease = self.ttl if ttl is None else entry_ttl(ttl)
        backend = self._get_backend()
        self._held = True
        started = time.monotonic()
        try:
            while True:
                if await backend.set_if_absent(self.key, self._entry, lease):
                    return True
                if not wait:
                    break
                left = None if limit is None else limit - (time.monotonic() - started)
                if left is not None and left <= 0:
                    break
                await asyncio.sleep(interval if left is None else min(interval, left))
        except BaseException:
            self._held = False
            # A claim may have reached the backend before the interruption: withdraw it
            # (only ours: the token is compared).
            await asyncio.shield(self._withdraw(backend))
            raise
        self._held = False
        return False

    async def _withdraw(self, backend: BaseCacheBackend) -> None:
        # Best effort: the original error propagates either way.
        with suppress(Exception):
            await backend.delete_if_equals(self.key, self._entry)

    async def release(self) -> bool:
        """Frees the lock if this instance still holds it; False when its lease ran out or
        another holder has it."""
        self._held = False
        return await self._get_backend().delete_if_equals(self.key, self._entry)

    async def extend(self, ttl: int | timedelta | None = None) -> bool:
        """Restarts the lease (``ttl`` seconds, default the instance's) while still held."""
        lease = self.ttl if ttl is None else entry_ttl(ttl)
        assert lease is not None
        return await self._get_backend().expire_if_equals(self.key, self._entry, lease)

    async def locked(self) -> bool:
        """Whether anyone holds the lock."""
        return await self._get_backend().get(self.key) is not None

    async def __aenter__(self) -> CacheLock:
        if not await self.acquire():
            raise LockTimeoutError(f"Failed to acquire lock {self.name!r} within timeout")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

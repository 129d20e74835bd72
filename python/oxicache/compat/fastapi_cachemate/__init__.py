"""fastapi-cachemate 0.1.x's surface on the oxicache engine.

Migrating is changing the imports::

    from fastapi_cachemate import BaseCacheSettings, CacheSetup                    # before
    from oxicache.compat.fastapi_cachemate import BaseCacheSettings, CacheSetup    # after
    from oxicache.compat.fastapi_cachemate.cache import cache_response, is_bypass
    from oxicache.compat.fastapi_cachemate.core.backends.redis import RedisBackend
    from oxicache.compat.fastapi_cachemate.core.locks.redis import RedisLockManager

``CacheSetup.setup(backend, lock_manager, prefix=, settings=, coder_manager=,
compress_manager=)`` configures oxicache (:func:`oxicache.configure`): its Redis engine on
the backend's client, the key prefix, the bypass header and value, the lock lease,
compression. ``@cache_response(ttl=...)`` is :func:`oxicache.cache` with
``query_key="declared"`` (only the query parameters the route declares key it: a filter
model's or dataclass's fields are unpacked, undeclared parameters ignored) and
``refresh_ahead`` from the ``buffer`` setting. Responses say ``X-Cache-Status: HIT``,
``MISS``, ``BYPASS`` (the bypass header, or ``is_bypass.set(True)`` in a dependency) or
``NO_CACHE`` (the request said ``Cache-Control: no-cache`` or ``no-store``).

Where fastapi-cachemate was unsafe or loose, oxicache's behaviour is kept. The differences:

- Responses are stored as sent (status, headers, body) and replayed on a hit, rendered as
  FastAPI renders them; fastapi-cachemate stored the return value and FastAPI rendered it
  again on every hit. No coder or compress manager is involved: entries are oxicache's
  envelopes, zstd-compressed per ``compression_mode`` (``all``, ``smart`` from
  ``compression_min_size_bytes``, ``disabled``).
- A response carrying ``Set-Cookie``, ``Cache-Control: private``/``no-store``, or an error
  status is never stored (only 200, 203, 204, 300, 301, 308 are); fastapi-cachemate stored
  whatever the handler returned, a response object's headers dropped. Requests with
  ``Authorization`` or ``Cookie`` are answered uncached (``BYPASS``) unless the key names the
  user (a keyed dependency such as ``Depends(current_user)``).
- Keys hold the path and the declared query parameters as sent, in their order of names,
  plus the handler's typed arguments and the request headers it reads; fastapi-cachemate
  hashed the path and a 12-hex-digit (48-bit) digest of the query, so two queries could share
  an entry, and sorted and de-duplicated list values (``?tag=b&tag=a`` is another entry here:
  the handler gets another list).
- Refreshing ahead of expiry (``buffer``): in the last ``min(buffer * ttl,
  max_planing_execution_time)`` of an entry's freshness, one request at a time per process,
  drawn at random with a chance that grows towards expiry, runs the handler inside itself
  (labelled ``MISS``) while the others get the entry; fastapi-cachemate refreshed in a
  background task from the last compute time, which failed on routes with ``yield``
  dependencies. A refresh that fails answers with the entry.
- Concurrent misses of one key run the handler once, across processes on Redis (with the lock
  lease of ``RedisLockManager(lock_ttl=)`` or ``ttl_lock_seconds``); a Redis that is down or
  slow is a miss within oxicache's deadline, never an error.
- ``Cache-Control: no-cache`` or ``no-store`` anywhere in the request's list of directives
  means ``NO_CACHE`` (fastapi-cachemate matched the exact value); non-GET requests say
  ``NO_CACHE`` too. ETags, ``304`` answers to ``If-None-Match``, ``Age`` and ``Cache-Status``
  are added.
- ``setup`` takes fastapi-cachemate's ``RedisBackend``; another backend raises
  ``ConfigError`` (oxicache needs a store it can also invalidate). ``bypass_value=None`` (the
  default) turns the bypass header off, as before.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from pydantic import Field

from ... import config
from ...backends import remote
from ...backends.redis.client import RedisBackend as _RedisEngine
from ...exceptions import ConfigError
from .core.coders.orjson import OrjsonCoderManager
from .core.compress.zlib import ZlibCompressManager
from .core.locks.redis import MAX_LOCK_TTL_SECONDS, RedisLockManager
from .core.types import Backend, ByPass, CoderManager, CompressionMode, CompressManager, LockManager

try:
    from pydantic_settings import BaseSettings
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "oxicache.compat.fastapi_cachemate needs pydantic-settings:"
        " pip install 'oxicache[settings]'"
    ) from exc

__all__ = [
    "DEFAULT_BYPASS_HEADER",
    "MAX_LOCK_TTL_SECONDS",
    "BaseCacheSettings",
    "CacheSetup",
    "OrjsonCoderManager",
    "ZlibCompressManager",
]

DEFAULT_BYPASS_HEADER = "X-BYPASS-CACHE"


class BaseCacheSettings(BaseSettings):
    """fastapi-cachemate's settings (pydantic-settings: each field also reads from the
    environment, with your ``env_prefix``)."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    ttl_lock_seconds: int = Field(default=MAX_LOCK_TTL_SECONDS, gt=0)
    bypass_header: str = Field(default=DEFAULT_BYPASS_HEADER)
    bypass_value: str | None = Field(default=None)
    #: Milliseconds: the longest refresh window.
    max_planing_execution_time: int = Field(default=MAX_LOCK_TTL_SECONDS * 1000, ge=0)
    #: The refresh window, as a share of each route's TTL (0: no refresh ahead of expiry).
    buffer: float = Field(default=0.2, ge=0)
    compression_mode: CompressionMode = Field(default="smart")
    compression_min_size_bytes: int = Field(default=1024, ge=0)


class CacheSetup:
    """The cache's configuration (class methods only), as in fastapi-cachemate."""

    _backend: ClassVar[Backend | None] = None
    _prefix: ClassVar[str] = "fastapi_cachemate"
    _bypass: ClassVar[ByPass] = ByPass()
    _lock_manager: ClassVar[LockManager | None] = None
    _coder_manager: ClassVar[CoderManager] = OrjsonCoderManager()
    _compress_manager: ClassVar[CompressManager] = ZlibCompressManager()
    _settings: ClassVar[BaseCacheSettings | None] = None

    @classmethod
    def setup(
        cls,
        backend: Backend,
        lock_manager: LockManager,
        prefix: str = "fastapi_cachemate",
        settings: BaseSettings | None = None,
        coder_manager: CoderManager | None = None,
        compress_manager: CompressManager | None = None,
    ) -> None:
        """Configures oxicache from fastapi-cachemate's arguments (see the module doc)."""
        from .core.backends.redis import RedisBackend

        if not isinstance(backend, RedisBackend):
            raise ConfigError(
                f"CacheSetup.setup(backend={backend!r}): give RedisBackend(client=<a"
                " redis.asyncio.Redis>) from oxicache.compat.fastapi_cachemate.core.backends"
                ".redis; oxicache needs a store it can also invalidate"
            )
        if not prefix:
            raise ConfigError("CacheSetup.setup(prefix=''): give a non-empty key prefix")
        merged = cls._init_settings(settings)
        lease = merged.ttl_lock_seconds
        if isinstance(lock_manager, RedisLockManager):
            lease = lock_manager.lock_ttl
        threshold = {
            "all": 0,
            "smart": merged.compression_min_size_bytes,
            "disabled": sys.maxsize,
        }[merged.compression_mode]
        engine = _RedisEngine(client=backend.client, prefix=prefix)
        config.configure(
            engine,
            prefix=prefix,
            # bypass_value None: no bypass header, as before.
            bypass_header=merged.bypass_header if merged.bypass_value is not None else "",
            bypass_value=merged.bypass_value or "",
            lock_lease=float(lease),
            compress_threshold=threshold,
        )
        cls._backend = backend
        cls._prefix = prefix
        cls._lock_manager = lock_manager
        cls._coder_manager = coder_manager or OrjsonCoderManager()
        cls._compress_manager = compress_manager or ZlibCompressManager()
        cls._settings = merged
        cls._bypass = ByPass(header=merged.bypass_header, value=merged.bypass_value)

    @staticmethod
    def _init_settings(settings: BaseSettings | None) -> BaseCacheSettings:
        if settings is None:
            return BaseCacheSettings()
        return BaseCacheSettings(**settings.model_dump())

    @classmethod
    def backend(cls) -> Backend:
        if cls._backend is None:
            raise ConfigError("call CacheSetup.setup(...) first (in the app's lifespan)")
        return cls._backend

    @classmethod
    def prefix(cls) -> str:
        return cls._prefix

    @classmethod
    def bypass(cls) -> ByPass:
        return cls._bypass

    @classmethod
    def coder_manager(cls) -> CoderManager:
        return cls._coder_manager

    @classmethod
    def compress_manager(cls) -> CompressManager:
        return cls._compress_manager

    @classmethod
    def lock_manager(cls) -> LockManager:
        if cls._lock_manager is None:
            raise ConfigError("call CacheSetup.setup(...) first (in the app's lifespan)")
        return cls._lock_manager

    @classmethod
    def settings(cls) -> BaseCacheSettings:
        return cls._settings if cls._settings is not None else BaseCacheSettings()

    @classmethod
    def is_set_up(cls) -> bool:
        return cls._backend is not None

    @classmethod
    async def close(cls) -> None:
        """Waits for the writes in flight and closes oxicache's connections, then the
        backend's client, as before."""
        await remote.close_backend()
        backend, cls._backend = cls._backend, None
        if backend is not None:
            await backend.close()

    @classmethod
    def reset(cls) -> None:
        """Forgets ``setup`` (tests)."""
        cls._backend = None
        cls._lock_manager = None
        cls._settings = None
        cls._bypass = ByPass()

"""What the compatibility backends share: they name an oxicache engine, and clear through it.

fastapi-cachex's backends are key-value stores that ``@cache`` reads and writes. Here the
oxicache engine does that; a backend object only says which engine ``BackendProxy.set()``
configures (:func:`oxicache.configure`), and keeps fastapi-cachex's clearing methods. The
key-value primitives (``get``/``set``/``increment``/``set_if_absent``/...) that
``CacheManager`` and ``CacheLock`` use are not provided (see the module docstring of
:mod:`oxicache.compat.fastapi_cachex`).
"""

from __future__ import annotations

from datetime import timedelta

from ....backends.base import Backend
from ..exceptions import TTLTypeError, TTLValueError

__all__ = ["MAX_TTL", "BaseCacheBackend", "validate_ttl"]

#: The longest ``ttl`` accepted, as in fastapi-cachex (ten years, in seconds).
MAX_TTL = 10 * 365 * 24 * 3600


def validate_ttl(ttl: int | timedelta | None, name: str = "ttl") -> int | None:
    """``ttl`` as whole seconds (``None`` stays ``None``), with fastapi-cachex's rules."""
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        if ttl.microseconds:
            raise TTLValueError(f"{name} must be a whole number of seconds, got {ttl!r}")
        ttl = int(ttl.total_seconds())
    elif isinstance(ttl, bool) or not isinstance(ttl, int):
        raise TTLTypeError(
            f"{name} must be an int number of seconds or a timedelta, got {type(ttl).__name__}"
        )
    if ttl < 0:
        raise TTLValueError(f"{name} must not be negative")
    if ttl > MAX_TTL:
        raise TTLValueError(f"{name} must be at most {MAX_TTL} seconds")
    return ttl


class BaseCacheBackend:
    """A backend of the compatibility layer: the oxicache engine it stands for, and
    fastapi-cachex's clearing methods applied to oxicache's entries."""

    def oxicache_backend(self) -> Backend | str:
        """What :func:`oxicache.configure` is given when this backend is set."""
        return "memory://"

    async def clear(self) -> None:
        """Drops every entry (oxicache's :func:`oxicache.clear`: the in-process store, and
        the remote backend's keys under the app's prefix)."""
        from .._invalidation import clear_all

        await clear_all()

    async def clear_path(self, path: str, include_params: bool = False) -> int:
        """Drops the entries stored for ``path``: see
        :func:`oxicache.compat.fastapi_cachex.clear_path` (always every query variant)."""
        from .._invalidation import clear_path

        return await clear_path(path, include_params)

    async def clear_pattern(self, pattern: str) -> int:
        """Drops the entries whose fastapi-cachex key would match ``pattern``: see
        :func:`oxicache.compat.fastapi_cachex.clear_pattern`."""
        from .._invalidation import clear_pattern

        return await clear_pattern(pattern)

    async def aclose(self) -> None:
        """Closes the engine's connections, if this backend owns one."""
        engine = getattr(self, "_engine", None)
        if engine is not None and not isinstance(engine, str):
            await engine.close()

    async def __aenter__(self) -> BaseCacheBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

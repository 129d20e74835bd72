"""Global settings and the default in-memory store.

Nothing here needs calling: ``@cache(ttl=60)`` works with the defaults. ``configure()`` changes
them (store size, header name, default TTL...), and ``lifespan()`` does it from a FastAPI
lifespan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

from . import _core
from .durations import parse_size, parse_ttl
from .exceptions import ConfigError

__all__ = ["Settings", "configure", "get_settings", "get_store", "lifespan"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """oxicache's global settings. Change them with :func:`configure`."""

    #: Bytes the in-memory store may hold (its entries' charged sizes); evicts beyond.
    max_size: int = 256 * 1024 * 1024
    #: Largest single entry stored; larger responses are answered but not stored.
    max_entry_size: int = 8 * 1024 * 1024
    #: TTL (seconds) of ``@cache()`` without ``ttl``.
    default_ttl: float = 60.0
    #: Prefix of every key: two apps sharing a store (or, later, a backend) with different
    #: prefixes never read each other's entries.
    prefix: str = "oxicache"
    #: Namespace of ``@cache()`` without ``namespace``.
    namespace: str = "default"
    #: Name of the HIT/MISS/BYPASS header (``Cache-Status`` of RFC 9211 is always sent too).
    header_name: str = "X-Cache"
    #: Master switch: when False every cached route answers uncached with ``X-Cache: BYPASS``.
    enabled: bool = True
    #: Whether a request's ``Cache-Control: no-cache`` (or ``Pragma: no-cache``) makes the
    #: handler run (RFC 9111 §5.2.1.4). Turn off where clients must not force recomputation.
    honor_request_no_cache: bool = True
    #: Generated ETags are weak (``W/"..."``), which stays correct when a compression layer
    #: changes the bytes on the way out (RFC 9110 §8.8.1); set False for strong ETags.
    weak_etags: bool = True
    #: Seconds a request waits for a concurrent identical request to finish before it runs the
    #: handler itself (single-flight).
    lock_timeout: float = 10.0


_settings = Settings()
_store = _core.MemoryStore(_settings.max_size, _settings.max_entry_size)
#: Incremented by every configure(): routes rebuild their compiled settings when it changes.
_generation = 0


def get_settings() -> Settings:
    """The settings in force."""
    return _settings


def get_store() -> _core.MemoryStore:
    """The in-memory store (one per process)."""
    return _store


def generation() -> int:
    """Changes whenever :func:`configure` is called."""
    return _generation


def configure(
    *,
    max_size: int | str | None = None,
    max_entry_size: int | str | None = None,
    default_ttl: float | int | timedelta | str | None = None,
    namespace: str | None = None,
    prefix: str | None = None,
    header_name: str | None = None,
    enabled: bool | None = None,
    honor_request_no_cache: bool | None = None,
    weak_etags: bool | None = None,
    lock_timeout: float | None = None,
) -> Settings:
    """Changes the global settings; options left as ``None`` keep their value.

    Changing ``max_size`` or ``max_entry_size`` replaces the in-memory store with an empty one.
    Returns the settings now in force.
    """
    global _settings, _generation
    changes: dict[str, Any] = {}
    if max_size is not None:
        changes["max_size"] = parse_size(max_size)
    if max_entry_size is not None:
        changes["max_entry_size"] = parse_size(max_entry_size)
    if default_ttl is not None:
        changes["default_ttl"] = parse_ttl(default_ttl)
    if namespace is not None:
        changes["namespace"] = namespace
    if prefix is not None:
        changes["prefix"] = prefix
    if header_name is not None:
        if not header_name or not all(c.isalnum() or c in "-_" for c in header_name):
            raise ConfigError(f"header_name must be a header field name, got {header_name!r}")
        changes["header_name"] = header_name
    if enabled is not None:
        changes["enabled"] = bool(enabled)
    if honor_request_no_cache is not None:
        changes["honor_request_no_cache"] = bool(honor_request_no_cache)
    if weak_etags is not None:
        changes["weak_etags"] = bool(weak_etags)
    if lock_timeout is not None:
        if not lock_timeout > 0:
            raise ConfigError(f"lock_timeout must be positive, got {lock_timeout!r}")
        changes["lock_timeout"] = float(lock_timeout)
    new = dataclasses.replace(_settings, **changes)
    if (new.max_size, new.max_entry_size) != (_settings.max_size, _settings.max_entry_size):
        _store.reset(new.max_size, new.max_entry_size)
    _settings = new
    _generation += 1
    return new


def lifespan(
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None,
    **settings: Any,
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """A FastAPI/Starlette lifespan that applies ``settings`` at startup.

    ``FastAPI(lifespan=oxicache.lifespan(max_size="64MiB"))``; pass your own lifespan as
    ``inner`` to run it inside.
    """

    @asynccontextmanager
    async def _lifespan(app: Any) -> AsyncIterator[Any]:
        configure(**settings)
        if inner is None:
            yield None
        else:
            async with inner(app) as state:
                yield state

    return _lifespan

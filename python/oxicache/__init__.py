"""oxicache: a response and function cache for FastAPI and any ASGI app, with a Rust engine.

``@cache(ttl=60)`` under a route decorator caches the rendered response in a bounded in-memory
store; on a plain function it memoizes the return value. See the README for the tour.
"""

from __future__ import annotations

from typing import Any

from . import _log, config
from ._core import __version__
from .backends import remote
from .bypassing import bypass
from .cache_request import CacheRequest
from .codec import Codec, JsonCodec, PickleCodec
from .config import Settings, configure, get_settings, get_store, lifespan
from .coordination import coherence
from .decorator import DEFAULT_STATUS_CODES, cache
from .exceptions import (
    ConfigError,
    EntryDecodeError,
    EntryTooLarge,
    OxicacheError,
    UnkeyableArgument,
)
from .integrations import tracing as _tracing  # noqa: F401  (OpenTelemetry attributes, if installed)
from .invalidation.explicit import clear, invalidate
from .invalidation.unsafe import invalidates
from .middleware.asgi import CacheMiddleware
from .responses import CachedResponse

__all__ = [
    "DEFAULT_STATUS_CODES",
    "CacheMiddleware",
    "CacheRequest",
    "CachedResponse",
    "Codec",
    "ConfigError",
    "EntryDecodeError",
    "EntryTooLarge",
    "JsonCodec",
    "OxicacheError",
    "PickleCodec",
    "Settings",
    "UnkeyableArgument",
    "__version__",
    "bypass",
    "cache",
    "clear",
    "configure",
    "get_settings",
    "get_store",
    "invalidate",
    "invalidates",
    "lifespan",
    "stats",
]


def stats() -> dict[str, Any]:
    """Counters: ``store`` (hits, misses, inserts, evictions, ...), ``events`` (bypasses by
    reason, responses not stored, errors handled) and ``coherence`` (two tiers on Redis: the
    subscription's state, messages published and applied; see
    :mod:`oxicache.coordination.coherence`) and ``backend`` (None without one: else its name,
    breaker state, writes in flight and the guard's counters,
    :class:`~oxicache.backends.guard.GuardCounters`)."""
    guard = remote.get_backend()
    backend = None
    if guard is not None:
        backend = {
            "name": guard.name,
            "breaker": guard.state.value,
            "pending_writes": guard.pending_writes,
            **guard.counters.as_dict(),
        }
    return {
        "store": get_store().stats(),
        "events": _log.counters(),
        "coherence": coherence.status(),
        "backend": backend,
    }


# The OXICACHE_* variables, once every module is loaded: a mistake in them fails the import.
config.configure_from_environment()

"""oxicache: a response and function cache for FastAPI and any ASGI app, with a Rust engine.

``@cache(ttl=60)`` under a route decorator caches the rendered response in a bounded in-memory
store; on a plain function it memoizes the return value. See the README for the tour.
"""

from __future__ import annotations

from . import config
from ._core import __version__
from .admin import router as admin_router
from .backends import remote  # noqa: F401  (oxicache.remote, as before)
from .bypassing import bypass
from .cache_request import CacheRequest
from .codec import Codec, JsonCodec, PickleCodec
from .config import Settings, configure, get_settings, get_store, lifespan
from .counters import Stats, stats
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
    "Stats",
    "UnkeyableArgument",
    "__version__",
    "admin_router",
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


# The OXICACHE_* variables, once every module is loaded: a mistake in them fails the import.
config.configure_from_environment()

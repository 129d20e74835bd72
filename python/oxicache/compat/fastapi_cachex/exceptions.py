"""fastapi-cachex's exception classes (same names and bases, so ``except`` clauses keep working)."""

from __future__ import annotations

__all__ = [
    "BackendNotFoundError",
    "BackendUnavailableError",
    "CacheXError",
    "InvalidTTLError",
    "LockTimeoutError",
    "ProxyNotSetError",
    "RequestNotFoundError",
    "TTLTypeError",
    "TTLValueError",
]


class CacheXError(Exception):
    """Base class of the errors this compatibility layer raises."""


class BackendNotFoundError(CacheXError):
    """``BackendProxy.get()`` with no backend set."""


class ProxyNotSetError(BackendNotFoundError):
    """A proxy with no instance set."""


class RequestNotFoundError(CacheXError):
    """A cached route was called without the request FastAPI passes."""


class BackendUnavailableError(CacheXError):
    """A key-value primitive (``CacheManager``, ``CacheLock``, counters) could not reach its
    server. Cached routes never raise it: for them a backend that is down is a miss (see
    :mod:`oxicache.backends.guard`)."""


class InvalidTTLError(CacheXError):
    """An invalid ``ttl`` or ``stale_ttl``."""


class TTLTypeError(InvalidTTLError, TypeError):
    """A ``ttl`` that is neither an ``int`` nor a ``timedelta`` (``bool`` included)."""


class TTLValueError(InvalidTTLError, ValueError):
    """A negative ``ttl``, one over ``MAX_TTL``, or a ``timedelta`` with a fraction of a
    second."""


class LockTimeoutError(CacheXError, TimeoutError):
    """``async with CacheLock(...)`` not acquired in time, or ``get_or_set(...,
    raise_on_timeout=True)`` waiting too long. Cached routes never raise it (a request that
    waited too long for oxicache's single-flight runs the handler itself)."""

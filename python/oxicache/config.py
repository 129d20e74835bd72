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

from . import _core, remote
from .backends.base import Backend
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
    #: Master switch: when False every cached route, and every request through
    #: ``CacheMiddleware``, is answered uncached with ``X-Cache: BYPASS``.
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
    #: With a Redis backend: concurrent misses for one key in *all* processes run the handler
    #: once (a lock with a lease in Redis; see :mod:`oxicache.distributed_flight`). Other
    #: backends, or a Redis that is down, coalesce within each process only.
    distributed_single_flight: bool = True
    #: Seconds the cross-process lock is held at most (its lease: a leader that dies or hangs
    #: frees it by then); 0 means ``lock_timeout``. Should exceed the handler's duration.
    lock_lease: float = 0.0
    #: With a remote backend: keep hot entries in an in-process tier too (two tiers). The
    #: local copy lives at most ``local_ttl`` seconds, the staleness bound when a coherence
    #: message between processes is lost.
    two_tier: bool = False
    #: Two tiers: the longest a local copy of a remote entry is served, in seconds.
    local_ttl: float = 5.0
    #: Deadline of one backend read, in seconds; past it the request is a miss.
    backend_timeout: float = 0.005
    #: Deadline of one backend write (done after the response is sent), in seconds.
    backend_write_timeout: float = 0.05
    #: Circuit breaker: failures in a row that open it (with ``breaker_open_after`` seconds
    #: without a success), and how long it stays open before one probe.
    breaker_failures: int = 5
    breaker_open_after: float = 0.05
    breaker_reset: float = 2.0
    #: Envelopes longer than this many bytes are zstd-compressed for the backend.
    compress_threshold: int = 1024
    #: Prometheus metrics (needs ``oxicache[prometheus]``; see :mod:`oxicache.metrics`).
    metrics: bool = False


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
    backend: Backend | str | None = None,
    /,
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
    distributed_single_flight: bool | None = None,
    lock_lease: float | None = None,
    two_tier: bool | None = None,
    local_ttl: float | None = None,
    backend_timeout: float | None = None,
    backend_write_timeout: float | None = None,
    breaker_failures: int | None = None,
    breaker_open_after: float | None = None,
    breaker_reset: float | None = None,
    compress_threshold: int | None = None,
    metrics: bool | None = None,
) -> Settings:
    """Changes the global settings; options left as ``None`` keep their value.

    ``backend`` moves entries to a shared engine: a URL (``"redis://localhost:6379/0"``,
    ``"memcached://a:11211,b:11211"``, ``"dynamodb://table?region=eu-west-1"``, or
    ``"memory://"`` to come back to the in-process store) or a backend object
    (:mod:`oxicache.backends`). Without one, the ``OXICACHE_URL`` environment variable is
    used, read on first use. No connection is opened here: backends connect lazily, in the
    running event loop of each process (fork-safe).

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
    if distributed_single_flight is not None:
        changes["distributed_single_flight"] = bool(distributed_single_flight)
    if two_tier is not None:
        changes["two_tier"] = bool(two_tier)
    for name, value in (
        ("local_ttl", local_ttl),
        ("lock_lease", lock_lease),
        ("backend_timeout", backend_timeout),
        ("backend_write_timeout", backend_write_timeout),
        ("breaker_open_after", breaker_open_after),
        ("breaker_reset", breaker_reset),
    ):
        if value is not None:
            if not (isinstance(value, int | float) and 0 <= value < float("inf")):
                raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
            changes[name] = float(value)
    if breaker_failures is not None:
        if not (isinstance(breaker_failures, int) and breaker_failures >= 1):
            raise ConfigError(f"breaker_failures must be >= 1, got {breaker_failures!r}")
        changes["breaker_failures"] = breaker_failures
    if compress_threshold is not None:
        changes["compress_threshold"] = int(compress_threshold)
    if metrics is not None:
        from . import metrics as metrics_module

        if metrics:
            metrics_module.enable()  # before any change: fails without prometheus-client
        else:
            metrics_module.disable()
        changes["metrics"] = bool(metrics)
    if backend is not None and prefix is None:
        # A backend object brings its own prefix: keys and its clear() must agree.
        own = getattr(backend, "prefix", None)
        if isinstance(own, str) and own:
            changes["prefix"] = own
    new = dataclasses.replace(_settings, **changes)
    if (new.max_size, new.max_entry_size) != (_settings.max_size, _settings.max_entry_size):
        _store.reset(new.max_size, new.max_entry_size)
    _settings = new
    guard_options = (
        "backend_timeout",
        "backend_write_timeout",
        "breaker_failures",
        "breaker_open_after",
        "breaker_reset",
        "prefix",
    )
    if backend is not None or any(k in changes for k in guard_options):
        remote.set_backend(
            backend if backend is not None else remote.current_spec(),
            timeout=new.backend_timeout or 0.005,
            write_timeout=new.backend_write_timeout or 0.05,
            failure_threshold=new.breaker_failures,
            open_after=new.breaker_open_after,
            reset_timeout=new.breaker_reset or 2.0,
        )
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

"""Global settings and the default in-memory store.

Nothing here needs calling: ``@cache(ttl=60)`` works with the defaults. The settings are one
model, :class:`Settings`; each field is also an ``OXICACHE_<NAME>`` environment variable (read
when :mod:`oxicache` is imported), a keyword of :func:`configure` and of :func:`lifespan`, and
all three go through the same checks (:func:`check_setting`), so a mistake fails the same way
wherever it is made: a :class:`ConfigError` naming the setting and what it accepts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, Literal, ParamSpec, TypeVar

from . import _core, placement, remote
from .backends.base import Backend
from .durations import parse_size, parse_ttl
from .exceptions import ConfigError

__all__ = ["Settings", "configure", "get_settings", "get_store", "lifespan"]

#: How a setting's value is read and checked (see :func:`check_setting`).
Kind = Literal[
    "size", "ttl", "text", "header", "bool", "seconds", "positive_seconds", "count", "bytes"
]

#: Prefix of the environment variables: ``OXICACHE_MAX_SIZE`` sets ``max_size``.
ENV_PREFIX = "OXICACHE_"
#: The variable naming the backend (the positional argument of :func:`configure`).
URL_VARIABLE = "OXICACHE_URL"


def _setting(default: Any, kind: Kind) -> Any:
    return dataclasses.field(default=default, metadata={"kind": kind})


@dataclasses.dataclass(frozen=True)
class Settings:
    """oxicache's global settings. Change them with :func:`configure`."""

    #: Bytes the in-memory store may hold (its entries' charged sizes); evicts beyond.
    max_size: int = _setting(256 * 1024 * 1024, "size")
    #: Largest single entry stored; larger responses are answered but not stored.
    max_entry_size: int = _setting(8 * 1024 * 1024, "size")
    #: TTL (seconds) of ``@cache()`` without ``ttl``.
    default_ttl: float = _setting(60.0, "ttl")
    #: Prefix of every key: two apps sharing a store (or, later, a backend) with different
    #: prefixes never read each other's entries.
    prefix: str = _setting("oxicache", "text")
    #: Namespace of ``@cache()`` without ``namespace``.
    namespace: str = _setting("default", "text")
    #: Name of the HIT/MISS/BYPASS header (``Cache-Status`` of RFC 9211 is always sent too).
    header_name: str = _setting("X-Cache", "header")
    #: Master switch: when False every cached route, and every request through
    #: ``CacheMiddleware``, is answered uncached with ``X-Cache: BYPASS``.
    enabled: bool = _setting(True, "bool")
    #: Whether a request's ``Cache-Control: no-cache`` (or ``Pragma: no-cache``) makes the
    #: handler run (RFC 9111 §5.2.1.4). Turn off where clients must not force recomputation.
    honor_request_no_cache: bool = _setting(True, "bool")
    #: Generated ETags are weak (``W/"..."``), which stays correct when a compression layer
    #: changes the bytes on the way out (RFC 9110 §8.8.1); set False for strong ETags.
    weak_etags: bool = _setting(True, "bool")
    #: Seconds a request waits for a concurrent identical request to finish before it runs the
    #: handler itself (single-flight).
    lock_timeout: float = _setting(10.0, "positive_seconds")
    #: With a Redis backend: concurrent misses for one key in *all* processes run the handler
    #: once (a lock with a lease in Redis; see :mod:`oxicache.distributed_flight`). Other
    #: backends, or a Redis that is down, coalesce within each process only.
    distributed_single_flight: bool = _setting(True, "bool")
    #: Seconds the cross-process lock is held at most (its lease: a leader that dies or hangs
    #: frees it by then); 0 means ``lock_timeout``. Should exceed the handler's duration.
    lock_lease: float = _setting(0.0, "seconds")
    #: With a remote backend: keep hot entries in an in-process tier too (two tiers). The
    #: local copy lives at most ``local_ttl`` seconds, the staleness bound when a coherence
    #: message between processes is lost.
    two_tier: bool = _setting(False, "bool")
    #: Two tiers: the longest a local copy of a remote entry is served, in seconds.
    local_ttl: float = _setting(5.0, "seconds")
    #: Deadline of one backend read, in seconds; past it the request is a miss.
    backend_timeout: float = _setting(0.005, "positive_seconds")
    #: Deadline of one backend write (done after the response is sent), in seconds.
    backend_write_timeout: float = _setting(0.05, "positive_seconds")
    #: Circuit breaker: failures in a row that open it (with ``breaker_open_after`` seconds
    #: without a success), and how long it stays open before one probe.
    breaker_failures: int = _setting(5, "count")
    breaker_open_after: float = _setting(0.05, "seconds")
    breaker_reset: float = _setting(2.0, "positive_seconds")
    #: Envelopes longer than this many bytes are zstd-compressed for the backend.
    compress_threshold: int = _setting(1024, "bytes")
    #: Prometheus metrics (needs ``oxicache[prometheus]``; see :mod:`oxicache.metrics`).
    metrics: bool = _setting(False, "bool")


_settings = Settings()
_store = _core.MemoryStore(_settings.max_size, _settings.max_entry_size)
#: Incremented by every configure(): routes rebuild their compiled settings when it changes.
_generation = 0

#: Each setting's kind, from the model.
KINDS: dict[str, Kind] = {f.name: f.metadata["kind"] for f in dataclasses.fields(Settings)}


def get_settings() -> Settings:
    """The settings in force."""
    return _settings


def get_store() -> _core.MemoryStore:
    """The in-memory store (one per process)."""
    return _store


def generation() -> int:
    """Changes whenever :func:`configure` is called."""
    return _generation


# --- checking a value ---------------------------------------------------------------------


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_names(names: Any, *, where: str) -> None:
    """Raises :class:`ConfigError` for a name that is not a setting, with the closest one."""
    for name in names:
        if name not in KINDS:
            raise ConfigError(
                f"{where}: {name!r} is not a setting{_suggest(name, KINDS)}"
                f" (the settings: {', '.join(KINDS)})"
            )


def _seconds(name: str, value: Any, *, positive: bool) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = parse_ttl(value)  # "500ms", "2s"; raises ConfigError
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise ConfigError(f"{name} must be {bound} seconds, got {value!r}")
    return float(value)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
    elif isinstance(value, bool | int) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _whole(name: str, value: Any, *, least: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{name} must be a whole number >= {least}, got {value!r}")
    return value


def check_setting(name: str, value: Any) -> Any:
    """``value`` read and checked as setting ``name`` (text from the environment is accepted
    wherever a number, a duration or a flag is); raises :class:`ConfigError` naming both."""
    kind = KINDS[name]
    try:
        if kind == "size":
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            return parse_size(value)
        if kind == "ttl":
            return parse_ttl(value)
        if kind in ("seconds", "positive_seconds"):
            return _seconds(name, value, positive=kind == "positive_seconds")
        if kind == "bool":
            return _flag(name, value)
        if kind == "count":
            return _whole(name, value, least=1)
        if kind == "bytes":
            return _whole(name, value, least=0)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        if kind == "header" and not all(c.isalnum() or c in "-_" for c in value):
            raise ConfigError(f"{name} must be a header field name, got {value!r}")
        return value
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(name) else f"{name}: {message}") from None


# --- the environment ----------------------------------------------------------------------


def environment_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings set by ``OXICACHE_<NAME>`` variables, checked; empty variables count as
    unset. A variable one or two letters away from a setting's (``OXICACHE_METRIC``) raises:
    a typo must not silently leave the default in force. Other ``OXICACHE_*`` names are left
    alone (tools may use the prefix for their own variables)."""
    environ = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    known = {ENV_PREFIX + name.upper(): name for name in KINDS}
    for variable, text in environ.items():
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper == URL_VARIABLE:
            continue
        name = known.get(upper)
        if name is None:
            close = difflib.get_close_matches(upper, [*known, URL_VARIABLE], n=1, cutoff=0.85)
            if close:
                raise ConfigError(
                    f"environment variable {variable} is not an oxicache setting;"
                    f" did you mean {close[0]}? (rename it, or unset it)"
                )
            continue
        if not text.strip():
            continue
        try:
            options[name] = check_setting(name, text.strip())
        except ConfigError as exc:
            raise ConfigError(f"environment variable {variable}={text!r}: {exc}") from None
    url = environ.get(URL_VARIABLE, "").strip()
    if url:
        try:
            remote.parse_url(url)
        except ConfigError as exc:
            raise ConfigError(f"environment variable {URL_VARIABLE}={url!r}: {exc}") from None
    return options


def configure_from_environment() -> None:
    """Applies the ``OXICACHE_*`` variables (called once, when :mod:`oxicache` is imported).
    ``OXICACHE_URL`` itself is read when the backend is first needed (see
    :mod:`oxicache.remote`), and checked here."""
    options = environment_options()
    if options:
        configure(**options)


# --- configure() and lifespan() -----------------------------------------------------------

P = ParamSpec("P")
R = TypeVar("R")


def _names_checked(func: Callable[P, R]) -> Callable[P, R]:
    """A keyword that is not a setting is a :class:`ConfigError` with a suggestion, rather
    than Python's bare ``TypeError``."""
    accepted = set(KINDS) | {"backend"}

    @functools.wraps(func)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        unknown = [name for name in kwargs if name not in accepted]
        if unknown:
            check_names(unknown, where=f"{func.__name__}()")
        return func(*args, **kwargs)

    return checked


@_names_checked
def configure(
    backend: Backend | str | None = None,
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
    used, read on first use. A URL is checked here (scheme, hosts, ports, options, and that
    the client library of its extra is installed); no connection is opened: backends connect
    lazily, in the running event loop of each process (fork-safe).

    Every option is checked before anything changes: a :class:`ConfigError` (which names the
    option and what it accepts; a misspelt keyword gets a suggestion) leaves the settings as
    they were. Changing ``max_size`` or ``max_entry_size`` empties the in-memory store.
    Returns the settings now in force.
    """
    global _settings, _generation
    given = {
        "max_size": max_size,
        "max_entry_size": max_entry_size,
        "default_ttl": default_ttl,
        "namespace": namespace,
        "prefix": prefix,
        "header_name": header_name,
        "enabled": enabled,
        "honor_request_no_cache": honor_request_no_cache,
        "weak_etags": weak_etags,
        "lock_timeout": lock_timeout,
        "distributed_single_flight": distributed_single_flight,
        "lock_lease": lock_lease,
        "two_tier": two_tier,
        "local_ttl": local_ttl,
        "backend_timeout": backend_timeout,
        "backend_write_timeout": backend_write_timeout,
        "breaker_failures": breaker_failures,
        "breaker_open_after": breaker_open_after,
        "breaker_reset": breaker_reset,
        "compress_threshold": compress_threshold,
        "metrics": metrics,
    }
    changes = {name: check_setting(name, v) for name, v in given.items() if v is not None}
    remote.check_spec(backend)
    if "metrics" in changes:
        from . import metrics as metrics_module

        if changes["metrics"]:
            metrics_module.enable()  # before any change: fails without prometheus-client
        else:
            metrics_module.disable()
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
            timeout=new.backend_timeout,
            write_timeout=new.backend_write_timeout,
            failure_threshold=new.breaker_failures,
            open_after=new.breaker_open_after,
            reset_timeout=new.breaker_reset,
        )
    _generation += 1
    return new


Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def lifespan(
    backend: Backend | str | Lifespan | None = None,
    *,
    inner: Lifespan | None = None,
    **settings: Any,
) -> Lifespan:
    """A FastAPI/Starlette lifespan that configures oxicache at startup and closes its backend
    at shutdown::

        app = FastAPI(lifespan=oxicache.lifespan("redis://localhost:6379/0", max_size="64MiB"))

    ``backend`` and ``settings`` are those of :func:`configure`, and are checked now, when
    ``lifespan()`` is called: a mistake fails at import time, not at startup. Pass your own
    lifespan as ``inner`` (or as the only positional argument, as before) to run it inside,
    with oxicache already configured; what it yields is the app's state.

    At shutdown, after ``inner`` has finished, the background writes still in flight are
    awaited and the backend's connections are closed (an object you passed is closed too;
    backends reconnect if used again).
    """
    if backend is not None and not isinstance(backend, str | Backend) and callable(backend):
        if inner is not None:
            raise ConfigError("lifespan(): give your lifespan once, as inner=")
        backend, inner = None, backend
    check_names(settings, where="lifespan()")
    for name, value in settings.items():
        check_setting(name, value)
    remote.check_spec(backend, where="lifespan(): ")
    if inner is not None and not callable(inner):
        raise ConfigError(f"lifespan(): inner must be a lifespan function, got {inner!r}")

    @asynccontextmanager
    async def _lifespan(app: Any) -> AsyncIterator[Any]:
        placement.check_app(app)
        configure(backend, **settings)
        try:
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state
        finally:
            from . import coherence  # it imports this module

            await coherence.stop()
            await remote.close_backend()

    return _lifespan

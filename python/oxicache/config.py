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
import inspect
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field, GetCoreSchemaHandler
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from . import _core, placement
from .backends import remote
from .backends.base import Backend
from .coordination import coherence
from .durations import parse_size, parse_ttl
from .exceptions import ConfigError
from .integrations import metrics, openapi
from .keys import QUERY_KEYS
from .runtime import STATE

__all__ = ["Settings", "configure", "get_settings", "get_store", "lifespan"]

#: How a setting's value is read and checked (see :func:`check_setting`).
Kind = Literal[
    "size",
    "ttl",
    "text",
    "header",
    "bool",
    "seconds",
    "positive_seconds",
    "count",
    "bytes",
    "optional_header",
    "optional_text",
    "choice",
]

#: Prefix of the environment variables: ``OXICACHE_MAX_SIZE`` sets ``max_size``.
ENV_PREFIX = "OXICACHE_"
#: The variable naming the backend (the positional argument of :func:`configure`).
URL_VARIABLE = "OXICACHE_URL"


@dataclasses.dataclass(frozen=True)
class _Read:
    """How a setting's value is read and checked (:func:`check_setting`), as type metadata: a
    value given to :class:`Settings`, :func:`configure`, :func:`lifespan`, an ``OXICACHE_*``
    variable or :class:`~oxicache.integrations.settings.OxicacheSettings` goes through the
    same reader."""

    kind: Kind
    #: For ``choice``: the values accepted.
    choices: tuple[str, ...] = ()

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.with_info_before_validator_function(
            lambda value, info: check_setting(str(info.field_name), value), handler(source)
        )


Size = Annotated[int, _Read("size")]
TTL = Annotated[float, _Read("ttl")]
Text = Annotated[str, _Read("text")]
HeaderName = Annotated[str, _Read("header")]
Flag = Annotated[bool, _Read("bool")]
Seconds = Annotated[float, _Read("seconds")]
PositiveSeconds = Annotated[float, _Read("positive_seconds")]
Count = Annotated[int, _Read("count")]
Bytes = Annotated[int, _Read("bytes")]
OptionalHeaderName = Annotated[str, _Read("optional_header")]
OptionalText = Annotated[str, _Read("optional_text")]
QueryKeyMode = Annotated[str, _Read("choice", QUERY_KEYS)]


def doc(text: str) -> Any:
    """A setting's description (the API reference, ``OxicacheSettings``, ``help()``)."""
    return Field(description=text)


@pydantic.dataclasses.dataclass(frozen=True)
class Settings:
    """oxicache's global settings: the one definition of every setting. Change them with
    :func:`configure`; each is also an ``OXICACHE_<NAME>`` environment variable and a keyword
    of :func:`lifespan`."""

    max_size: Annotated[
        Size, doc("Bytes the in-memory store may hold (its entries' charged sizes); evicts beyond.")
    ] = 256 * 1024 * 1024
    max_entry_size: Annotated[
        Size, doc("Largest single entry stored; larger responses are answered but not stored.")
    ] = 8 * 1024 * 1024
    default_ttl: Annotated[TTL, doc("TTL (seconds) of ``@cache()`` without ``ttl``.")] = 60.0
    prefix: Annotated[
        Text,
        doc(
            "Prefix of every key: two apps sharing a store or a backend with different"
            " prefixes never read each other's entries."
        ),
    ] = "oxicache"
    namespace: Annotated[Text, doc("Namespace of ``@cache()`` without ``namespace``.")] = "default"
    header_name: Annotated[
        HeaderName,
        doc(
            "Name of the HIT/MISS/BYPASS header (``Cache-Status`` of RFC 9211 is always sent too)."
        ),
    ] = "X-Cache"
    enabled: Annotated[
        Flag,
        doc(
            "Master switch: when False every cached route, and every request through"
            " ``CacheMiddleware``, is answered uncached with ``X-Cache: BYPASS``."
        ),
    ] = True
    honor_request_no_cache: Annotated[
        Flag,
        doc(
            "Whether a request's ``Cache-Control: no-cache`` (or ``Pragma: no-cache``) makes"
            " the handler run (RFC 9111 §5.2.1.4). Turn off where clients must not force"
            " recomputation."
        ),
    ] = True
    weak_etags: Annotated[
        Flag,
        doc(
            'Generated ETags are weak (``W/"..."``), which stays correct when a compression'
            " layer changes the bytes on the way out (RFC 9110 §8.8.1); False for strong ETags."
        ),
    ] = True
    lock_timeout: Annotated[
        PositiveSeconds,
        doc(
            "Seconds a request waits for a concurrent identical request to finish before it"
            " runs the handler itself (single-flight)."
        ),
    ] = 10.0
    distributed_single_flight: Annotated[
        Flag,
        doc(
            "With a Redis backend: concurrent misses for one key in all processes run the"
            " handler once (a lock with a lease in Redis). Other backends, or a Redis that is"
            " down, coalesce within each process only."
        ),
    ] = True
    lock_lease: Annotated[
        Seconds,
        doc(
            "Seconds the cross-process lock is held at most (a leader that dies or hangs frees"
            " it by then); 0 means ``lock_timeout``. Should exceed the handler's duration."
        ),
    ] = 0.0
    two_tier: Annotated[
        Flag,
        doc(
            "With a remote backend: keep hot entries in an in-process tier too. The local copy"
            " lives at most ``local_ttl`` seconds, the staleness bound when a coherence message"
            " between processes is lost."
        ),
    ] = False
    local_ttl: Annotated[
        Seconds, doc("Two tiers: the longest a local copy of a remote entry is served, in seconds.")
    ] = 5.0
    backend_timeout: Annotated[
        PositiveSeconds,
        doc("Deadline of one backend read, in seconds; past it the request is a miss."),
    ] = 0.005
    backend_write_timeout: Annotated[
        PositiveSeconds,
        doc("Deadline of one backend write (done after the response is sent), in seconds."),
    ] = 0.05
    backend_connect_timeout: Annotated[
        PositiveSeconds,
        doc(
            "How long the first backend call of a process waits for the connection to be set"
            " up (connection set-up is not slowness), before its own deadline starts."
        ),
    ] = 1.0
    breaker_failures: Annotated[
        Count,
        doc(
            "Circuit breaker: failures in a row that open it (with ``breaker_open_after``"
            " seconds without a success)."
        ),
    ] = 5
    breaker_open_after: Annotated[
        Seconds,
        doc("Circuit breaker: seconds without a success, after the failures, that open it."),
    ] = 0.05
    breaker_reset: Annotated[
        PositiveSeconds, doc("Circuit breaker: seconds it stays open before one probe.")
    ] = 2.0
    compress_threshold: Annotated[
        Bytes, doc("Envelopes longer than this many bytes are zstd-compressed for the backend.")
    ] = 1024
    metrics: Annotated[
        Flag, doc("Prometheus metrics (needs ``oxicache[prometheus]``; see the metrics module).")
    ] = False
    openapi: Annotated[
        Flag,
        doc(
            "Each cached route's OpenAPI operation (``app.openapi()``, ``/docs``) shows what the"
            " cache adds: the ``304`` response, the ``ETag``, ``Cache-Control``, ``Age``,"
            " ``Vary``, ``X-Cache`` and ``Cache-Status`` headers and the conditional request"
            " headers. Read when the schema is first built."
        ),
    ] = True
    bypass_header: Annotated[
        OptionalHeaderName,
        doc(
            "A request header that makes ``@cache`` routes and ``CacheMiddleware`` answer"
            " uncached (no read, no write), labelled ``BYPASS``; empty: none. Meant for a"
            " header your proxy or your staff tools set, with ``bypass_value``."
        ),
    ] = ""
    bypass_value: Annotated[
        OptionalText,
        doc(
            "The value ``bypass_header`` must have (compared exactly); empty: any value."
            " A value only you know keeps clients from skipping the cache at will."
        ),
    ] = ""
    refresh_ahead: Annotated[
        Seconds,
        doc(
            "Default of ``@cache(refresh_ahead=...)``: in the last this many seconds of an"
            " entry's freshness, a request may be drawn to refresh it while the others keep"
            " getting it (probabilistic early expiration); 0: never."
        ),
    ] = 0.0
    query_key: Annotated[
        QueryKeyMode,
        doc(
            "Default of ``@cache(query_key=...)``: how keys hold the query string:"
            " ``raw`` (as sent), ``sorted`` (parameters sorted by name) or ``declared``"
            " (only the parameters the route declares)."
        ),
    ] = "raw"
    expires: Annotated[
        Flag,
        doc(
            "Default of ``@cache(expires=...)``: responses carry ``Expires``, the time their"
            " freshness ends (RFC 9111 §5.3), besides ``max-age``."
        ),
    ] = False


#: The model's fields (pydantic's ``FieldInfo``: annotation, metadata, description).
FIELDS: dict[str, FieldInfo] = Settings.__pydantic_fields__  # type: ignore[attr-defined]


def _kind_of(name: str) -> Kind:
    return next(m.kind for m in FIELDS[name].metadata if isinstance(m, _Read))


#: Each setting's kind, from the model.
KINDS: dict[str, Kind] = {name: _kind_of(name) for name in FIELDS}
#: The values each ``choice`` setting accepts, from the model.
CHOICES: dict[str, tuple[str, ...]] = {
    name: next(m.choices for m in FIELDS[name].metadata if isinstance(m, _Read))
    for name, kind in KINDS.items()
    if kind == "choice"
}
#: Each setting's description, from the model.
DESCRIPTIONS: dict[str, str] = {name: info.description or "" for name, info in FIELDS.items()}

STATE.settings = Settings()
STATE.store.reset(STATE.settings.max_size, STATE.settings.max_entry_size)


def get_settings() -> Settings:
    """The settings in force."""
    return STATE.settings


def get_store() -> _core.MemoryStore:
    """The in-memory store (one per process)."""
    return STATE.store


def generation() -> int:
    """Changes whenever :func:`configure` is called."""
    return STATE.generation


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
        if kind == "choice":
            if value not in CHOICES[name]:
                accepted = ", ".join(repr(c) for c in CHOICES[name])
                raise ConfigError(f"{name} must be one of {accepted}, got {value!r}")
            return value
        if kind in ("optional_header", "optional_text"):
            if not isinstance(value, str):
                raise ConfigError(f"{name} must be a string (empty: none), got {value!r}")
            value = value.strip()
            if kind == "optional_header" and not all(c.isalnum() or c in "-_" for c in value):
                raise ConfigError(f"{name} must be a header field name, got {value!r}")
            return value
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
    :mod:`oxicache.backends.remote`), and checked here."""
    options = environment_options()
    if options:
        configure(**options)


# --- configure() and lifespan() -----------------------------------------------------------

#: Settings whose change rebuilds the backend's guard.
_GUARD_SETTINGS = frozenset(
    {
        "backend_timeout",
        "backend_write_timeout",
        "backend_connect_timeout",
        "breaker_failures",
        "breaker_open_after",
        "breaker_reset",
        "prefix",
    }
)


def guard_options(settings: Settings) -> dict[str, Any]:
    """The backend guard's deadlines and breaker, from ``settings``."""
    return {
        "timeout": settings.backend_timeout,
        "write_timeout": settings.backend_write_timeout,
        "connect_timeout": settings.backend_connect_timeout,
        "failure_threshold": settings.breaker_failures,
        "open_after": settings.breaker_open_after,
        "reset_timeout": settings.breaker_reset,
    }


def configure(backend: Backend | str | None = None, **options: Any) -> Settings:
    """Changes the global settings: each keyword is a :class:`Settings` field; options not
    given (or given as ``None``) keep their value.

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
    check_names(options, where="configure()")
    changes = {name: check_setting(name, v) for name, v in options.items() if v is not None}
    remote.check_spec(backend)
    if "metrics" in changes:
        if changes["metrics"]:
            metrics.enable()  # before any change: fails without prometheus-client
        else:
            metrics.disable()
    if backend is not None and "prefix" not in changes:
        # A backend object brings its own prefix: keys and its clear() must agree.
        own = getattr(backend, "prefix", None)
        if isinstance(own, str) and own:
            changes["prefix"] = own
    old = STATE.settings
    new = dataclasses.replace(old, **changes)
    if (new.max_size, new.max_entry_size) != (old.max_size, old.max_entry_size):
        STATE.store.reset(new.max_size, new.max_entry_size)
    STATE.settings = new
    if backend is not None or not _GUARD_SETTINGS.isdisjoint(changes):
        remote.set_backend(
            backend if backend is not None else STATE.backend_spec, **guard_options(new)
        )
    STATE.generation += 1
    return new


#: What a keyword of each kind accepts (:func:`check_setting` reads it).
_ACCEPTS: dict[Kind, str] = {
    "size": "int | str",
    "ttl": "float | timedelta | str",
    "text": "str",
    "header": "str",
    "bool": "bool",
    "seconds": "float | timedelta | str",
    "positive_seconds": "float | timedelta | str",
    "count": "int",
    "bytes": "int",
    "optional_header": "str",
    "optional_text": "str",
    "choice": "str",
}


def _option(name: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=f"{_ACCEPTS[KINDS[name]]} | None",
    )


# help(configure), IDEs and the API reference show every setting as a keyword.
configure.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            "backend",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation="Backend | str | None",
        ),
        *(_option(name) for name in KINDS),
    ],
    return_annotation="Settings",
)


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
        openapi.install(app)
        configure(backend, **settings)
        try:
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state
        finally:
            await coherence.stop()
            await remote.close_backend()

    return _lifespan

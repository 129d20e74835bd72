"""``@cache``: response caching for FastAPI endpoints, memoization for plain functions.

Under a route decorator, a hit is answered from stored bytes (status, headers, body) before the
handler runs, with no response-model validation and no serialization. On a plain function, the
return value is stored and handed back with its type. One wrapper serves both: FastAPI passes
the ``Request`` (the wrapper asks for it in its signature), a plain call does not.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import functools
import inspect
import sys
import threading
import types
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from . import _core, _log, _observe, coherence, config, distributed_flight, placement, remote
from .codec import Codec, PickleCodec, codec_for
from .durations import parse_ttl
from .exceptions import ConfigError, UnkeyableArgument
from .keys import ArgumentPlan, function_label, key_value, plan_arguments
from .render import render
from .request_reads import ReadLog, recording
from .responses import CachedResponse
from .singleflight import AsyncFlights, ThreadFlights
from .statuses import DEFAULT_STATUS_CODES, storable_statuses

if TYPE_CHECKING:
    from .backends.guard import GuardedBackend

__all__ = ["DEFAULT_STATUS_CODES", "cache"]

F = TypeVar("F", bound=Callable[..., Any])


# Names of the parameters the wrapper adds so FastAPI hands it the request and the response
# it will merge into the reply. Chosen so they cannot clash with a real parameter.
_REQUEST = "oxicache_request__"
_RESPONSE = "oxicache_response__"

KeyBuilder = Callable[[Request | None, dict[str, Any]], Any]


@dataclass(frozen=True)
class _Options:
    ttl: float | None
    namespace: str | None
    key_builder: KeyBuilder | None
    vary: tuple[str, ...]
    status_codes: tuple[int, ...]
    public: bool
    private: bool
    immutable: bool
    stale_while_revalidate: float
    stale_if_error: float
    cache_control: str
    per_user: bool | None
    ignore_args: tuple[str, ...]
    codec: Codec | None


@overload
def cache(ttl: F, /) -> F: ...


@overload
def cache(
    ttl: float | int | timedelta | str | None = None,
    *,
    namespace: str | None = None,
    key_builder: KeyBuilder | None = None,
    vary: Iterable[str] = (),
    status_codes: Iterable[int] = DEFAULT_STATUS_CODES,
    public: bool = False,
    private: bool = False,
    immutable: bool = False,
    stale_while_revalidate: float | int | timedelta | str | None = None,
    stale_if_error: float | int | timedelta | str | None = None,
    cache_control: str | None = None,
    per_user: bool | None = None,
    ignore_args: Iterable[str] = (),
    codec: Codec | None = None,
    enabled: bool = True,
) -> Callable[[F], F]: ...


def cache(
    ttl: float | int | timedelta | str | Callable[..., Any] | None = None,
    *,
    namespace: str | None = None,
    key_builder: KeyBuilder | None = None,
    vary: Iterable[str] = (),
    status_codes: Iterable[int] = DEFAULT_STATUS_CODES,
    public: bool = False,
    private: bool = False,
    immutable: bool = False,
    stale_while_revalidate: float | int | timedelta | str | None = None,
    stale_if_error: float | int | timedelta | str | None = None,
    cache_control: str | None = None,
    per_user: bool | None = None,
    ignore_args: Iterable[str] = (),
    codec: Codec | None = None,
    enabled: bool = True,
) -> Any:
    """Caches an endpoint's response, or memoizes a plain function.

    Place it *under* the route decorator::

        @app.get("/items")
        @cache(ttl=60)
        async def items() -> list[Item]: ...

    Args:
        ttl: freshness lifetime: seconds, ``timedelta`` or ``"1h30m"``; default from
            :func:`oxicache.configure` (60 s).
        namespace: label for grouped invalidation.
        key_builder: ``(request, arguments) -> value`` (sync or async); its result replaces the
            path, query and arguments in the key (``request`` is ``None`` for plain functions).
        vary: request header names whose values key the entry (and are sent in ``Vary``).
        status_codes: statuses that may be stored.
        public: ``Cache-Control: public``; also lets requests with credentials share entries.
        private: ``Cache-Control: private``; entries are keyed per ``Authorization``/``Cookie``.
        immutable: adds ``immutable``.
        stale_while_revalidate: adds ``stale-while-revalidate=N`` (RFC 5861).
        stale_if_error: adds ``stale-if-error=N`` (RFC 5861).
        cache_control: further directives appended verbatim (e.g. ``"no-transform"``).
        per_user: whether the key identifies the user (so requests with ``Authorization`` or
            ``Cookie`` may be answered from it). By default: when a keyed argument comes from a
            dependency (such as ``Depends(current_user)``) or ``vary`` names a credential header.
        ignore_args: parameter names left out of the key.
        codec: how plain functions' values are stored (default: JSON by return annotation,
            else pickle).
        enabled: ``False`` returns the function undecorated.

    ``@cache`` without parentheses is ``@cache()``. Contradictory or impossible options raise
    :class:`~oxicache.ConfigError` here, at decoration time, naming the fix.
    """
    if callable(ttl) and not isinstance(ttl, timedelta):
        # Bare ``@cache``: the function came in place of the TTL.
        func, frame = ttl, sys._getframe(1)
        return _decorate(func, _options(None), enabled=True, frame=frame)
    options = _options(
        ttl,
        namespace=namespace,
        key_builder=key_builder,
        vary=vary,
        status_codes=status_codes,
        public=public,
        private=private,
        immutable=immutable,
        stale_while_revalidate=stale_while_revalidate,
        stale_if_error=stale_if_error,
        cache_control=cache_control,
        per_user=per_user,
        ignore_args=ignore_args,
        codec=codec,
    )

    def decorate(func: F) -> F:
        return _decorate(func, options, enabled=enabled, frame=sys._getframe(1))

    return decorate


def _options(
    ttl: float | int | timedelta | str | None,
    *,
    namespace: str | None = None,
    key_builder: KeyBuilder | None = None,
    vary: Iterable[str] = (),
    status_codes: Iterable[int] = DEFAULT_STATUS_CODES,
    public: bool = False,
    private: bool = False,
    immutable: bool = False,
    stale_while_revalidate: float | int | timedelta | str | None = None,
    stale_if_error: float | int | timedelta | str | None = None,
    cache_control: str | None = None,
    per_user: bool | None = None,
    ignore_args: Iterable[str] = (),
    codec: Codec | None = None,
) -> _Options:
    """The decorator's options, checked."""
    if public and private:
        raise ConfigError("a response cannot be both public and private: choose one")
    if private and per_user is False:
        raise ConfigError(
            "private=True keys entries per client (Authorization/Cookie), which contradicts"
            " per_user=False: drop one of them"
        )
    if key_builder is not None and not callable(key_builder):
        raise ConfigError(f"key_builder must be a function, got {key_builder!r}")
    if isinstance(vary, str) or isinstance(ignore_args, str):
        raise ConfigError("vary and ignore_args take a list of names, not a single string")
    codes = storable_statuses(status_codes, option="status_codes")
    options = _Options(
        ttl=parse_ttl(ttl) if ttl is not None else None,
        namespace=namespace,
        key_builder=key_builder,
        vary=tuple(vary),
        status_codes=codes,
        public=public,
        private=private,
        immutable=immutable,
        stale_while_revalidate=_window(stale_while_revalidate),
        stale_if_error=_window(stale_if_error),
        cache_control=_extra_directives(cache_control),
        per_user=per_user,
        ignore_args=tuple(ignore_args),
        codec=codec,
    )
    for name in options.vary:
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise ConfigError(f"vary names header fields; {name!r} is not one")
    return options


#: Directives ``cache_control=`` may not carry, with what to write instead: ``no-store``
#: contradicts storing the response at all (RFC 9111 §5.2.2.5); the others are set by an
#: option of their own, which the decorator also applies to its own entries (a second
#: ``max-age`` would conflict with the one it sends, RFC 9111 §4.2.1). ``no-cache`` stays
#: allowed: clients revalidate, and the decorator answers them from its entry.
_OWN_OPTION = {
    "no-store": "the route would store what it tells every cache not to; drop @cache instead",
    "private": "write private=True (entries are then keyed per client)",
    "public": "write public=True",
    "max-age": "write ttl=...",
    "immutable": "write immutable=True",
    "stale-while-revalidate": "write stale_while_revalidate=...",
    "stale-if-error": "write stale_if_error=...",
}


def _extra_directives(cache_control: str | None) -> str:
    """``cache_control=`` checked: further directives (``no-transform``, ``s-maxage=...``,
    ``must-revalidate``), none that contradicts caching or duplicates an option."""
    text = (cache_control or "").strip().strip(",")
    for part in text.split(","):
        name = part.split("=", 1)[0].strip().lower()
        if name in _OWN_OPTION:
            raise ConfigError(f"cache_control={cache_control!r}: {name}: {_OWN_OPTION[name]}")
        if any(c in part for c in "\r\n\0"):
            raise ConfigError(f"cache_control={cache_control!r} holds a line break or NUL")
    return text


def _decorate(func: F, options: _Options, *, enabled: bool, frame: types.FrameType | None) -> F:
    if not callable(func):
        raise ConfigError(f"@cache decorates a function, got {func!r}")
    if not enabled:
        return func
    placement.refuse_registered(func, frame)
    parameters = inspect.signature(func).parameters
    for name in options.ignore_args:
        if name not in parameters:
            close = difflib.get_close_matches(name, list(parameters), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"ignore_args names {name!r}, which is not a parameter of"
                f" {getattr(func, '__qualname__', func)!r}{hint}"
            )
    return cast(F, _Cached(func, options).wrapper)


def _window(value: float | int | timedelta | str | None) -> float:
    return 0.0 if value is None else parse_ttl(value)


class _Cached:
    """The state behind one decorated function."""

    def __init__(self, func: Callable[..., Any], options: _Options) -> None:
        self.func = func
        self.options = options
        self.is_async = inspect.iscoroutinefunction(func)
        self.plan: ArgumentPlan = plan_arguments(func, options.ignore_args)
        self.label = function_label(func, namespaced=options.namespace is not None)
        self.signature = inspect.signature(func)
        self._route_cache: _core.RouteCache | None = None
        #: Synchronous plain functions run in worker threads, away from the event loop the
        #: backend's connections belong to: they memoize in the in-process store only.
        self._memory_cache: _core.RouteCache | None = None
        self._generation = -1
        self._codec = options.codec
        self.flights = AsyncFlights()
        self.thread_flights = ThreadFlights()
        self._refreshes: set[asyncio.Task[None]] = set()
        self._build_lock = threading.Lock()
        #: Seconds a backend keeps this route's entries (TTL plus stale windows).
        self.remote_ttl = 0.0
        #: Request headers the handler was seen reading (see request_reads.py): keyed too.
        self.learned: tuple[str, ...] = ()
        #: Lower-cased header names the compiled key includes (declared, implied, learned).
        self.keyed_headers: frozenset[str] = frozenset()
        #: Set once the handler read an input no key can hold: the route then answers uncached.
        self.opaque: str | None = None
        #: The route (and its inclusion) last checked for dependencies of its own, and
        #: whether any route serving this function has some (see :meth:`check_route`).
        self._checked_route: tuple[object, object] | None = None
        self.route_guarded = False
        #: Request headers (lower-cased) and whether cookies are read by the dependencies of
        #: the routes serving this function (see :meth:`check_route`).
        self.dependency_headers: frozenset[str] = frozenset()
        self.dependency_cookies = False
        #: The handler returned a ``Response`` itself (last time it ran): FastAPI then sends
        #: it as it is, without the headers the dependencies set on the injected one.
        self.returns_response = False
        #: ``configure(enabled=...)`` as of the compiled settings (see :meth:`route_cache`).
        self.enabled = True
        #: The key is the handler's keyed arguments as they are (see :meth:`key_material`).
        self.plain_keys = options.key_builder is None and not self.plan.resources
        self.wrapper = self._make_wrapper()

    # -- settings -----------------------------------------------------------------------

    def route_cache(self, *, memory_only: bool = False) -> _core.RouteCache:
        """The compiled route settings, rebuilt after :func:`oxicache.configure`."""
        generation = config.generation()
        rc = self._memory_cache if memory_only else self._route_cache
        if rc is None or self._generation != generation:
            # (a route whose handler revealed a new input resets _route_cache to None)
            with self._build_lock:
                if self._generation != generation:
                    self._route_cache = self._memory_cache = None
                    self._generation = generation
                rc = self._build_route_cache(memory_only=memory_only)
                if memory_only:
                    self._memory_cache = rc
                else:
                    self._route_cache = rc
        return rc

    def downstream_private(self) -> bool:
        """Whether the responses must not be stored by shared caches downstream (a CDN,
        ``CacheMiddleware`` in front): the decorator's own hit still runs the route's
        dependencies, a shared cache in front would not (RFC 9111 §5.2.2.7 ``private``).

        So: a dependency whose value is not in the key (it may be an authorization check), a
        dependency of the route, its router or the app (:meth:`check_route`), or a keyed
        ``Header()`` that carries a credential (an API key, a token)."""
        return (
            self.route_guarded
            or self.plan.unkeyed_dependency
            or self.plan.cookie_param
            or self.dependency_cookies
            or any(_credential_like(h) for h in self.plan.header_fields)
            or any(_credential_like(h) for h in self.dependency_headers)
        )

    def check_route(self, scope: Any) -> None:
        """Notes whether the route serving this request has dependencies of its own
        (``dependencies=[...]`` on the route, its routers or the app); if so, the compiled
        settings are rebuilt to mark responses ``private``. Checked again only when another
        route (or another inclusion of it) serves the function."""
        route = scope.get("route")
        fastapi_scope = scope.get("fastapi")
        inclusion = (
            fastapi_scope.get("effective_route_context")
            if isinstance(fastapi_scope, dict)
            else None
        )
        self._checked_route = (route, inclusion)
        guarded = self.route_guarded
        router = getattr(scope.get("app"), "router", None)
        for holder in (route, inclusion, router):
            if getattr(holder, "dependencies", None):
                guarded = True
        # The request headers and cookies the route's dependencies read (a region header
        # behind ``Depends(region)``): named in Vary and keyed, as the handler's own are.
        headers, cookies = set(self.dependency_headers), self.dependency_cookies
        for holder in (route, inclusion):
            dependant = getattr(holder, "dependant", None)
            if dependant is not None:
                cookies |= _dependant_inputs(dependant, headers)
        if (guarded, frozenset(headers), cookies) != (
            self.route_guarded,
            self.dependency_headers,
            self.dependency_cookies,
        ):
            self.route_guarded = guarded
            self.dependency_headers = frozenset(headers)
            self.dependency_cookies = cookies
            with self._build_lock:
                self._generation = -1  # rebuild with the new Vary and Cache-Control

    def _build_route_cache(self, *, memory_only: bool = False) -> _core.RouteCache:
        o, settings = self.options, config.get_settings()
        self.enabled = settings.enabled
        vary = list(o.vary)
        lowered = {v.lower() for v in vary}
        for name in self.learned:
            if name not in lowered:
                vary.append(name)
                lowered.add(name)
        cookies = self.plan.cookie_param or self.dependency_cookies
        for name in (
            *self.plan.header_fields,
            *sorted(self.dependency_headers),
            *(["cookie"] if cookies else []),
        ):
            # A Header() (or Cookie()) parameter, the handler's or a dependency's, is keyed,
            # and Vary tells the caches downstream (RFC 9110 §12.5.5), under the name FastAPI
            # reads.
            if name not in lowered:
                vary.append(name)
                lowered.add(name)
        if o.private:
            # Private answers belong to one client: key them on its credentials.
            vary += [h for h in ("Authorization", "Cookie") if h.lower() not in lowered]
        self.keyed_headers = frozenset(v.lower() for v in vary)
        per_user = o.per_user
        if per_user is None:
            per_user = (
                self.plan.keyed_dependency
                or self.plan.cookie_param
                or o.private
                or bool(lowered & {"authorization", "cookie"})
            )
        directives = []
        if o.public:
            directives.append("public")

        if o.immutable:
            directives.append("immutable")
        if o.stale_while_revalidate:
            directives.append(f"stale-while-revalidate={int(o.stale_while_revalidate)}")
        if o.stale_if_error:
            directives.append(f"stale-if-error={int(o.stale_if_error)}")
        if o.cache_control:
            directives.append(o.cache_control)
        ttl = o.ttl if o.ttl is not None else settings.default_ttl
        backend = None if memory_only else remote.get_backend()
        tier = "memory" if backend is None else ("two-tier" if settings.two_tier else "remote")
        # The backend keeps an entry through its stale windows too (RFC 5861).
        self.remote_ttl = ttl + max(o.stale_while_revalidate, o.stale_if_error)
        return _core.RouteCache(
            config.get_store(),
            key_value,
            namespace=o.namespace if o.namespace is not None else settings.namespace,
            route=self.label,
            ttl=ttl,
            prefix=settings.prefix,
            stale_while_revalidate=o.stale_while_revalidate,
            stale_if_error=o.stale_if_error,
            vary=vary,
            statuses=list(o.status_codes),
            cache_control=", ".join(directives),
            per_user=per_user,
            public=o.public,
            private=o.private or (not o.public and self.downstream_private()),
            weak_etag=settings.weak_etags,
            honor_no_cache=settings.honor_request_no_cache,
            url_in_key=o.key_builder is None,
            header_name=settings.header_name,
            tier=tier,
            local_ttl=settings.local_ttl,
            compress_threshold=settings.compress_threshold,
        )

    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = codec_for(self.func)
        return self._codec

    # -- the wrapper --------------------------------------------------------------------

    def _make_wrapper(self) -> Callable[..., Any]:
        plan = self.plan
        request_name = plan.request_param or _REQUEST
        response_name = plan.response_param
        injects_request = plan.request_param is None
        injects_response = plan.response_param is None

        def split(
            args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[Request | None, Response | None]:
            """Takes the request and sub-response out of a call (FastAPI passes keywords)."""
            request = kwargs.pop(_REQUEST, None) if injects_request else kwargs.get(request_name)
            if injects_response:
                sub = kwargs.pop(_RESPONSE, None)
            else:
                sub = kwargs.get(cast(str, response_name))
            if not isinstance(request, Request):
                return None, None
            return request, sub if isinstance(sub, Response) else None

        if self.is_async:

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                request, sub = split(args, kwargs)
                if request is None:
                    return await self.memoized_async(args, kwargs)
                return await self.serve(request, sub, kwargs)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                request, sub = split(args, kwargs)
                if request is None:
                    return self.memoized_sync(args, kwargs)
                # Under FastAPI: return a coroutine, so hits are answered on the event loop
                # and only the handler itself goes to the threadpool.
                return self.serve(request, sub, kwargs)

            wrapper = sync_wrapper
            _mark_coroutine_function(wrapper)

        functools.update_wrapper(wrapper, self.func)
        params = list(self.signature.parameters.values())
        extra = []
        if injects_request:
            extra.append(
                inspect.Parameter(
                    _REQUEST, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Request
                )
            )
        if injects_response:
            extra.append(
                inspect.Parameter(
                    _RESPONSE, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Response
                )
            )
        at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
        params[at:at] = extra
        wrapper.__signature__ = self.signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__oxicache__ = self  # type: ignore[attr-defined]
        return wrapper

    # -- endpoints ----------------------------------------------------------------------

    async def produce(
        self, request: Request, sub: Response | None, kwargs: dict[str, Any]
    ) -> Response:
        """Runs the handler and renders its response as FastAPI would."""
        return (await self.produce_watched(request, sub, kwargs))[0]

    async def produce_watched(
        self, request: Request, sub: Response | None, kwargs: dict[str, Any]
    ) -> tuple[Response, bool]:
        """Runs the handler; True when it read a request input its key did not include
        (then its response must not be stored under that key)."""
        log = None
        name = self.plan.request_param
        if name is not None and self.options.key_builder is None and name in kwargs:
            log = ReadLog()
            kwargs = {**kwargs, name: recording(kwargs[name], log)}
        if self.is_async:
            value = await self.func(**kwargs)
        else:
            value = await run_in_threadpool(self.func, **kwargs)
        self.returns_response = isinstance(value, Response)
        response = await render(request, value, sub, self.is_async)
        return response, log is not None and self.learn(log)

    def learn(self, log: ReadLog) -> bool:
        """Folds what the handler read into the route's key; True if anything was new."""
        if log.opaque is not None:
            if self.opaque is None:
                self.opaque = log.opaque
                _log.warn(
                    "bypass.reads-request",
                    "oxicache: %s reads %s, which no cache key can hold: it is answered "
                    "uncached from now on (key it with key_builder= to cache it)",
                    self.label,
                    log.opaque,
                )
            return True
        self.route_cache()  # keyed_headers reflects the settings in force
        new = sorted(log.headers - self.keyed_headers)
        if not new:
            return False
        with self._build_lock:
            self.learned = tuple(sorted(set(self.learned) | set(new)))
            self._route_cache = None
        _log.count("learned_vary")
        return True

    async def key_values(
        self, request: Request | None, arguments: dict[str, Any]
    ) -> tuple[Any, ...]:
        return (await self.key_material(request, arguments))[0]

    async def key_material(
        self, request: Request | None, arguments: dict[str, Any]
    ) -> tuple[tuple[Any, ...], bool | None]:
        """The values that key a call, and ``False`` when a value that might identify the
        user was left out (so that this request is not answered from a shared entry), else
        ``None`` (the route's own per-user setting holds)."""
        builder = self.options.key_builder
        if builder is not None:
            value = builder(request, arguments)
            if inspect.isawaitable(value):
                value = await value
            return (value,), None
        values = tuple(arguments[name] for name in self.plan.keyed if name in arguments)
        per_user: bool | None = None
        if self.plan.resources:
            extra = []
            for name in self.plan.resources:
                value = arguments.get(name)
                if _keyable(value):
                    extra.append(value)
                else:  # a session or client: not data, and it may hide who the user is
                    extra.append(_NOT_KEYED)
                    per_user = False
            values += tuple(extra)
        return values, per_user

    async def serve(
        self, request: Request, sub: Response | None, kwargs: dict[str, Any]
    ) -> Response:
        """Answers one request to the endpoint: :meth:`lookup`, then a hit is replayed and
        anything else goes to :meth:`answer` (bypass, or a miss: follow, lead or stale).

        Headers already on the injected ``Response`` were set by the route's dependencies (a
        rate-limit counter, a refreshed session cookie): they belong to this request. They are
        kept out of the entry, and sent with whatever answers this request, a replay included
        (as FastAPI merges them into a rendered response)."""
        owned = sub.raw_headers if sub is not None else None
        result = self.lookup(request, kwargs)
        if result.__class__ is tuple:
            response: Response = CachedResponse(*result)
        else:
            response = await self.answer(request, sub, kwargs, list(owned or ()), result)
        if owned and response.__class__ is CachedResponse and not self.returns_response:
            response.raw_headers = [*response.raw_headers, *owned]
        if _observe.active:
            _observe.reply(self.label, None, response.status_code, response.raw_headers)
        return response

    def lookup(self, request: Request, kwargs: dict[str, Any]) -> Any:
        """The engine's answer for this request, without awaiting anything: a reply tuple (a
        hit), a bypass reason (``str``), a :class:`_core.Pending` miss, or :data:`_ASYNC_KEY`
        when the key needs an awaited ``key_builder`` (then :meth:`answer` looks up)."""
        scope = request.scope
        checked = self._checked_route
        if checked is None or checked[0] is not scope.get("route"):
            self.check_route(scope)
        rc = self.route_cache()
        if not self.enabled:
            return "disabled"
        if self.opaque is not None:
            return "reads-request"
        if not self.plain_keys:
            return _ASYNC_KEY
        try:
            values = tuple([kwargs[n] for n in self.plan.keyed if n in kwargs])
            return rc.lookup(scope, values, None)
        except Exception as exc:
            return self.lookup_failed(exc)

    def lookup_failed(self, exc: Exception) -> str:
        """The bypass reason for a key or lookup that raised (logged, rate-limited)."""
        if isinstance(exc, UnkeyableArgument):
            _log.warn(
                "bypass.unkeyable", "oxicache: %s uncached: %s", self.label, _log.describe(exc)
            )
            return "unkeyable"
        # A broken cache is a miss, never an error page.
        _log.warn(
            "error.lookup", "oxicache: lookup failed on %s: %s", self.label, _log.describe(exc)
        )
        return "error"

    async def answer(
        self,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        owned: list[tuple[bytes, bytes]],
        result: Any,
    ) -> Response:
        """Everything but a hit from :meth:`lookup`: a bypass, or a miss (answered from a
        backend, followed, led, or served stale). ``owned``: this request's own headers, kept
        out of entries."""
        if result is _ASYNC_KEY:
            try:
                values, per_user = await self.key_material(request, kwargs)
                result = self.route_cache().lookup(request.scope, values, per_user)
            except Exception as exc:
                result = self.lookup_failed(exc)
            if result.__class__ is tuple:
                return CachedResponse(*result)
        rc = self.route_cache()
        if isinstance(result, str):
            if result not in _SILENT_BYPASSES:
                _log.count(f"bypass.{result}")
            return await self.bypass(request, sub, kwargs, result)
        pending = cast(_core.Pending, result)
        if pending.remote_key is not None:
            # read_remote inlined: one coroutine less alive while the backend answers
            backend = self.remote_backend(rc, pending)
            frame = None if backend is None else await backend.get(pending.remote_key)
            answer = self.remote_answer(rc, pending, frame)
            if isinstance(answer, tuple):
                return CachedResponse(*answer)
            pending = answer
        stale = pending.stale_reply
        # RFC 5861 §3: inside stale-while-revalidate, answer stale now and refresh once in the
        # background. Not for routes whose handler takes resources from yield dependencies:
        # those close when this request ends, before a background refresh would use them.
        if stale is not None and pending.serve_stale and not self.plan.resources:
            self.refresh_in_background(rc, pending, request, sub, kwargs, owned)
            _log.count("stale.while_revalidate")
            return CachedResponse(*stale)
        leading = self.flights.lead(pending.key)
        if leading is None:
            if await self.flights.wait(pending.key, config.get_settings().lock_timeout):
                reply = rc.replay_pending(pending)
                if reply is None and pending.remote_key is not None:
                    # The leader answered from another process's entry (distributed_flight).
                    reply = distributed_flight.shared(rc, pending)
                if reply is not None:
                    _log.count("coalesced")
                    return CachedResponse(*reply)
            if pending.remote_key is not None:
                # Another process may have stored it meanwhile (distributed_flight).
                answer = await self.read_remote(rc, pending)
                if isinstance(answer, tuple):
                    return CachedResponse(*answer)
            # The leader failed, stored nothing, or is too slow: answer as a plain miss.
            _log.count("coalesce.gave_up")
            return (await self.finish_miss(rc, pending, request, sub, kwargs, owned=owned))[0]
        stored = False
        lease: distributed_flight.Lease | None = None
        try:
            if pending.remote_key is not None:
                # A leader that finished while this request was reading the backend left its
                # entry in memory for the coalescing window: answer from it.
                reply = rc.replay_pending(pending)
                if reply is not None:
                    _log.count("coalesced")
                    return CachedResponse(*reply)
                # Across processes too: a lock in the backend, or wait for its holder's entry.
                joined = await distributed_flight.join(rc, pending)
                if joined.reply is not None and joined.frame is not None:
                    distributed_flight.share(pending.key, joined.frame)
                    stored = True
                    return CachedResponse(*joined.reply)
                lease = joined.lease
            response, stored = await self.finish_miss(
                rc, pending, request, sub, kwargs, lease, owned=owned
            )
        except Exception as exc:
            if stale is None:
                raise
            # RFC 5861 §4: stale-if-error answers with the stale entry when the handler fails.
            _log.warn(
                "stale.if_error",
                "oxicache: %s failed (%s); answered stale",
                self.label,
                _log.describe(exc),
            )
            return CachedResponse(*stale)
        finally:
            if lease is not None:
                lease.release_soon()  # unless the entry's write releases it once written
            self.flights.land(pending.key, leading, stored)
        if stale is not None and response.status_code >= 500:
            _log.count("stale.if_error")
            return CachedResponse(*stale)
        return response

    async def read_remote(
        self, rc: _core.RouteCache, pending: _core.Pending
    ) -> tuple[int, Any, bytes] | _core.Pending:
        """Asks the backend for a miss of the memory tier: a reply to send, or the pending
        miss to go on with (with a stale reply when the backend's entry is inside a stale
        window). A backend that fails, hangs or returns a foreign entry is a miss."""
        backend = self.remote_backend(rc, pending)
        frame = None if backend is None else await backend.get(cast(str, pending.remote_key))
        return self.remote_answer(rc, pending, frame)

    def remote_backend(self, rc: _core.RouteCache, pending: _core.Pending) -> GuardedBackend | None:
        """The backend to read ``pending``'s entry from, or None when there is none to read
        (no backend, or a revalidation the client asked for)."""
        backend = remote.get_backend()
        coherence.ensure(rc.namespace, self.label)  # two tiers: hear the others' invalidations
        if backend is None or pending.remote_key is None or pending.revalidate:
            return None
        return backend

    def remote_answer(
        self, rc: _core.RouteCache, pending: _core.Pending, frame: bytes | None
    ) -> tuple[int, Any, bytes] | _core.Pending:
        """What the backend's ``frame`` (None: nothing there) gives ``pending``: a reply to
        send, or the miss to go on with."""
        if frame is not None:
            try:
                got = rc.accept(pending, frame)
            except Exception as exc:  # never an error page
                _log.warn("error.remote", "oxicache: remote entry unusable: %s", _log.describe(exc))
                got = None
            if got.__class__ is tuple:
                _log.count("remote.hit")
                return cast(tuple[int, Any, bytes], got)
            if isinstance(got, str):
                # Foreign, truncated or corrupt: a miss, overwritten by this request.
                _log.warn(
                    "remote.corrupt", "oxicache: corrupt entry in the backend for %s", self.label
                )
            elif got is not None:
                pending = cast(_core.Pending, got)
        if pending.only_if_cached and pending.stale_reply is None:
            return rc.gateway_timeout()
        return pending

    def refresh_in_background(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        owned: list[tuple[bytes, bytes]] | tuple[()] = (),
    ) -> None:
        """Starts the one refresh of a stale key, unless one is running already (``owned``:
        this request's own headers, kept out of the new entry)."""
        leading = self.flights.lead(pending.key)
        if leading is None:
            return

        async def refresh() -> None:
            stored = False
            try:
                _, stored = await self.finish_miss(rc, pending, request, sub, kwargs, owned=owned)
            except Exception as exc:
                _log.warn(
                    "error.refresh",
                    "oxicache: refreshing %s failed: %s",
                    self.label,
                    _log.describe(exc),
                )
            finally:
                self.flights.land(pending.key, leading, stored)

        task = asyncio.get_running_loop().create_task(refresh())
        self._refreshes.add(task)  # keep a reference until it ends
        task.add_done_callback(self._refreshes.discard)

    async def finish_miss(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        lease: distributed_flight.Lease | None = None,
        *,
        owned: list[tuple[bytes, bytes]] | tuple[()] = (),
    ) -> tuple[Response, bool]:
        """Runs the handler for a miss and stores its response when allowed (without the
        request's own headers, ``owned``: see :meth:`serve`)."""
        response, revealed = await self.produce_watched(request, sub, kwargs)
        if revealed:  # keyed without an input the handler reads: not stored under this key
            return _marked(response, "learned-input"), False
        return self.complete(rc, pending, response, lease, owned=owned)

    def complete(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        response: Response,
        lease: distributed_flight.Lease | None = None,
        *,
        owned: list[tuple[bytes, bytes]] | tuple[()] = (),
    ) -> tuple[Response, bool]:
        """Stores the miss's response when allowed. Returns the response to send (the
        handler's, with the cache's fields, as a new object: a handler may return the same
        ``Response`` every time) and whether it was stored. ``owned``: headers that belong
        to this request (see :meth:`serve`), left out of the entry and of the reply (which
        :meth:`serve` completes)."""
        body = getattr(response, "body", None)
        if not isinstance(body, bytes):  # streaming or file responses are never stored
            _log.count("not_stored.streaming")
            return _marked(response, "streaming"), False
        raw_headers = response.raw_headers
        if owned:
            raw_headers = _without(raw_headers, owned)
        try:
            status, headers, body, stored, frame = rc.complete(
                pending, response.status_code, raw_headers, body
            )
        except Exception as exc:
            _log.warn(
                "error.store",
                "oxicache: storing a response of %s failed: %s",
                self.label,
                _log.describe(exc),
            )
            return _marked(response, "error"), False
        if not stored:
            _log.count("not_stored")
        if frame is not None and pending.remote_key is not None:
            # A cross-process lock is released once the write has ended, so waiters find it.
            then = {} if lease is None else {"then": lease.release}
            written = self._write_remote(pending.remote_key, frame, (pending.path_tag,), then)
            if written and lease is not None:
                lease.hold_until_written()
        reply = CachedResponse(status, headers, body)
        reply.background = response.background
        return reply, bool(stored)

    async def bypass(
        self,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        reason: str,
    ) -> Response:
        """Answers without the cache, labelled ``BYPASS`` with the reason."""
        response = await self.produce(request, sub, kwargs)
        return _marked(response, reason)

    # -- plain functions ----------------------------------------------------------------

    def call_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    def _call_key(
        self, arguments: dict[str, Any], values: tuple[Any, ...], memory_only: bool = False
    ) -> Any:
        try:
            return self.route_cache(memory_only=memory_only).call_key(values)
        except UnkeyableArgument as exc:
            _log.warn(
                "bypass.unkeyable", "oxicache: %s uncached: %s", self.label, _log.describe(exc)
            )
            return None

    def _load(self, rc: _core.RouteCache, key: Any, waiter: bool = False) -> tuple[bool, Any]:
        data = rc.get_value(key, waiter)
        if data is None:
            return False, None
        return self._decode(data)

    def _decode(self, data: bytes) -> tuple[bool, Any]:
        try:
            return True, self.codec().loads(data)
        except Exception as exc:  # undecodable entry: a miss, and it is overwritten below
            _log.warn(
                "error.decode",
                "oxicache: stored value of %s unreadable: %s",
                self.label,
                _log.describe(exc),
            )
            return False, None

    def _save(
        self, rc: _core.RouteCache, key: Any, value: Any, remote_key: str | None = None
    ) -> bool:
        try:
            stored, frame = rc.set_value(key, self.codec().dumps(value))
        except Exception as exc:
            _log.warn(
                "error.encode",
                "oxicache: value of %s not stored: %s",
                self.label,
                _log.describe(exc),
            )
            return False
        if frame is not None and remote_key is not None:
            self._write_remote(remote_key, frame, (), {})
        return bool(stored)

    def _write_remote(
        self, key: str, frame: bytes, tags: tuple[str, ...], then: dict[str, Any]
    ) -> bool:
        """Schedules the write of an entry to the backend: after the response, bounded in
        number, never delaying it; with two tiers it is announced to the other processes once
        written (``then`` runs first). False when there is no backend or the write was
        dropped (counted)."""
        backend = remote.get_backend()
        if backend is None:
            return False
        then = coherence.with_announce(then, key)
        if backend.set_later(key, frame, self.remote_ttl, tags, **then):
            return True
        _log.count("remote.write_dropped")
        return False

    async def memoized_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not config.get_settings().enabled:
            return await self.func(*args, **kwargs)
        arguments = self.call_arguments(args, kwargs)
        # Pickled values (no return annotation, no codec chosen) never go to a backend: reading
        # one back would run code that anyone able to write to the backend could choose.
        memory_only = self.options.codec is None and isinstance(self.codec(), PickleCodec)
        key = self._call_key(
            arguments, await self.key_values(None, arguments), memory_only=memory_only
        )
        if key is None:
            return await self.func(*args, **kwargs)
        rc = self.route_cache(memory_only=memory_only)
        found, value = self._load(rc, key)
        if found:
            return value
        remote_key = rc.remote_key_of(key)
        if remote_key is not None:
            found, value = await self._load_remote(rc, key, remote_key)
            if found:
                return value
        leading = self.flights.lead(key)
        if leading is None:
            if await self.flights.wait(key, config.get_settings().lock_timeout):
                found, value = self._load(rc, key, waiter=True)
                if found:
                    return value
            return await self.func(*args, **kwargs)
        stored = False
        try:
            if remote_key is not None:
                # A leader finished while this call was reading the backend.
                found, value = self._load(rc, key, waiter=True)
                if found:
                    return value
            value = await self.func(*args, **kwargs)
            stored = self._save(rc, key, value, remote_key)
            return value
        finally:
            self.flights.land(key, leading, stored)

    async def _load_remote(
        self, rc: _core.RouteCache, key: Any, remote_key: str
    ) -> tuple[bool, Any]:
        """A memoized value from the backend: a failure, a stale or a corrupt entry is a miss
        (and the miss overwrites it)."""
        backend = remote.get_backend()
        if backend is None:
            return False, None
        coherence.ensure(rc.namespace, self.label)  # two tiers: hear the others' invalidations
        frame = await backend.get(remote_key)
        if frame is None:
            return False, None
        try:
            data = rc.accept_value(key, frame)
        except Exception as exc:  # never an error for the caller
            _log.warn("error.remote", "oxicache: remote value unusable: %s", _log.describe(exc))
            return False, None
        if isinstance(data, str) or data is None:
            if isinstance(data, str):
                _log.warn(
                    "remote.corrupt", "oxicache: corrupt value in the backend for %s", self.label
                )
            return False, None
        return self._decode(data)

    def memoized_sync(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not config.get_settings().enabled:
            return self.func(*args, **kwargs)
        if self.options.key_builder is not None:
            arguments = self.call_arguments(args, kwargs)
            built = self.options.key_builder(None, arguments)
            if inspect.isawaitable(built):
                close = getattr(built, "close", None)
                if close is not None:  # never awaited: close it, or Python warns at GC
                    close()
                raise ConfigError("an async key_builder cannot key a synchronous function")
            values: tuple[Any, ...] = (built,)
        else:
            arguments = self.call_arguments(args, kwargs)
            values = tuple(arguments[name] for name in self.plan.keyed if name in arguments)
        key = self._call_key(arguments, values, memory_only=True)
        if key is None:
            return self.func(*args, **kwargs)
        rc = self.route_cache(memory_only=True)
        found, value = self._load(rc, key)
        if found:
            return value
        event = self.thread_flights.lead(key)
        if event is None:
            self.thread_flights.wait(key, config.get_settings().lock_timeout)
            found, value = self._load(rc, key)
            return value if found else self.func(*args, **kwargs)
        try:
            value = self.func(*args, **kwargs)
            self._save(rc, key, value)
            return value
        finally:
            self.thread_flights.land(key, event)


#: :meth:`_Cached.lookup` could not key the request without awaiting a ``key_builder``.
_ASYNC_KEY = object()
#: Bypass reasons counted where they are decided, not again by :meth:`_Cached.answer`.
_SILENT_BYPASSES = frozenset({"disabled", "unkeyable", "error"})


#: Parts of a header name that say it carries a credential (``X-API-Key``, ``X-Auth-Token``,
#: ``X-Session-Id``): a response keyed on one is ``private`` downstream.
_CREDENTIAL_PARTS = ("auth", "token", "key", "secret", "session", "cookie", "password", "sign")


def _without(
    headers: list[tuple[bytes, bytes]], owned: list[tuple[bytes, bytes]] | tuple[()]
) -> list[tuple[bytes, bytes]]:
    """``headers`` less one occurrence of each of ``owned``."""
    left = list(owned)
    out = []
    for pair in headers:
        if pair in left:
            left.remove(pair)
        else:
            out.append(pair)
    return out


def _dependant_inputs(dependant: Any, headers: set[str]) -> bool:
    """Adds to ``headers`` the request headers read by the endpoint and by the dependencies
    whose values reach it (``Header()`` parameters, lower-cased, under their alias); True if
    they read cookies. The route's own ``dependencies=[...]`` are left out: their values never
    reach the handler (they make the route ``private`` instead)."""
    cookies = False
    subs = getattr(dependant, "dependencies", None) or ()
    stack = [dependant, *(d for d in subs if getattr(d, "name", None))]
    seen = {id(dependant)}
    for field in getattr(dependant, "header_params", None) or ():
        name = getattr(field, "alias", None) or getattr(field, "name", "")
        if isinstance(name, str) and name:
            headers.add(name.lower())
    cookies |= bool(getattr(dependant, "cookie_params", None))
    stack = stack[1:]
    while stack:
        d = stack.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        for field in getattr(d, "header_params", None) or ():
            name = getattr(field, "alias", None) or getattr(field, "name", "")
            if isinstance(name, str) and name:
                headers.add(name.lower())
        cookies |= bool(getattr(d, "cookie_params", None))
        stack.extend(getattr(d, "dependencies", None) or ())
    return cookies


def _credential_like(header: str) -> bool:
    return any(part in header for part in _CREDENTIAL_PARTS)


#: Stands in the key for a ``yield`` dependency's value that is not data.
_NOT_KEYED = ("oxicache: resource left out of the key",)


def _keyable(value: Any) -> bool:
    try:
        _core.build_key((value,), key_value)
    except Exception:
        return False
    return True


def _marked(response: Response, reason: str) -> Response:
    """A copy of ``response`` labelled as not answered or stored by the cache (``BYPASS``).

    A copy, because a handler may return the same Response object every time (a module-level
    constant): the cache must not change what the handler owns.
    """
    name = config.get_settings().header_name.lower().encode("latin-1")
    own = (name, b"cache-status")
    labelled = copy.copy(response)
    labelled.__dict__.pop("_headers", None)  # Starlette's cached view of the old list
    labelled.raw_headers = [
        *((k, v) for k, v in response.raw_headers if k.lower() not in own),
        (name, b"BYPASS"),
        (b"cache-status", f"oxicache; fwd=bypass; detail={reason}".encode()),
    ]
    return labelled


def _mark_coroutine_function(func: Callable[..., Awaitable[Any] | Any]) -> None:
    """Makes FastAPI await the sync wrapper's result (a coroutine) instead of threading it."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:  # Python 3.12+
        mark(func)
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    if marker is not None:  # what asyncio.iscoroutinefunction checks on 3.11 and 3.12
        func._is_coroutine = marker  # type: ignore[attr-defined]

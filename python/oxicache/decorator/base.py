"""The state behind one decorated function: its options, its compiled route settings (rebuilt
after :func:`oxicache.configure`), what it learned about its route, how its calls are keyed,
and the wrapper. Serving requests (:mod:`.endpoint`) and memoizing calls (:mod:`.memo`) build
on it."""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, cast

from pydantic import BaseModel
from starlette.requests import Request

from .. import _core, _log
from ..backends import remote
from ..codec import Codec, codec_for
from ..coordination import coherence
from ..coordination.singleflight import AsyncFlights, ThreadFlights
from ..integrations import openapi
from ..keys import ArgumentPlan, function_label, key_value, plan_arguments
from ..runtime import STATE
from .options import _Options


class CachedBase:
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
        #: Request headers the handler was seen reading (:mod:`oxicache.request_reads`): keyed
        self.learned: tuple[str, ...] = ()
        #: Lower-cased header names the compiled key includes (declared, implied, learned).
        self.keyed_headers: frozenset[str] = frozenset()
        #: Set once the handler read an input no key can hold: the route then answers uncached.
        self.opaque: str | None = None
        #: The route (and its inclusion) last checked for dependencies of its own, held
        #: weakly (:func:`held`), and whether any route serving this function has some (see
        #: :meth:`check_route`).
        self._checked_route: tuple[object, object] | None = None
        self.route_guarded = False
        #: Request headers (lower-cased) and whether cookies are read by the dependencies of
        #: the routes serving this function (see :meth:`check_route`).
        self.dependency_headers: frozenset[str] = frozenset()
        self.dependency_cookies = False
        #: The query parameters the routes serving this function declare (theirs and their
        #: dependencies'), for ``query_key="declared"``; None while unknown, or when an
        #: undeclared parameter can matter (see :func:`_declared_query`).
        self.declared_query: frozenset[str] | None = None
        #: The compiled key holds the query string as sent (else sorted or filtered, and a
        #: handler that reads the query itself reveals an input the key lacks).
        self.query_as_sent = True
        #: The handler returned a ``Response`` itself (last time it ran): FastAPI then sends
        #: it as it is, without the headers the dependencies set on the injected one.
        self.returns_response = False
        #: ``configure(enabled=...)`` as of the compiled settings (see :meth:`route_cache`).
        self.enabled = True
        #: The key is the handler's keyed arguments as they are (see :meth:`key_material`).
        self.plain_keys = options.key_builder is None and not self.plan.resources

    # -- settings -----------------------------------------------------------------------

    def route_cache(self, *, memory_only: bool = False) -> _core.RouteCache:
        """The compiled route settings, rebuilt after :func:`oxicache.configure`."""
        generation = STATE.generation
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

    def check_route(self, scope: Any, serving: tuple[object, object]) -> None:
        """Notes whether the route serving this request has dependencies of its own
        (``dependencies=[...]`` on the route, its routers or the app); if so, the compiled
        settings are rebuilt to mark responses ``private``. ``serving`` is
        :func:`serving_route` of the request: checked again only when another route (or
        another inclusion of it) serves the function."""
        route, inclusion = serving
        self._checked_route = (held(route), held(inclusion))
        guarded = self.route_guarded
        app = scope.get("app")
        openapi.install(app)  # an app oxicache has not seen yet documents its cached routes
        router = getattr(app, "router", None)
        for holder in (route, inclusion, router):
            if getattr(holder, "dependencies", None):
                guarded = True
        # The request headers and cookies the route's dependencies read (a region header
        # behind ``Depends(region)``): named in Vary and keyed, as the handler's own are.
        headers, cookies = set(self.dependency_headers), self.dependency_cookies
        declared: set[str] | None = set(self.declared_query or ())
        found = False
        for holder in (route, inclusion):
            dependant = getattr(holder, "dependant", None)
            if dependant is not None:
                found = True
                cookies |= _dependant_inputs(dependant, headers)
                names = _declared_query(dependant)
                declared = None if names is None or declared is None else declared | names
        seen = None if declared is None or not found else frozenset(declared)
        # The declared query parameters change the key only under query_key="declared".
        keyed = (self.options.query_key or STATE.settings.query_key) == "declared"
        if (guarded, frozenset(headers), cookies) != (
            self.route_guarded,
            self.dependency_headers,
            self.dependency_cookies,
        ) or (keyed and seen != self.declared_query):
            self.route_guarded = guarded
            self.dependency_headers = frozenset(headers)
            self.dependency_cookies = cookies
            self.declared_query = seen
            with self._build_lock:
                self._generation = -1  # rebuild with the new Vary and Cache-Control
        else:
            self.declared_query = seen  # read when query_key="declared" is configured

    def _build_route_cache(self, *, memory_only: bool = False) -> _core.RouteCache:
        o, settings = self.options, STATE.settings
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
        refresh_ahead = o.refresh_ahead if o.refresh_ahead is not None else settings.refresh_ahead
        if refresh_ahead >= ttl:  # the global window, on a route with a shorter TTL
            refresh_ahead = ttl / 2
        query_key = o.query_key or settings.query_key
        if query_key == "declared" and self.declared_query is None:
            query_key = "raw"  # not served by a FastAPI route (yet): nothing is declared
        self.query_as_sent = query_key == "raw"
        backend = None if memory_only else remote.get_backend()
        tier = "memory" if backend is None else ("two-tier" if settings.two_tier else "remote")
        # The backend keeps an entry through its stale windows too (RFC 5861).
        self.remote_ttl = ttl + max(o.stale_while_revalidate, o.stale_if_error)
        route_config = _core.RouteConfig(
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
            refresh_ahead=refresh_ahead,
            expires=o.expires if o.expires is not None else settings.expires,
            query_key=query_key,
            query_names=sorted(self.declared_query or ()),
        )
        return _core.RouteCache(STATE.store, key_value, route_config)

    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = codec_for(self.func)
        return self._codec

    def _write_remote(
        self,
        key: str,
        frame: bytes,
        tags: tuple[str, ...],
        then: dict[str, Any],
        ttl: float | None = None,
    ) -> str | None:
        """Schedules the write of an entry to the backend: after the response, bounded in
        number, never delaying it; with two tiers it is announced to the other processes once
        written (``then`` runs first). ``ttl``: the entry's freshness lifetime when it is not
        the route's (:class:`~oxicache.CacheRequest`). None when scheduled; else why it was
        skipped, decided before any I/O (counted as ``remote.write_skipped.<why>``):
        ``backend-too-large`` (over the backend's ``max_item_size``), ``backend-down`` (the
        breaker is open) or ``backend-busy`` (too many writes in flight); ``no-backend``
        without one.

        A write that is scheduled may still fail later (a deadline, an error): that is
        counted by the guard, after the response has gone."""
        backend = remote.get_backend()
        if backend is None:
            return "no-backend"
        remote_ttl = self.remote_ttl
        if ttl is not None:  # the backend keeps it through the route's stale windows too
            o = self.options
            remote_ttl = ttl + max(o.stale_while_revalidate, o.stale_if_error)
        why = backend.write_later(
            key, frame, remote_ttl, tags, **coherence.with_announce(then, key)
        )
        if why is not None:
            _log.count(f"remote.write_skipped.{why}")
        return why

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


#: Parts of a header name that say it carries a credential (``X-API-Key``, ``X-Auth-Token``,
#: ``X-Session-Id``): a response keyed on one is ``private`` downstream.
_CREDENTIAL_PARTS = ("auth", "token", "key", "secret", "session", "cookie", "password", "sign")


def held(obj: object) -> object:
    """``obj`` held by a weak reference where its type allows one: a route holds its app, and
    an app built by a factory must be freed once dropped (see :func:`is_held`)."""
    try:
        return weakref.ref(obj)
    except TypeError:  # None, or a type without weak references
        return obj


def is_held(kept: object, obj: object) -> bool:
    """Whether ``kept`` (from :func:`held`) is ``obj`` (never, once a weakly held one is gone)."""
    if kept.__class__ is weakref.ref:
        return cast(weakref.ref[object], kept)() is obj
    return kept is obj


def serving_route(scope: Any) -> tuple[object, object]:
    """The route serving a request, and FastAPI's context of the inclusion it came through
    (``include_router`` may add dependencies: one route included twice is two of these)."""
    fastapi_scope = scope.get("fastapi")
    inclusion = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    return scope.get("route"), inclusion


def _dependant_inputs(dependant: Any, headers: set[str]) -> bool:
    """Adds to ``headers`` the request headers read by the endpoint and by the dependencies
    whose values reach it (``Header()`` parameters, lower-cased, under their alias); True if
    they read cookies. The route's own ``dependencies=[...]`` are left out: their values never
    reach the handler (they make the route ``private`` instead)."""
    cookies = False
    for d in _dependants(dependant, route_own=False):
        for field in getattr(d, "header_params", None) or ():
            name = _field_name(field)
            if name:
                headers.add(name.lower())
        cookies |= bool(getattr(d, "cookie_params", None))
    return cookies


def _dependants(dependant: Any, *, route_own: bool) -> Iterator[Any]:
    """The endpoint's FastAPI ``Dependant`` and those of its dependencies, each once; the
    route's own ``dependencies=[...]`` (they have no parameter name) only if ``route_own``."""
    stack, seen = [dependant], set()
    while stack:
        d = stack.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        yield d
        children = getattr(d, "dependencies", None) or ()
        stack.extend(
            c for c in children if route_own or d is not dependant or getattr(c, "name", None)
        )


def _field_name(field: Any) -> str:
    """The name FastAPI reads a parameter under: its alias, else its name."""
    name = getattr(field, "alias", None) or getattr(field, "name", "")
    return name if isinstance(name, str) else ""


def _declared_query(dependant: Any) -> set[str] | None:
    """The names of the query parameters FastAPI reads for a route: the endpoint's, those of
    every dependency (the route's own ``dependencies=[...]`` too), under their alias, and the
    fields of a query parameter model. None when an undeclared parameter can change what the
    route gets: a query model that forbids or keeps extra fields (FastAPI hands it every
    query parameter)."""
    names: set[str] = set()
    for d in _dependants(dependant, route_own=True):
        for field in getattr(d, "query_params", None) or ():
            info = getattr(field, "field_info", None)
            model = getattr(info, "annotation", None)
            if isinstance(model, type) and issubclass(model, BaseModel):
                if model.model_config.get("extra", "ignore") != "ignore":
                    return None
                by_name = model.model_config.get("populate_by_name") or model.model_config.get(
                    "validate_by_name"
                )
                for field_name, inner in model.model_fields.items():
                    names.add(inner.alias or field_name)
                    if by_name:
                        names.add(field_name)
                continue
            if _field_name(field):
                names.add(_field_name(field))
    return names


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

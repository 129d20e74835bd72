"""``@cache``: fastapi-cache2's decorator on :func:`oxicache.cache`.

``@cache(expire=60, namespace="items")`` under a route decorator caches the endpoint's
response; on a plain ``async def`` (or ``def``) function it memoizes the value, and the
decorated function is awaited as with fastapi-cache2 (a decorated ``def`` runs in a thread).
What differs from fastapi-cache2 is listed in :mod:`oxicache.compat.fastapi_cache`.

Settings given to ``FastAPICache.init`` after the decoration (the usual order: ``init`` runs
at startup) apply from the next call: each decorated function keeps one oxicache route per
combination of TTL, key builder and coder it has been called with.
"""

from __future__ import annotations

import functools
import inspect
import threading
import typing
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...backends import remote
from ...decorator import cache as _oxicache
from ...decorator.signature import _REQUEST, _RESPONSE
from ...invalidation.explicit import invalidate as _invalidate
from ...runtime import STATE
from . import FastAPICache
from .coder import Coder, JsonCoder
from .key_builder import default_key_builder
from .types import KeyBuilder

__all__ = ["cache"]

F = TypeVar("F", bound=Callable[..., Any])

#: Every function decorated here, for ``FastAPICache.clear(key=...)``.
_decorated: weakref.WeakSet[_Compat] = weakref.WeakSet()

_Variant = tuple[float | None, KeyBuilder | None, type[Coder] | None]


def cache(
    expire: int | None = None,
    coder: type[Coder] | None = None,
    key_builder: KeyBuilder | None = None,
    namespace: str = "",
    injected_dependency_namespace: str = "__fastapi_cache",
) -> Callable[[F], Callable[..., Awaitable[Any]]]:
    """Caches an endpoint's response, or memoizes a function, for ``expire`` seconds.

    Args:
        expire: TTL in seconds; default ``FastAPICache.init(expire=)``, else oxicache's
            default TTL (60 s).
        coder: how values of plain functions are stored (``JsonCoder``, the default, means
            oxicache's own codec). Endpoints store the rendered response and replay its
            bytes, so their coder is never called: a hit sends what the fresh render sent
            (fastapi-cache2 decoded the stored value and rendered it again).
        key_builder: ``key_builder(func, namespace, *, request, response, args, kwargs)``
            returning the entry's key string (sync or async); default
            ``FastAPICache.init(key_builder=)``; with :func:`default_key_builder` the key is
            oxicache's own.
        namespace: label for ``FastAPICache.clear(namespace=...)`` (and
            :func:`oxicache.invalidate`); empty means oxicache's default namespace.
        injected_dependency_namespace: the request and response parameters the decorator adds
            to an endpoint that has none are named ``<this>_request`` and ``<this>_response``,
            as in fastapi-cache2; a function with a parameter of either name is refused
            (choose another namespace).
    """
    if not isinstance(injected_dependency_namespace, str) or not (
        injected_dependency_namespace.isidentifier()
    ):
        raise ValueError(
            "injected_dependency_namespace must be a Python identifier (it prefixes the names "
            f"of injected parameters), got {injected_dependency_namespace!r}"
        )

    def decorate(func: F) -> Callable[..., Awaitable[Any]]:
        return _Compat(
            func, expire, coder, key_builder, namespace, injected_dependency_namespace
        ).dispatcher

    return decorate


async def clear_key(key: str) -> None:
    """``FastAPICache.clear(key=...)``: the memoized entry keyed ``key`` of every function
    with a key builder of its own, and every entry of such endpoints (see the module doc)."""
    backend = remote.get_backend()
    for compat in list(_decorated):
        for (_, builder, _), variant in list(compat.variants.items()):
            if builder is None:
                continue
            state = variant.__oxicache__  # type: ignore[attr-defined]
            rc = state.route_cache()
            entry = rc.call_key((key,))
            rc.remove(entry)
            remote_key = rc.remote_key_of(entry)
            if backend is not None and remote_key is not None:
                await backend.delete(remote_key)
            if compat.served_http:
                await _invalidate(route=variant)


def _return_type(func: Callable[..., Any]) -> Any:
    try:
        return typing.get_type_hints(func).get("return")
    except Exception:
        return None


class _CoderCodec:
    """oxicache's codec protocol on a fastapi-cache2 coder class."""

    def __init__(self, coder: type[Coder], type_: Any) -> None:
        self.coder = coder
        self.type_ = type_

    def dumps(self, value: Any) -> bytes:
        return self.coder.encode(value)

    def loads(self, data: bytes) -> Any:
        return self.coder.decode_as_type(data, type_=self.type_)


class _Compat:
    """One decorated function: its oxicache routes (one per settings combination) and the
    function handed back (the dispatcher)."""

    def __init__(
        self,
        func: Callable[..., Any],
        expire: int | None,
        coder: type[Coder] | None,
        key_builder: KeyBuilder | None,
        namespace: str,
        injected_namespace: str = "__fastapi_cache",
    ) -> None:
        self.func = func
        self.injected_namespace = injected_namespace
        self.expire = expire
        self.coder = coder
        self.key_builder = key_builder
        self.namespace = namespace
        self.is_async = inspect.iscoroutinefunction(func)
        self.return_type = _return_type(func)
        self.variants: dict[_Variant, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        #: Set once called as an endpoint (for ``clear(key=...)``).
        self.served_http = False
        base = self.variant((None, None, None))
        state = base.__oxicache__  # type: ignore[attr-defined]
        self.signature = inspect.signature(func)
        self.own_request: str | None = state.plan.request_param
        self.own_response: str | None = state.plan.response_param
        self.request_name = self.own_request or _REQUEST
        self.dispatcher = self._make_dispatcher(base)
        _decorated.add(self)

    # -- settings in force ---------------------------------------------------------------

    def current(self) -> _Variant:
        ttl = self.expire or FastAPICache.get_expire() or None
        builder = self.key_builder or FastAPICache._key_builder
        if builder is default_key_builder:
            builder = None
        coder = self.coder or FastAPICache._coder
        if coder is JsonCoder:
            coder = None
        return (float(ttl) if ttl else None, builder, coder)

    def variant(self, which: _Variant) -> Callable[..., Any]:
        found = self.variants.get(which)
        if found is not None:
            return found
        with self._lock:
            found = self.variants.get(which)
            if found is None:
                ttl, builder, coder = which
                found = _oxicache(
                    ttl=ttl,
                    namespace=self.namespace or None,
                    key_builder=self._adapter(builder) if builder is not None else None,
                    codec=_CoderCodec(coder, self.return_type) if coder is not None else None,
                )(self.func)
                self.variants[which] = found
        return found

    def _adapter(self, builder: KeyBuilder) -> Callable[[Request | None, dict[str, Any]], Any]:
        """oxicache's ``key_builder(request, arguments)`` calling fastapi-cache2's."""
        func = self.func
        ns = self.namespace

        def build(request: Request | None, arguments: dict[str, Any]) -> Any:
            namespace = f"{FastAPICache._prefix or ''}:{ns}"
            if request is None:  # a plain call: its arguments as passed (defaults applied)
                bound = inspect.BoundArguments(self.signature, arguments)
                return builder(
                    func,
                    namespace,
                    request=None,
                    response=None,
                    args=bound.args,
                    kwargs=bound.kwargs,
                )
            names = {self.own_request, self.own_response} - {None}
            response = arguments.get(self.own_response) if self.own_response else None
            return builder(
                func,
                namespace,
                request=request,
                response=response if isinstance(response, Response) else None,
                args=(),
                kwargs={k: v for k, v in arguments.items() if k not in names},
            )

        return build

    # -- the function handed back --------------------------------------------------------

    def _injected_names(self, injected: list[str]) -> dict[str, str]:
        """fastapi-cache2's names of the injected parameters -> oxicache's; a clash with one of
        the function's own parameters fails here, naming the fix."""
        ns = self.injected_namespace
        names = {_REQUEST: f"{ns}_request", _RESPONSE: f"{ns}_response"}
        renamed = {names[n]: n for n in injected}
        clash = sorted(set(renamed) & set(self.signature.parameters))
        if clash:
            raise ValueError(
                f"{self.func.__qualname__} has a parameter named {clash[0]!r}, the name the "
                "cache decorator gives its injected parameter: pass "
                "injected_dependency_namespace=... with another prefix"
            )
        return renamed

    def _make_dispatcher(self, base: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        request_name = self.request_name
        own = {n for n in (self.own_request, self.own_response) if n}
        injected = [n for n in (_REQUEST, _RESPONSE) if n not in own]
        renamed = self._injected_names(injected)

        async def dispatch(*args: Any, **kwargs: Any) -> Any:
            for theirs, ours in renamed.items():
                if theirs in kwargs:
                    kwargs[ours] = kwargs.pop(theirs)
            under_http = isinstance(kwargs.get(request_name), Request)
            if not FastAPICache._enable:
                for name in injected:
                    kwargs.pop(name, None)
                return await self.call(args, kwargs)
            variant = self.variant(self.current())
            if under_http:
                self.served_http = True
                result = variant(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return _unlabelled(result)
            if self.is_async:
                return await variant(*args, **kwargs)
            return await run_in_threadpool(variant, *args, **kwargs)

        functools.update_wrapper(dispatch, self.func)
        signature = base.__signature__  # type: ignore[attr-defined]
        ours = {v: k for k, v in renamed.items()}
        dispatch.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[
                p.replace(name=ours.get(p.name, p.name)) for p in signature.parameters.values()
            ]
        )
        dispatch.__oxicache__ = base.__oxicache__  # type: ignore[attr-defined]
        return dispatch

    async def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.is_async:
            return await self.func(*args, **kwargs)
        return await run_in_threadpool(self.func, *args, **kwargs)


def _unlabelled(response: Any) -> Any:
    """fastapi-cache2's header is ``HIT`` or ``MISS``, absent when the cache was not used:
    oxicache's ``BYPASS`` label is dropped from it (``Cache-Status`` keeps the reason)."""
    if not isinstance(response, Response):
        return response
    name = STATE.settings.header_name.lower().encode("latin-1")
    raw = response.raw_headers
    if any(v == b"BYPASS" and k.lower() == name for k, v in raw):
        raw[:] = [(k, v) for k, v in raw if not (v == b"BYPASS" and k.lower() == name)]
    return response

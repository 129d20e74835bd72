"""``@cache(expire=..., tag=...)`` and its presets, on :func:`oxicache.cache`.

Under a route decorator the endpoint's response is cached; on a plain function (sync or
async) its value is memoized, and the decorated function is awaited, as before. The
``X-FastAPI-Cache`` header (or ``init(response_header=)``) says ``Hit`` or ``Miss``; responses
carry ``Cache-Control: max-age``, ``Expires`` and ``ETag``. What differs from
fastapi-redis-cache is listed in :mod:`oxicache.compat.fastapi_redis_cache`.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ...bypassing import bypass
from ...decorator import cache as _oxicache
from ...decorator.signature import _REQUEST, _RESPONSE
from ...exceptions import ConfigError
from ...runtime import STATE
from .client import FastApiRedisCache
from .util import (
    ONE_DAY_IN_SECONDS,
    ONE_HOUR_IN_SECONDS,
    ONE_MONTH_IN_SECONDS,
    ONE_WEEK_IN_SECONDS,
    ONE_YEAR_IN_SECONDS,
)

__all__ = [
    "cache",
    "cache_one_day",
    "cache_one_hour",
    "cache_one_minute",
    "cache_one_month",
    "cache_one_week",
    "cache_one_year",
    "calculate_ttl",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The label values: oxicache's, as fastapi-redis-cache spells them (STALE answers from
#: the entry, as a hit does; BYPASS means the cache was not used: no header, as before).
_LABELS = {b"HIT": b"Hit", b"STALE": b"Hit", b"MISS": b"Miss"}


def calculate_ttl(expire: int | timedelta) -> int:
    """Seconds of ``expire`` (an int or a ``timedelta``), at most one year."""
    if isinstance(expire, timedelta):
        expire = int(expire.total_seconds())
    if isinstance(expire, bool) or not isinstance(expire, int) or expire <= 0:
        raise ConfigError(
            f"expire must be a positive number of seconds or a timedelta, got {expire!r}"
        )
    return min(expire, ONE_YEAR_IN_SECONDS)


def cache(
    *, expire: int | timedelta = ONE_YEAR_IN_SECONDS, tag: str | None = None
) -> Callable[[F], Callable[..., Awaitable[Any]]]:
    """Caches an endpoint's response (or memoizes a function) for ``expire`` seconds.

    Args:
        expire: seconds or a ``timedelta``, at most (and by default) one year.
        tag: the entries' group: ``oxicache.invalidate(namespace=tag)`` drops them all.
    """
    ttl = calculate_ttl(expire)
    if tag is not None and (not isinstance(tag, str) or not tag):
        raise ConfigError(f"tag must be a non-empty string, got {tag!r}")

    def decorate(func: F) -> Callable[..., Awaitable[Any]]:
        return _Cached(func, ttl, tag).dispatcher

    return decorate


def _preset(seconds: int) -> Callable[..., Callable[[F], Callable[..., Awaitable[Any]]]]:
    def preset(
        *, expire: int | timedelta = seconds, tag: str | None = None
    ) -> Callable[[F], Callable[..., Awaitable[Any]]]:
        return cache(expire=expire, tag=tag)

    return preset


cache_one_minute = _preset(60)
cache_one_hour = _preset(ONE_HOUR_IN_SECONDS)
cache_one_day = _preset(ONE_DAY_IN_SECONDS)
cache_one_week = _preset(ONE_WEEK_IN_SECONDS)
cache_one_month = _preset(ONE_MONTH_IN_SECONDS)
cache_one_year = _preset(ONE_YEAR_IN_SECONDS)


class _Cached:
    """One decorated function: an oxicache route per set of ignored parameters (the types
    ``init(ignore_arg_types=)`` names, known only once ``init`` ran), and the dispatcher
    FastAPI or the caller gets."""

    def __init__(self, func: Callable[..., Any], ttl: int, tag: str | None) -> None:
        self.func = func
        self.ttl = ttl
        self.tag = tag
        self.is_async = inspect.iscoroutinefunction(func)
        self.variants: dict[tuple[str, ...], Callable[..., Any]] = {}
        self._lock = threading.Lock()
        try:
            self.signature = inspect.signature(func, eval_str=True)
        except Exception:  # an annotation that does not resolve: compared as written
            self.signature = inspect.signature(func)
        base = self.variant(())
        plan = base.__oxicache__.plan  # type: ignore[attr-defined]
        self.request_name: str = plan.request_param or _REQUEST
        own = {n for n in (plan.request_param, plan.response_param) if n}
        self.injected = [n for n in (_REQUEST, _RESPONSE) if n not in own]
        self.dispatcher = self._dispatcher(base)

    def ignored(self, types: list[type[Any]]) -> tuple[str, ...]:
        """The parameters annotated with one of ``types`` (left out of the key)."""
        if not types:
            return ()
        return tuple(name for name, p in self.signature.parameters.items() if p.annotation in types)

    def variant(self, ignored: tuple[str, ...]) -> Callable[..., Any]:
        found = self.variants.get(ignored)
        if found is None:
            with self._lock:
                found = self.variants.get(ignored)
                if found is None:
                    found = _oxicache(
                        ttl=self.ttl, namespace=self.tag, ignore_args=ignored, expires=True
                    )(self.func)
                    self.variants[ignored] = found
        return found

    def _dispatcher(self, base: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def dispatch(*args: Any, **kwargs: Any) -> Any:
            client = FastApiRedisCache()
            if client.not_connected:  # before init(): uncached, as before
                for name in self.injected:
                    kwargs.pop(name, None)
                return await self.call(args, kwargs)
            variant = self.variant(self.ignored(client.ignore_arg_types))
            request = kwargs.get(self.request_name)
            if isinstance(request, Request):
                if _refuses_cache(request):
                    bypass(request, "request-directive")
                result = variant(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return _relabelled(result, client.response_header)
            if self.is_async:
                return await variant(*args, **kwargs)
            return variant(*args, **kwargs)

        functools.update_wrapper(dispatch, self.func)
        dispatch.__signature__ = base.__signature__  # type: ignore[attr-defined]
        dispatch.__oxicache__ = base.__oxicache__  # type: ignore[attr-defined]
        return dispatch

    async def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.is_async:
            return await self.func(*args, **kwargs)
        return self.func(*args, **kwargs)


def _refuses_cache(request: Request) -> bool:
    """fastapi-redis-cache answered a request whose ``Cache-Control`` holds ``no-cache`` or
    ``no-store`` without the cache (RFC 9111 §5.2.1.4, §5.2.1.5 allow no less)."""
    directives = request.headers.get("cache-control", "").lower()
    return "no-cache" in directives or "no-store" in directives


def _relabelled(response: Any, header: str) -> Any:
    """oxicache's ``X-Cache: HIT|MISS`` as ``<header>: Hit|Miss``; no header on a bypass."""
    if not isinstance(response, Response):
        return response
    own = STATE.settings.header_name.lower().encode("latin-1")
    name = header.lower().encode("latin-1")
    raw = []
    for key, value in response.raw_headers:
        if key.lower() == own:
            label = _LABELS.get(value)
            if label is not None:
                raw.append((name, label))
            continue
        raw.append((key, value))
    response.raw_headers = raw
    return response

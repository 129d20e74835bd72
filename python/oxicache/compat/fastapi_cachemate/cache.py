"""``@cache_response(ttl=...)``, the ``is_bypass`` flag and the ``X-Cache-Status`` values.

Put it under the route decorator::

    @app.get("/blogs/{blog_id}")
    @cache_response(ttl=300)
    async def get_blog(blog_id: int) -> dict[str, int]: ...

What differs from fastapi-cachemate is listed in :mod:`oxicache.compat.fastapi_cachemate`.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from enum import Enum
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ...bypassing import bypass
from ...decorator import cache as _oxicache
from ...decorator.signature import _REQUEST
from ...exceptions import ConfigError
from ...runtime import STATE
from . import CacheSetup

__all__ = ["CacheStatuses", "cache_response", "is_bypass"]

F = TypeVar("F", bound=Callable[..., Any])

#: Set it to True in a dependency (and reset it after ``yield``) to answer that request
#: without the cache, labelled ``BYPASS``.
is_bypass: ContextVar[bool] = ContextVar("is_bypass", default=False)

HEADER = "X-Cache-Status"


class CacheStatuses(str, Enum):  # noqa: UP042 (as before: str() of a member is its name)
    CACHE_HIT = "HIT"
    CACHE_MISS = "MISS"
    CACHE_BYPASS = "BYPASS"
    CACHE_NOT = "NO_CACHE"


#: The reason of a request whose ``Cache-Control`` refuses caches (RFC 9111 §5.2.1.4,
#: §5.2.1.5): fastapi-cachemate answered it uncached, labelled ``NO_CACHE``.
_REFUSED = "request-directive"
#: oxicache's bypass reasons that fastapi-cachemate called ``NO_CACHE`` (the cache is not for
#: that request), and the rest ``BYPASS``.
_NO_CACHE_DETAILS = (f"detail={_REFUSED}".encode(), b"detail=method")


def cache_response(ttl: int = 60) -> Callable[[F], Callable[..., Awaitable[Any]]]:
    """Caches the endpoint's response for ``ttl`` seconds."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise ConfigError(f"cache_response(ttl={ttl!r}): give a positive number of seconds")

    def decorate(func: F) -> Callable[..., Awaitable[Any]]:
        return _Cached(func, float(ttl)).dispatcher

    return decorate


def refresh_window(ttl: float) -> float:
    """The refresh window of a route (``buffer`` of its TTL, at most
    ``max_planing_execution_time``, less than the TTL); 0 before ``setup``."""
    if not CacheSetup.is_set_up():
        return 0.0
    settings = CacheSetup.settings()
    window = min(settings.buffer * ttl, settings.max_planing_execution_time / 1000)
    return window if window < ttl else ttl / 2


class _Cached:
    """One decorated endpoint: an oxicache route per refresh window (the ``buffer`` setting,
    known once ``setup`` ran), and the dispatcher FastAPI gets."""

    def __init__(self, func: Callable[..., Any], ttl: float) -> None:
        self.func = func
        self.ttl = ttl
        self.variants: dict[float, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        base = self.variant(0.0)
        self.request_name: str = base.__oxicache__.plan.request_param or _REQUEST  # type: ignore[attr-defined]
        self.dispatcher = self._dispatcher(base)

    def variant(self, window: float) -> Callable[..., Any]:
        found = self.variants.get(window)
        if found is None:
            with self._lock:
                found = self.variants.get(window)
                if found is None:
                    found = _oxicache(ttl=self.ttl, query_key="declared", refresh_ahead=window)(
                        self.func
                    )
                    self.variants[window] = found
        return found

    def _dispatcher(self, base: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def dispatch(*args: Any, **kwargs: Any) -> Any:
            request = kwargs.get(self.request_name)
            variant = self.variant(refresh_window(self.ttl))
            if isinstance(request, Request):
                if is_bypass.get():
                    bypass(request, "requested")
                elif _refuses_cache(request):
                    bypass(request, _REFUSED)
            result = variant(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return _relabelled(result)

        functools.update_wrapper(dispatch, self.func)
        dispatch.__signature__ = base.__signature__  # type: ignore[attr-defined]
        dispatch.__oxicache__ = base.__oxicache__  # type: ignore[attr-defined]
        return dispatch


def _refuses_cache(request: Request) -> bool:
    directives = request.headers.get("cache-control", "").lower()
    return "no-cache" in directives or "no-store" in directives


def _relabelled(response: Any) -> Any:
    """oxicache's ``X-Cache`` label as ``X-Cache-Status`` (``Cache-Status`` is kept)."""
    if not isinstance(response, Response):
        return response
    own = STATE.settings.header_name.lower().encode("latin-1")
    status = next((v for k, v in response.raw_headers if k == b"cache-status"), b"")
    raw = []
    for key, value in response.raw_headers:
        if key.lower() != own:
            raw.append((key, value))
            continue
        if value == b"BYPASS":
            refused = any(d in status for d in _NO_CACHE_DETAILS)
            label = CacheStatuses.CACHE_NOT if refused else CacheStatuses.CACHE_BYPASS
        elif value == b"MISS":
            label = CacheStatuses.CACHE_MISS
        else:  # HIT, or STALE (answered from the entry)
            label = CacheStatuses.CACHE_HIT
        raw.append((b"x-cache-status", label.value.encode()))
    response.raw_headers = raw
    return response

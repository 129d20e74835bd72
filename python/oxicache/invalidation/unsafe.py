"""``@invalidates``: RFC 9111 §4.4 for apps that cache with ``@cache`` only.

A successful POST, PUT, PATCH or DELETE to a URI makes the stored answers for that URI stale.
``CacheMiddleware`` does this by itself; without it, the routes that change a resource say so::

    @app.put("/items/{item_id}")
    @invalidates()
    async def update(item_id: int, item: Item) -> Item: ...

After a 2xx or 3xx answer, every entry stored for the request's path (any query, any route)
is dropped, and so are those of a ``Location`` or ``Content-Location`` on the same origin.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import _log
from ..keys import plan_arguments
from . import explicit as invalidation

__all__ = ["invalidates"]

F = TypeVar("F", bound=Callable[..., Any])

_REQUEST = "oxicache_unsafe_request__"


def invalidates() -> Callable[[F], F]:
    """Marks a route that changes the resource at its URI (place it under the route
    decorator): after a successful answer, the cached entries for that URI are dropped."""

    def decorate(func: F) -> F:
        own = plan_arguments(func).request_param
        is_async = inspect.iscoroutinefunction(func)

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = kwargs.pop(_REQUEST, None) if own is None else kwargs.get(own)
            if is_async:
                result = await func(*args, **kwargs)
            else:
                result = await run_in_threadpool(func, *args, **kwargs)
            if isinstance(request, Request):
                await _after(request, result)
            return result

        signature = inspect.signature(func)
        params = list(signature.parameters.values())
        if own is None:
            extra = inspect.Parameter(
                _REQUEST, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Request
            )
            at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
            params.insert(at, extra)
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


async def _after(request: Request, result: Any) -> None:
    """Drops the entries of the request's path and its same-origin Location fields when the
    answer is a success (RFC 9111 §4.4: "a non-error status code"): in memory, on the remote
    backend and in other processes' local tiers, as :func:`oxicache.invalidate` does."""
    route = request.scope.get("route")
    status = getattr(route, "status_code", None) or 200
    headers: dict[str, str] = {}
    if isinstance(result, Response):
        status = result.status_code
        headers = {k.lower(): v for k, v in result.headers.items()}
    if not 200 <= status < 400:
        return
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    paths = {bytes(raw_path)}
    host = request.headers.get("host", "").lower()
    for name in ("location", "content-location"):
        value = headers.get(name)
        if not value:
            continue
        target = urlsplit(value)
        if target.netloc and target.netloc.lower() != host:
            continue  # another origin: not ours to invalidate (§4.4)
        if target.path.startswith("/"):
            paths.add(target.path.encode())
    for path in paths:
        await invalidation.invalidate(path=path)
    _log.count("invalidated.unsafe")

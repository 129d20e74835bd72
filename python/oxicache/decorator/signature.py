"""What FastAPI sees of a decorated function: a wrapper with the same signature plus the
``Request`` and ``Response`` it hands the cache, sync or async as the function was."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from .cached import _Cached

# Names of the parameters the wrapper adds so FastAPI hands it the request and the response
# it will merge into the reply. Chosen so they cannot clash with a real parameter.
_REQUEST = "oxicache_request__"
_RESPONSE = "oxicache_response__"


# -- the wrapper --------------------------------------------------------------------


def make_wrapper(self: _Cached) -> Callable[..., Any]:
    """The function FastAPI (or a caller) gets in place of ``self.func``."""
    plan = self.plan
    request_name = plan.request_param or _REQUEST
    response_name = plan.response_param
    injects_request = plan.request_param is None
    injects_response = plan.response_param is None

    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        # FastAPI passes keywords: the request and the sub-response are taken out of them
        # here, and a hit is replayed here too, so that a hit runs in this one frame.
        request = kwargs.pop(_REQUEST, None) if injects_request else kwargs.get(request_name)
        if injects_response:
            sub = kwargs.pop(_RESPONSE, None)
        else:
            sub = kwargs.get(cast(str, response_name))
        if not isinstance(request, Request):  # a plain call (only an async function's)
            return await self.memoized_async(args, kwargs)
        if sub is not None and not isinstance(sub, Response):
            sub = None
        result = self.lookup(request, kwargs)
        if result.__class__ is tuple:  # a _core.Hit, which is the reply tuple
            return self.replay(result, sub)
        return await self.serve_looked_up(request, sub, kwargs, result)

    if self.is_async:
        wrapper: Callable[..., Any] = async_wrapper
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            request = kwargs.get(_REQUEST) if injects_request else kwargs.get(request_name)
            if not isinstance(request, Request):  # a plain call: memoized, on this thread
                if injects_request:
                    kwargs.pop(_REQUEST, None)
                if injects_response:
                    kwargs.pop(_RESPONSE, None)
                return self.memoized_sync(args, kwargs)
            # Under FastAPI: return a coroutine, so hits are answered on the event loop
            # and only the handler itself goes to the threadpool.
            return async_wrapper(*args, **kwargs)

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


def _mark_coroutine_function(func: Callable[..., Awaitable[Any] | Any]) -> None:
    """Makes FastAPI await the sync wrapper's result (a coroutine) instead of threading it."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:  # Python 3.12+
        mark(func)
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    if marker is not None:  # what asyncio.iscoroutinefunction checks on 3.11 and 3.12
        func._is_coroutine = marker  # type: ignore[attr-defined]

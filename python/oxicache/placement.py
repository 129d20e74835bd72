"""``@cache`` must sit *under* the route decorator; this module notices when it does not.

A route decorator (``@app.get``, ``@router.get``, ``app.add_api_route``) registers the function
it is given and returns it unchanged. With ``@cache`` above it, the router has already kept the
undecorated function: every request runs the handler, and nothing says so. That mistake is
caught twice:

- at decoration time, among the routers the decorating code can see (its module's globals and
  the enclosing function's locals: ``app = FastAPI()``, ``router = APIRouter()``);
- at startup, by :func:`oxicache.lifespan`, over every route of the app, for routers defined
  elsewhere.

Both raise :class:`~oxicache.ConfigError` naming the function and the fix.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

from .exceptions import ConfigError
from .integrations import openapi
from .runtime import STATE

__all__ = ["check_app", "refuse_registered", "routes_of", "visible"]

#: Every function ``@cache`` wrapped: one of them found as a route's endpoint was registered
#: undecorated.


def _routers(values: Any) -> Iterator[Any]:
    from starlette.applications import Starlette
    from starlette.routing import Router

    for value in values:
        if isinstance(value, Starlette):
            yield value.router
        elif isinstance(value, Router):
            yield value


def _routes(routers: Iterator[Any]) -> Iterator[Any]:
    """Every route of ``routers``, through included routers (FastAPI keeps the router given
    to ``include_router`` as ``original_router``) and mounts (``Mount.routes``)."""
    seen: set[int] = set()
    stack = list(routers)
    while stack:
        router = stack.pop()
        if id(router) in seen:
            continue
        seen.add(id(router))
        for route in list(getattr(router, "routes", None) or ()):
            yield route
            included = getattr(route, "original_router", None)
            if included is not None:
                stack.append(included)
            elif getattr(route, "routes", None):
                stack.append(route)


def routes_of(app: Any) -> list[Any]:
    """Every route of a Starlette/FastAPI app or router, through included routers and mounts
    (empty for anything else)."""
    return list(_routes(_routers([app])))


def _registered_paths(func: Callable[..., Any], routers: Iterator[Any]) -> list[str]:
    return [
        str(getattr(route, "path", "?"))
        for route in _routes(routers)
        if getattr(route, "endpoint", None) is func
    ]


def _message(func: Callable[..., Any], paths: list[str]) -> str:
    name = getattr(func, "__qualname__", repr(func))
    return (
        f"@cache is above the route decorator of {name!r} (route {', '.join(paths)}): the"
        " router registered the function before @cache wrapped it, so nothing would be"
        " cached. Put @cache under the route decorator:\n"
        '    @app.get("/path")\n'
        "    @cache(ttl=60)\n"
        f"    async def {getattr(func, '__name__', 'handler')}(...): ..."
    )


def visible(frame: types.FrameType) -> list[Any]:
    """The values the code running in ``frame`` can see by name: its module's globals and,
    in a function, its locals."""
    scopes = [frame.f_globals]
    if frame.f_locals is not frame.f_globals:
        scopes.append(frame.f_locals)
    return [v for scope in scopes for v in list(scope.values())]


def refuse_registered(func: Callable[..., Any], frame: types.FrameType | None) -> None:
    """Raises :class:`ConfigError` when ``func`` is already the endpoint of a route of a router
    visible from ``frame`` (the code applying ``@cache``); else remembers it for
    :func:`check_app`."""
    try:
        if frame is not None and "starlette.routing" in sys.modules:
            values = visible(frame)
            paths = _registered_paths(func, _routers(values))
            if paths:
                raise ConfigError(_message(func, paths))
            # The apps in sight document their cached routes in their OpenAPI schema.
            openapi.install_on(values)
    finally:
        del frame
    with contextlib.suppress(TypeError):  # not weak-referenceable (some callables)
        STATE.wrapped.add(func)


def check_app(app: Any) -> None:
    """Raises :class:`ConfigError` when a route of ``app`` has as its endpoint a function that
    ``@cache`` wrapped after the route was registered."""
    for route in _routes(_routers([app])):
        endpoint = getattr(route, "endpoint", None)
        try:
            late = endpoint is not None and endpoint in STATE.wrapped
        except TypeError:
            late = False
        if late:
            assert endpoint is not None
            raise ConfigError(_message(endpoint, [str(getattr(route, "path", "?"))]))

"""Invalidation: one memoized call, a route, a namespace, a path, or everything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import config
from .exceptions import ConfigError

__all__ = ["clear", "invalidate"]


def _cached_of(func: Callable[..., Any]) -> Any:
    state = getattr(func, "__oxicache__", None)
    if state is None:
        raise ConfigError(f"{func!r} is not decorated with @cache")
    return state


async def invalidate(
    func: Callable[..., Any] | None = None,
    /,
    *args: Any,
    namespace: str | None = None,
    route: Callable[..., Any] | str | None = None,
    path: str | bytes | None = None,
    **kwargs: Any,
) -> None:
    """Drops cached entries.

    - ``invalidate(fn, *args, **kwargs)``: the memoized result of that one call of ``fn``;
    - ``invalidate(route=endpoint)``: every entry of a decorated endpoint or function;
    - ``invalidate(namespace="users")``: every entry of a namespace;
    - ``invalidate(path="/items/1")``: every entry stored for that raw request path;

    ``namespace``, ``route`` and ``path`` combine (all must match).
    """
    if func is not None:
        state = _cached_of(func)
        arguments = state.call_arguments(args, kwargs)
        values = await state.key_values(None, arguments)
        state.route_cache().remove(state.route_cache().call_key(values))
        return
    if args or kwargs:
        raise ConfigError("call arguments need the function: invalidate(fn, *args, **kwargs)")
    route_label = route if isinstance(route, str) or route is None else _cached_of(route).label
    raw_path = path.encode("utf-8") if isinstance(path, str) else path
    if namespace is None and route_label is None and raw_path is None:
        raise ConfigError(
            "say what to invalidate (a function call, route, namespace or path), or use clear()"
        )
    config.get_store().invalidate(namespace=namespace, route=route_label, path=raw_path)


async def clear() -> None:
    """Drops every entry of the in-memory store."""
    config.get_store().clear()

"""Invalidation: one memoized call, a route, a namespace, a path, or everything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _core
from ..backends import remote
from ..cache_request import BACKEND_TAG_PREFIX, check_tag
from ..coordination import coherence
from ..exceptions import ConfigError
from ..runtime import STATE

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
    tag: str | None = None,
    **kwargs: Any,
) -> None:
    """Drops cached entries.

    - ``invalidate(fn, *args, **kwargs)``: the memoized result of that one call of ``fn``;
    - ``invalidate(route=endpoint)``: every entry of a decorated endpoint or function;
    - ``invalidate(namespace="users")``: every entry of a namespace;
    - ``invalidate(path="/items/1")``: every entry stored for that raw request path;
    - ``invalidate(tag="user:42")``: every entry a request tagged so
      (:meth:`oxicache.CacheRequest.tag`);

    ``namespace``, ``route``, ``path`` and ``tag`` combine (all must match) in memory. With a
    remote backend the same entries are dropped there too: by key prefix for a namespace or
    route (SCAN on Redis, generation counters on Memcached) and by tag for a path or a tag; a
    combination is applied as its narrowest part (the tag, else the path, else the route),
    which may drop a little more than asked in the backend, never less. A backend that is
    down makes this return after its deadline with the entries left to expire (logged; see
    :mod:`oxicache.backends.guard`).
    On Redis, the other processes' in-memory copies (two tiers) are then dropped by a pub/sub
    message (:mod:`oxicache.coordination.coherence`).
    """
    if func is not None:
        state = _cached_of(func)
        arguments = state.call_arguments(args, kwargs)
        values = await state.key_values(None, arguments)
        rc = state.route_cache()
        key = rc.call_key(values)
        rc.remove(key)
        remote_key = rc.remote_key_of(key)
        backend = remote.get_backend()
        if remote_key is not None and backend is not None:
            await backend.delete(remote_key)
            await coherence.publish("k", remote_key)
        return
    if args or kwargs:
        raise ConfigError("call arguments need the function: invalidate(fn, *args, **kwargs)")
    route_label = route if isinstance(route, str) or route is None else _cached_of(route).label
    raw_path = path.encode("utf-8") if isinstance(path, str) else path
    if tag is not None:
        check_tag(tag)
    if namespace is None and route_label is None and raw_path is None and tag is None:
        raise ConfigError(
            "say what to invalidate (a function call, route, namespace, path or tag),"
            " or use clear()"
        )
    STATE.store.invalidate(namespace=namespace, route=route_label, path=raw_path, tag=tag)
    backend = remote.get_backend()
    if backend is None:
        return
    prefix = STATE.settings.prefix
    # Then, other processes' local tiers (two tiers): a message once the backend has deleted.
    if tag is not None:
        await backend.delete_tag(BACKEND_TAG_PREFIX + tag)
        await coherence.publish("t", BACKEND_TAG_PREFIX + tag)
    elif raw_path is not None:
        tag = _core.path_tag_of(raw_path)
        await backend.delete_tag(tag)
        await coherence.publish("t", tag)
    elif route_label is not None:
        ns = namespace
        if ns is None and route is not None and not isinstance(route, str):
            ns = _cached_of(route).route_cache().namespace
        if ns is None:
            ns = STATE.settings.namespace
        await backend.delete_prefix(f"{prefix}:{ns}:{route_label}:")
        await coherence.publish("p", f"{prefix}:{ns}:{route_label}:")
    elif namespace is not None:
        await backend.delete_prefix(f"{prefix}:{namespace}:")
        await coherence.publish("p", f"{prefix}:{namespace}:")


async def clear() -> None:
    """Drops every entry: the in-memory store's, and the remote backend's under this app's
    prefix."""
    STATE.store.clear()
    backend = remote.get_backend()
    if backend is not None:
        await backend.clear()
        await coherence.publish("c")

"""fastapi-cachex's invalidation calls on oxicache's labels (path, route).

fastapi-cachex keys an entry ``http:v2|method|host|path|query`` and clears by key: one key
(``invalidate``), a path (``clear_path``) or a glob over whole keys (``clear_pattern``).
oxicache keys are digests; it drops entries by raw request path (a tag in remote backends),
by route or by namespace, always across every query string and ``Vary`` variant. So:

- ``invalidate(request)`` and ``clear_path(path)`` drop every entry of the path, whatever its
  query (``include_params=False`` is broadened: dropping more is safe, a stale variant left
  behind is not);
- ``clear_pattern(pattern)`` reads the path out of an ``http:v2|...`` pattern: a literal path
  is dropped as above; a glob is matched against the paths this process has served through
  compat routes (the last ``SEEN_PATHS`` of them), and when older paths were forgotten every
  compat route is dropped whole; a pattern that names no path (``"*"``, ``"http:v2|*"``) drops
  every compat route; a pattern of another key format (a custom ``key_builder``'s) drops the
  routes that use a custom ``key_builder``.

The counts returned are entries dropped from the in-process store; with a remote backend the
remote entries are dropped too (by tag or prefix) but not counted.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from fnmatch import fnmatchcase
from typing import Any

from starlette.requests import Request

from ...backends import remote
from ...invalidation import explicit as invalidation
from ...runtime import STATE

__all__ = ["clear_all", "clear_path", "clear_pattern", "invalidate"]

#: How many distinct request paths ``clear_pattern`` remembers.
SEEN_PATHS = 10_000

_FORMAT_TAG = "http:v2"
_GLOB = frozenset("*?[")

_lock = threading.Lock()
_seen: OrderedDict[str, None] = OrderedDict()
_forgot = False
#: The compat routes' wrappers (weakly: a test's app and its routes may go away).
_routes: weakref.WeakSet[Any] = weakref.WeakSet()
_custom_key_routes: weakref.WeakSet[Any] = weakref.WeakSet()


def register(wrapper: Any, *, custom_key: bool) -> None:
    _routes.add(wrapper)
    if custom_key:
        _custom_key_routes.add(wrapper)


def saw(path: str) -> None:
    """Records a path a compat route answered (bounded, most recent kept)."""
    global _forgot
    with _lock:
        if path in _seen:
            _seen.move_to_end(path)
            return
        _seen[path] = None
        if len(_seen) > SEEN_PATHS:
            _seen.popitem(last=False)
            _forgot = True


def _size() -> int:
    store = STATE.store
    store.run_pending_tasks()
    return len(store)


async def clear_all() -> None:
    await invalidation.clear()


async def _drop_paths(paths: list[str]) -> int:
    before = _size()
    for path in paths:
        await invalidation.invalidate(path=path)
    return before - _size()


async def _drop_routes(routes: list[Any]) -> int:
    before = _size()
    for route in routes:
        await invalidation.invalidate(route=route)
    return before - _size()


async def clear_path(path: str, include_params: bool = False) -> int:
    """Drops the entries stored for ``path`` (all its query strings and variants, even
    with ``include_params=False``); returns how many the in-process store held."""
    return await _drop_paths([path])


async def invalidate(
    request: Request,
    key_builder: Any = None,
    vary: Any = None,
    *,
    sort_query: bool | None = None,
) -> bool:
    """Drops the entries of ``request``'s path (every query and variant, not the one key
    fastapi-cachex would build). True when an entry was dropped from the in-process store,
    or a remote backend was asked to drop them (it does not say whether one was there)."""
    dropped = await _drop_paths([request.url.path])
    return dropped > 0 or remote.get_backend() is not None


def _unescape(text: str) -> str:
    out, escaped = [], False
    for ch in text:
        if escaped or ch != "\\":
            out.append(ch)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _is_glob(text: str) -> bool:
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in _GLOB:
            return True
    return False


async def clear_pattern(pattern: str) -> int:
    """Drops the entries whose fastapi-cachex key would match ``pattern`` (see the module
    docstring for how it maps; it may drop more than asked, never less)."""
    parts = pattern.split("|")
    if not fnmatchcase(_FORMAT_TAG, parts[0]):
        # Another key format: only routes with a custom key_builder make such keys.
        return await _drop_routes(list(_custom_key_routes))
    if len(parts) < 4:
        return await _drop_routes(list(_routes))
    path_pattern = parts[3]
    if not _is_glob(path_pattern):
        return await _drop_paths([_unescape(path_pattern)])
    with _lock:
        paths = [p for p in _seen if fnmatchcase(p, path_pattern)]
        forgot = _forgot
    if forgot:
        return await _drop_routes(list(_routes))
    return await _drop_paths(paths)

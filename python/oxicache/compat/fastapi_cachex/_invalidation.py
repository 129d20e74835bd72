"""fastapi-cachex's invalidation calls on oxicache's labels (path, route).

fastapi-cachex keys an entry ``http:v2|method|host|path|query`` and clears by key: one key
(``invalidate``), a path (``clear_path``) or a glob over whole keys (``clear_pattern``; its
earlier docs also show bare path globs, ``"/path/to/clear/*"``, ``"*/users/*"``). oxicache
keys are digests; it drops entries by raw request path (a tag in remote backends), by route
or by namespace, always across every query string and ``Vary`` variant. So:

- ``invalidate(request)`` and ``clear_path(path)`` drop every entry of the path, whatever its
  query (``include_params=False`` is broadened: dropping more is safe, a stale variant left
  behind is not);
- ``clear_pattern(pattern)`` is matched against the fastapi-cachex key of every request this
  process answered through a compat route (the last ``SEEN_KEYS`` of them: the default
  key, or the ``key_builder``'s), and a pattern without ``|`` also against their paths; the
  paths of the keys that match are dropped. A literal path in the pattern is dropped even
  if this process never served it. When this process cannot know every key that may match,
  every compat route is dropped whole: after it forgot older keys, or when a remote backend
  holds entries that other processes stored.

The counts returned are the entries dropped from this process's stores; with a remote
backend the remote entries are dropped too (by tag or prefix) but not counted.
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
from . import _records
from .backends._local import HTTP, BoundedEngine

__all__ = ["clear_all", "clear_path", "clear_pattern", "invalidate"]

#: How many distinct keys ``clear_pattern`` remembers.
SEEN_KEYS = 10_000

_FORMAT_TAG = "http:v2"
_GLOB = frozenset("*?[")

_lock = threading.Lock()
_seen: OrderedDict[str, str] = OrderedDict()
_forgot = False
#: The compat routes' wrappers (weakly: a test's app and its routes may go away).
_routes: weakref.WeakSet[Any] = weakref.WeakSet()
_custom_key_routes: weakref.WeakSet[Any] = weakref.WeakSet()


def register(wrapper: Any, *, custom_key: bool) -> None:
    _routes.add(wrapper)
    if custom_key:
        _custom_key_routes.add(wrapper)


def saw(key: str, path: str) -> None:
    """Records the fastapi-cachex key of a request a compat route answered, and its path
    (bounded, most recent kept)."""
    global _forgot
    with _lock:
        if key in _seen:
            _seen.move_to_end(key)
            return
        _seen[key] = path
        if len(_seen) > SEEN_KEYS:
            _seen.popitem(last=False)
            _forgot = True


def _size() -> int:
    """How many route entries this process's store holds: a bounded ``MemoryBackend``'s,
    else oxicache's in-process store's."""
    engine = remote.current_spec()
    if isinstance(engine, BoundedEngine):
        return engine.entries.count(HTTP)
    store = STATE.store
    store.run_pending_tasks()
    return len(store)


async def clear_all() -> None:
    global _forgot
    await invalidation.clear()
    with _lock:
        _seen.clear()
        _forgot = False
    _records.forget_all()


async def _drop_paths(paths: set[str]) -> int:
    before = _size()
    for path in sorted(paths):
        await invalidation.invalidate(path=path)
    _records.forget(lambda record: record.path in paths)
    return before - _size()


async def _drop_routes(routes: list[Any]) -> int:
    before = _size()
    for route in routes:
        await invalidation.invalidate(route=route)
    ids = {id(route) for route in routes}
    _records.forget(lambda record: record.route in ids)
    return before - _size()


async def clear_path(path: str, include_params: bool = False) -> int:
    """Drops the entries stored for ``path`` (all its query strings and variants, even
    with ``include_params=False``); returns how many this process's stores held."""
    return await _drop_paths({path})


async def invalidate(
    request: Request,
    key_builder: Any = None,
    vary: Any = None,
    *,
    sort_query: bool | None = None,
) -> bool:
    """Drops the entries of ``request``'s path (every query and variant, not the one key
    fastapi-cachex would build). True when an entry was dropped from this process's stores,
    or a remote backend was asked to drop them (it does not say whether one was there)."""
    dropped = await _drop_paths({request.url.path})
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


def _literal_path(pattern: str) -> str | None:
    """The one path a pattern names without a glob: ``"/items/1"``, or the path part of
    ``"http:v2|GET|*|/items/1|*"``."""
    parts = pattern.split("|")
    if len(parts) == 1:
        return pattern if pattern.startswith("/") and not _is_glob(pattern) else None
    if len(parts) >= 4 and fnmatchcase(_FORMAT_TAG, parts[0]) and not _is_glob(parts[3]):
        return _unescape(parts[3])
    return None


async def clear_pattern(pattern: str) -> int:
    """Drops the entries whose fastapi-cachex key (or, for a pattern without ``|``, path)
    matches ``pattern`` (see the module docstring; it may drop more than asked, never
    less)."""
    bare = "|" not in pattern
    with _lock:
        paths = {
            path
            for key, path in _seen.items()
            if fnmatchcase(key, pattern) or (bare and fnmatchcase(path, pattern))
        }
        forgot = _forgot
    literal = _literal_path(pattern)
    if literal is not None:
        paths.add(literal)
    elif forgot or _shared():
        # Keys this process forgot, or stored by other processes: drop the routes that may
        # hold one (a custom key builder's keys may look like anything).
        routes = _routes if _may_match_default_keys(pattern) else _custom_key_routes
        return await _drop_paths(paths) + await _drop_routes(list(routes))
    return await _drop_paths(paths)


def _shared() -> bool:
    """Whether a remote backend holds entries other processes may have stored."""
    return remote.get_backend() is not None and not isinstance(remote.current_spec(), BoundedEngine)


def _may_match_default_keys(pattern: str) -> bool:
    """Whether ``pattern`` may match a default key (``http:v2|...``) or, without ``|``, a
    path: judged by its literal start, the text before its first glob character."""
    start = pattern
    for i, ch in enumerate(pattern):
        if ch in _GLOB or ch == "\\":
            start = pattern[:i]
            break
    tag = _FORMAT_TAG + "|"
    if start.startswith(tag) or tag.startswith(start):
        return True
    return "|" not in pattern and (start == "" or start.startswith("/"))

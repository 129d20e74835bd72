"""What an operator can ask of the cache: counts of what a backend holds, what is stored for
a URL, and invalidations that say whether they were applied. The command line
(:mod:`oxicache.admin.cli`) and the admin router (:mod:`oxicache.admin.router`) are two ways
to reach these functions; neither adds behaviour of its own.

Nothing here returns key material: a backend key ends with a digest of the request's key
(path, query, the values of the keyed headers, the handler's arguments), which stays inside.
Entries are named by their namespace and route, which the app chose. Bodies are returned only
when asked (``show_body=True``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .. import _core
from ..backends import remote
from ..backends.base import Backend
from ..cache_request import BACKEND_TAG_PREFIX, check_tag
from ..coordination import coherence
from ..exceptions import ConfigError, OxicacheError
from ..invalidation.explicit import clear, invalidate
from ..runtime import STATE

__all__ = [
    "BackendContents",
    "Invalidated",
    "NotSupported",
    "StoredEntry",
    "apply_clear",
    "apply_invalidation",
    "backend_contents",
    "inspect_url",
]


class NotSupported(OxicacheError):
    """The configured store cannot answer this (it cannot list its keys)."""


@dataclasses.dataclass(frozen=True)
class RouteContents:
    """Entries of one route in a backend, and their stored size."""

    namespace: str
    route: str
    entries: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class BackendContents:
    """What a backend holds under this app's prefix (``stats``)."""

    backend: str
    prefix: str
    entries: int
    bytes: int
    #: Per route, most entries first. Keys this version of oxicache did not write are
    #: counted under the namespace and route ``"?"``.
    routes: tuple[RouteContents, ...]


@dataclasses.dataclass(frozen=True)
class StoredEntry:
    """One entry stored for a URL (``inspect``): a variant of its path."""

    namespace: str
    route: str
    status: int
    #: Seconds since the response was made (RFC 9111 §4.2.3).
    age: float
    #: Freshness left, in seconds (negative once stale).
    fresh_for: float
    #: Seconds the backend keeps the entry (its TTL, stale windows included); None if unknown.
    expires_in: float | None
    #: Bytes in the backend (compressed when large), and of the body.
    size: int
    body_size: int
    etag: str
    content_type: str | None
    vary: str | None
    stale_while_revalidate: float
    stale_if_error: float
    #: The body, only when asked for.
    body: bytes | None = None
    #: Set when the bytes could not be read as an entry (foreign, corrupt): the other fields
    #: are then zero.
    unreadable: str | None = None


@dataclasses.dataclass(frozen=True)
class Invalidated:
    """The outcome of an invalidation: whether the backend applied it, and the count it
    reports (None where the engine cannot tell, such as Memcached's generation counters)."""

    applied: bool
    removed: int | None


def _backend() -> Any:
    guard = remote.get_backend()
    if guard is None:
        raise NotSupported(
            "no backend is configured: the entries are in the app's own processes (mount"
            " oxicache.admin_router() to reach them), or give a backend URL (--url or"
            " OXICACHE_URL)"
        )
    return guard


def _listing(backend: Backend, method: str) -> Any:
    found = getattr(backend, method, None)
    if found is None:
        raise NotSupported(f"the {backend.name} backend cannot list its keys (Redis can)")
    return found


def _labels(key: str, prefix: str) -> tuple[str, str]:
    """``(namespace, route)`` of a backend key ``<prefix>:<namespace>:<route>:<digest>``."""
    rest = key[len(prefix) + 1 :] if key.startswith(prefix + ":") else ""
    labels, _, digest = rest.rpartition(":")
    namespace, _, route = labels.partition(":")
    if not namespace or not route or not digest:
        return "?", "?"
    return namespace, route


async def backend_contents(progress: Callable[[int], None] | None = None) -> BackendContents:
    """Counts the entries the configured backend holds under this app's prefix, per route
    (a scan: ``progress(keys so far)`` is told after each batch)."""
    guard = _backend()
    scan = _listing(guard.backend, "scan")
    prefix = STATE.settings.prefix
    per_route: dict[tuple[str, str], list[int]] = {}
    seen = 0
    async for batch in scan(prefix + ":"):
        for key, size in batch:
            tally = per_route.setdefault(_labels(key, prefix), [0, 0])
            tally[0] += 1
            tally[1] += size
        seen += len(batch)
        if progress is not None:
            progress(seen)
    routes = tuple(
        RouteContents(ns, route, n, size)
        for (ns, route), (n, size) in sorted(per_route.items(), key=lambda kv: -kv[1][0])
    )
    return BackendContents(
        backend=guard.name,
        prefix=prefix,
        entries=sum(r.entries for r in routes),
        bytes=sum(r.bytes for r in routes),
        routes=routes,
    )


def _raw_path(url: str) -> bytes:
    """The raw path of ``url`` (``/items?page=2``, or a full URL), as requests send it."""
    parts = urlsplit(url)
    path = parts.path
    if not path.startswith("/"):
        raise ConfigError(f"{url!r} is not a path or URL: give /path or http://host/path")
    return path.encode("utf-8")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for n, v in headers:
        if n.lower() == name:
            return v.decode("latin-1")
    return None


def _entry(key: str, frame: bytes, expires_in: float | None, show_body: bool) -> StoredEntry:
    namespace, route = _labels(key, STATE.settings.prefix)
    try:
        envelope = _core.unpack_frame(frame, 4 * STATE.settings.max_entry_size + (1 << 20))
        decoded = _core.inspect_entry(envelope)
    except Exception as exc:
        return StoredEntry(
            namespace=namespace,
            route=route,
            status=0,
            age=0.0,
            fresh_for=0.0,
            expires_in=expires_in,
            size=len(frame),
            body_size=0,
            etag="",
            content_type=None,
            vary=None,
            stale_while_revalidate=0.0,
            stale_if_error=0.0,
            unreadable=type(exc).__name__,
        )
    age = max(0.0, time.time() - decoded["stored_at"])
    headers = decoded["headers"]
    body: bytes = decoded["body"]
    return StoredEntry(
        namespace=namespace,
        route=route,
        status=decoded["status"],
        age=age,
        fresh_for=decoded["ttl"] - age,
        expires_in=expires_in,
        size=len(frame),
        body_size=len(body),
        etag=decoded["etag"],
        content_type=_header(headers, b"content-type"),
        vary=_header(headers, b"vary"),
        stale_while_revalidate=decoded["stale_while_revalidate"],
        stale_if_error=decoded["stale_if_error"],
        body=body if show_body else None,
    )


async def inspect_url(url: str, *, show_body: bool = False) -> list[StoredEntry]:
    """The entries the configured backend holds for the path of ``url``: one per variant
    (query string, keyed header values, arguments), of every route serving that path. The
    query string cannot be told apart (it is inside the key's digest): every variant of the
    path is listed."""
    raw = _raw_path(url)
    guard = _backend()
    tagged = _listing(guard.backend, "tagged")
    backend = guard.backend
    found = []
    for key in await tagged(_core.path_tag_of(raw)):
        frame = await backend.get(key)
        if frame is None:
            continue  # expired or invalidated since it was tagged
        found.append(_entry(key, frame, await backend.ttl(key), show_body))
    return found


async def apply_invalidation(
    *,
    route: str | None = None,
    path: str | None = None,
    tag: str | None = None,
    namespace: str | None = None,
) -> Invalidated:
    """Invalidates as :func:`oxicache.invalidate` does (``route`` is a route label,
    ``module.function``, in ``namespace`` or the default one), or every entry written with a
    backend ``tag``; says whether the backend applied it."""
    if tag is not None:
        if route is not None or path is not None or namespace is not None:
            raise ConfigError("a tag is invalidated on its own: drop --route/--path/--namespace")
        return await _invalidate_tag(tag)
    if route is None and path is None and namespace is None:
        raise ConfigError("say what to invalidate: a route, a path, a tag or a namespace")
    guard = remote.get_backend()
    failed = guard.counters.invalidations_failed if guard is not None else 0
    raw = None if path is None else _raw_path(path)
    await invalidate(route=route, path=raw, namespace=namespace)
    if guard is None:
        return Invalidated(applied=True, removed=None)
    return Invalidated(applied=guard.counters.invalidations_failed == failed, removed=None)


#: The backend tag of a request path (``_core.path_tag_of``).
_PATH_TAG = re.compile(r"path:[0-9a-f]{16}")


async def _invalidate_tag(tag: str) -> Invalidated:
    """A path tag (``path:<16 hex>``) as the backend holds it, else an application tag
    (:meth:`oxicache.CacheRequest.tag`; ``user:42`` or its backend form ``tag:user:42``)."""
    if _PATH_TAG.fullmatch(tag):
        STATE.store.invalidate(path_hash=tag)
    else:
        tag = tag.removeprefix(BACKEND_TAG_PREFIX)
        STATE.store.invalidate(tag=check_tag(tag))
        tag = BACKEND_TAG_PREFIX + tag
    guard = remote.get_backend()
    if guard is None:
        return Invalidated(applied=True, removed=None)
    failed = guard.counters.invalidations_failed
    removed = await guard.delete_tag(tag)
    await coherence.publish("t", tag)
    applied = guard.counters.invalidations_failed == failed
    return Invalidated(applied=applied, removed=removed if applied else None)


async def apply_clear() -> Invalidated:
    """:func:`oxicache.clear`, saying whether the backend applied it."""
    guard = remote.get_backend()
    failed = guard.counters.invalidations_failed if guard is not None else 0
    await clear()
    applied = guard is None or guard.counters.invalidations_failed == failed
    return Invalidated(applied=applied, removed=None)

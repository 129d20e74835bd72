"""fastapi-cachex 0.5 on the oxicache engine: the HTTP cache, the application cache, the lock,
the backends' primitives and the monitoring routes.

Migrating is changing the imports: ``fastapi_cachex`` -> ``oxicache.compat.fastapi_cachex``
(the module layout is kept: ``.cache``, ``.proxy``, ``.exceptions``, ``.types``, ``.manager``,
``.manager_proxy``, ``.cached``, ``.lock``, ``.dependencies``, ``.routes``, ``.backends``,
``.backends.memory``, ``.backends.redis``, ``.backends.memcached``, ``.backends.config``)::

    from oxicache.compat.fastapi_cachex import BackendProxy, cache
    from oxicache.compat.fastapi_cachex.backends import AsyncRedisCacheBackend

    BackendProxy.set(AsyncRedisCacheBackend(host="redis", key_prefix="myapp:"))

    @app.get("/items/{item_id}")
    @cache(ttl=60, stale="revalidate", stale_ttl=30, vary=["Accept-Language"])
    async def item(item_id: int) -> dict[str, int]: ...

Provided: ``cache`` (every argument of 0.5.1), ``invalidate``, ``build_cache_key``,
``default_key_builder``, ``BackendProxy`` (``get``/``set``/``get_or_create``, and the 0.3
``get_backend``/``set_backend``), the backends ``MemoryBackend`` (``max_entries`` too),
``AsyncRedisCacheBackend`` (also ``load_from_config(RedisConfig)``), ``MemcachedBackend`` with
their key-value primitives (``get``, ``set``, ``delete``, ``delete_many``, ``get_and_delete``,
``increment``, ``set_if_absent``, ``delete_if_equals``, ``expire_if_equals``,
``set_if_equals``, ``get_all_keys``, ``get_cache_data``) and ``clear``, ``clear_path``,
``clear_pattern``, ``aclose``; module-level ``clear_path`` and ``clear_pattern``; the
application cache (``CacheManager``, ``CacheManagerProxy``, ``AppCache``/``get_app_cache``,
``CacheBackend``/``get_cache_backend``, ``@cached``/``CachedFunction``), ``CacheLock``, the
monitoring routes (``add_routes``), ``CacheEntry`` (``.types``) and the exception classes.
Not provided: ``CacheKey`` and the session/state modules.

Where the two differ, oxicache's behaviour is kept (the migration guide lists them):

- ``no_cache=True`` stores the response and serves it, sending ``no-cache`` (with
  ``max-age``) so clients revalidate (a 304 from the stored ETag); fastapi-cachex runs the
  handler on every request.
- ``stale=`` with ``stale_ttl`` serves stale entries (RFC 5861: while one request refreshes
  it, or when the handler fails) instead of only sending the directive; remote backends
  keep entries ``ttl + stale_ttl``. ``stale_ttl`` without ``stale`` means
  ``stale="revalidate"`` (fastapi-cachex raises ``CacheXError``).
- ``private=True`` caches per caller (keyed on ``Authorization``/``Cookie``) where
  fastapi-cachex never caches; the response still says ``private``.
- A request with ``Authorization`` *or a Cookie* on a route that is neither ``public`` nor
  per user is answered uncached (``X-Cache: BYPASS``, ``Cache-Control: private, ...``);
  fastapi-cachex bypasses for ``Authorization`` and session data but shares entries with
  cookie-carrying requests.
- Invalidation is by path, not by key: ``invalidate(request)`` and ``clear_path(path)``
  drop every query string and variant of the path (``include_params=False`` included);
  ``clear_pattern`` matches the fastapi-cachex keys (and, without ``|``, the path globs
  of its earlier docs: ``"/path/to/clear/*"``, ``"*/users/*"``) of the requests this process
  answered, and drops their paths; on a shared backend, or once older keys were forgotten,
  it drops every route whose keys may match (see :mod:`._invalidation`). Counts are this
  process's stores'. On memcached both work (fastapi-cachex clears nothing there), and
  ``clear()`` drops this app's entries, not the whole server.
- Single-flight (``coalesce``) is always on, across processes too on Redis.
- A backend that fails never fails a request (``fail_open=False`` is ignored); ``X-Cache``
  and ``Cache-Status`` are always sent (``debug_header`` is ignored), and a ``key_builder``
  that returns a non-string answers uncached instead of raising.
- ETags of cached routes are oxicache's (weak, from the body), not fastapi-cachex's.
- ``MemoryBackend()`` keeps cached routes in oxicache's in-process store, bounded by bytes
  (``oxicache.configure(max_size=...)``); ``MemoryBackend(max_entries=N)`` keeps everything
  it holds (routes and the primitives' keys) in one store of at most ``N`` entries, least
  recently used evicted first, as fastapi-cachex does. Setting a new one empties it.
- Route entries are oxicache's (digest keys): ``get_all_keys``/``get_cache_data`` list the
  keys stored through the primitives only, and the monitoring routes list the responses
  compat routes stored in this process (with their fastapi-cachex key, path, query, ETag,
  size and time left; an entry evicted for room or dropped by another process stays listed
  until its ttl ends; expired ones are not listed).
- The primitives' keys live under ``<prefix>:kv:`` beside the route entries; their values
  are encoded by oxicache (a JSON document; counters as bare integers), so entries written
  by fastapi-cachex are not read: use a fresh prefix. On memcached, ``clear_pattern`` of the
  primitives' keys drops all of them (memcached cannot list keys: more than asked, never
  less) and ``CacheManager.clear_prefix``/``clear`` remove nothing, as in fastapi-cachex.
- A primitive whose server is down raises ``BackendUnavailableError`` (routes never do).
- With ``sort_query`` (the default) a handler reading ``request.url`` sees the query sorted.
"""

from __future__ import annotations

from ._invalidation import clear_path, clear_pattern
from .backends import (
    AsyncRedisCacheBackend,
    BaseCacheBackend,
    MemcachedBackend,
    MemoryBackend,
    RedisConfig,
)
from .cache import build_cache_key, cache, default_key_builder, invalidate
from .cached import CachedFunction, cached
from .dependencies import AppCache, CacheBackend, get_app_cache, get_cache_backend
from .exceptions import (
    BackendNotFoundError,
    BackendUnavailableError,
    CacheXError,
    InvalidTTLError,
    LockTimeoutError,
    ProxyNotSetError,
    RequestNotFoundError,
    TTLTypeError,
    TTLValueError,
)
from .lock import CacheLock
from .manager import CacheManager
from .manager_proxy import CacheManagerProxy
from .proxy import BackendProxy
from .routes import add_routes
from .types import CacheEntry, CacheKeyBuilder

__version__ = "0.5.1"

__all__ = [
    "AppCache",
    "AsyncRedisCacheBackend",
    "BackendNotFoundError",
    "BackendProxy",
    "BackendUnavailableError",
    "BaseCacheBackend",
    "CacheBackend",
    "CacheEntry",
    "CacheKeyBuilder",
    "CacheLock",
    "CacheManager",
    "CacheManagerProxy",
    "CacheXError",
    "CachedFunction",
    "InvalidTTLError",
    "LockTimeoutError",
    "MemcachedBackend",
    "MemoryBackend",
    "ProxyNotSetError",
    "RedisConfig",
    "RequestNotFoundError",
    "TTLTypeError",
    "TTLValueError",
    "add_routes",
    "build_cache_key",
    "cache",
    "cached",
    "clear_path",
    "clear_pattern",
    "default_key_builder",
    "get_app_cache",
    "get_cache_backend",
    "invalidate",
]

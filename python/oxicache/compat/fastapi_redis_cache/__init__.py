"""fastapi-redis-cache (fastapi-redis-cache-reborn 0.3.x)'s surface on the oxicache engine.

Migrating is changing the imports::

    from fastapi_redis_cache import FastApiRedisCache, cache                      # before
    from oxicache.compat.fastapi_redis_cache import FastApiRedisCache, cache      # after

``FastApiRedisCache().init(host_url, prefix=, response_header=, ignore_arg_types=)`` configures
oxicache (:func:`oxicache.configure`: the Redis URL and the key prefix); ``@cache(expire=,
tag=)`` and the presets ``cache_one_minute``, ``cache_one_hour``, ``cache_one_day``,
``cache_one_week``, ``cache_one_month`` and ``cache_one_year`` are :func:`oxicache.cache`
with ``ttl=expire`` (at most, and by default, one year), ``namespace=tag`` and
``expires=True``. Responses say ``X-FastAPI-Cache: Hit`` or ``Miss`` and carry
``Cache-Control: max-age``, ``Expires`` and ``ETag``; ``If-None-Match`` is answered with 304.
Test mode is kept: with ``CACHE_ENV=TEST`` and an empty ``host_url``, entries live in
oxicache's in-process store, emptied by each ``init``.

Where fastapi-redis-cache was unsafe or loose, oxicache's behaviour is kept. The differences:

- Responses are stored as sent (status, headers, body) and replayed on a hit, rendered as
  FastAPI renders them (``response_model`` applied, dates in ISO 8601). fastapi-redis-cache
  bypassed ``response_model`` when the handler took no ``Response`` (so fields the model would
  have filtered out were stored and sent) and sent dates and decimals as
  ``{"val": ..., "_spec_type": ...}`` objects; :func:`.util.deserialize_json` still reads
  that format.
- A response carrying ``Set-Cookie``, ``Cache-Control: private``/``no-store``, or an error
  status is never stored (only 200, 203, 204, 300, 301, 308 are); requests with
  ``Authorization`` or ``Cookie`` are answered uncached unless the key names the user (a
  keyed dependency such as ``Depends(current_user)``).
- The key is oxicache's own (method, path, query string, typed arguments, request headers the
  handler reads), not ``module.function(arg=str(value),...)``: two values with the same
  ``str()`` are two entries. ``ignore_arg_types`` still leaves parameters of those types out.
- ETags are derived from the body (weak, the same in every process and after a restart), not
  ``W/{hash(...)}`` with Python's per-process salted ``hash``; ``If-Modified-Since`` is
  answered too (``Last-Modified`` is sent); a hit carries ``Age`` and the route's ``max-age``
  (not the seconds left); ``Expires`` is when the entry's freshness ends, the same on every
  answer from it.
- ``HEAD`` is answered from the ``GET`` entry when the route accepts ``HEAD``; other methods
  are never cached. Concurrent misses of one key run the handler once; a Redis that is down
  or slow is a miss within oxicache's deadline, never an error or a hang.
- ``init`` opens no connection (each process connects on its first request, fork-safe) and
  never pings: an unreachable Redis makes misses, not a silently disabled cache. An empty
  ``host_url`` outside test mode raises ``ConfigError`` (it raised ``ValueError`` from
  redis-py). Before ``init``, decorated functions run uncached, as before.
- ``tag`` no longer keeps a Redis set of keys (which grew forever): it is the entries'
  namespace, so ``oxicache.invalidate(namespace=tag)`` drops them on every backend.
- A value that cannot be stored (not JSON-serializable) fails as FastAPI fails to render it;
  a plain function's value is stored with oxicache's codec (JSON by return annotation, else
  pickle), in this process's memory for a sync function.
"""

from __future__ import annotations

from .cache import (
    cache,
    cache_one_day,
    cache_one_hour,
    cache_one_minute,
    cache_one_month,
    cache_one_week,
    cache_one_year,
)
from .client import FastApiRedisCache

__all__ = [
    "FastApiRedisCache",
    "cache",
    "cache_one_day",
    "cache_one_hour",
    "cache_one_minute",
    "cache_one_month",
    "cache_one_week",
    "cache_one_year",
]

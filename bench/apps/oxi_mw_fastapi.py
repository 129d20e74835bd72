"""oxicache's ``CacheMiddleware`` added to the decorator app of bench/apps/oxi.py.

The same FastAPI app, routes and ``@cache(ttl=...)`` as the ``oxicache`` target, plus one line,
``app.add_middleware(CacheMiddleware)``, the way the README shows it. The decorated routes send
``Cache-Control: max-age`` (and their ETag), so the middleware stores them and answers hits
before routing; a miss goes through FastAPI and the decorator as usual (and the decorator's
single-flight still applies). /_stats and /_health send no freshness and are never stored.
"""

from apps.oxi import app
from oxicache import CacheMiddleware

app.add_middleware(CacheMiddleware)

"""fastapi-cache2 0.2.x's surface on the oxicache engine.

Migrating is changing the imports::

    from fastapi_cache import FastAPICache                      # before
    from oxicache.compat.fastapi_cache import FastAPICache      # after
    from oxicache.compat.fastapi_cache.backends.redis import RedisBackend
    from oxicache.compat.fastapi_cache.decorator import cache

``FastAPICache.init(backend, prefix=, expire=, coder=, key_builder=, cache_status_header=,
enable=)`` configures oxicache (:func:`oxicache.configure`: the backend, the key prefix and the
name of the HIT/MISS header); ``@cache(expire=, namespace=, coder=, key_builder=,
injected_dependency_namespace=)`` is :func:`oxicache.cache` with ``ttl=expire``. The request
and response parameters it adds to an endpoint are named ``<injected_dependency_namespace>_request``
and ``..._response``, as in fastapi-cache2; a function that already has a parameter of either
name is refused when decorated (the fix: another namespace).

Where fastapi-cache2 was unsafe or loose, oxicache's behaviour is kept. The differences:

- Responses are stored as sent (status, headers, body) and replayed on a hit, not re-rendered
  from a decoded return value: an endpoint's ``coder=`` is accepted and never called (a hit
  sends the bytes the fresh render sent, whatever the coder would have made of the value);
  coders apply to memoized plain functions.
- A response carrying ``Set-Cookie``, ``Cache-Control: private``/``no-store``, or an error
  status (only 200, 203, 204, 300, 301, 308 are stored) is never stored; fastapi-cache2 stored
  every return value, so one user's cookie or error could be served to everyone.
- Requests with ``Authorization`` or ``Cookie`` are answered uncached unless the key names the
  user (a keyed dependency, or ``oxicache.cache(per_user=True)``).
- ``expire=None`` with no ``expire`` given to ``init`` means oxicache's default TTL (60 s), not
  "forever" (Redis) or "about a second" (in memory); ``Cache-Control`` never says
  ``max-age=None``.
- ETags are derived from the body (weak, stable across processes and restarts), not
  ``W/{hash(bytes)}`` with Python's per-process salted ``hash``; ``If-None-Match`` and
  ``If-Modified-Since`` (``Last-Modified`` is sent) are answered with 304, on misses too; a
  hit carries ``Age`` and the route's ``max-age`` (not the seconds left).
- The header (``X-FastAPI-Cache`` by default) says ``HIT`` or ``MISS`` as before, and is absent
  when the cache is not used (non-GET, disabled); ``Cache-Status`` (RFC 9211) is sent too, with
  the reason. The header name is global (oxicache's ``header_name``).
- With the default key builder the key is oxicache's own (method, path, query string, typed
  arguments, request headers the handler reads), not an md5 of ``repr(args, kwargs)``; a key
  builder of your own still keys entries by the string it returns (within its route and
  namespace).
- A request's ``Cache-Control: no-cache`` (or ``Pragma: no-cache``) runs the handler and
  refreshes the entry, in any list of directives (fastapi-cache2 matched the exact string);
  ``no-store`` keeps that request's response out of the cache but may be answered from a
  stored entry (RFC 9111 §5.2.1.5; fastapi-cache2 ran the handler). ``HEAD`` is answered as
  FastAPI answers it.
- ``FastAPICache.clear(namespace=)`` and ``clear()`` work on every backend (memcached and
  DynamoDB raised ``NotImplementedError``); ``clear(key=...)`` drops that key's entry of memoized
  functions and *every* entry of cached endpoints whose key builder produced it (an endpoint's
  entry key is not the builder's string alone). Counts returned are best effort.
- Concurrent misses of one key run the handler once (single-flight); a failing or slow backend
  answers as a miss within oxicache's deadline instead of an error or a hang.
- Without ``FastAPICache.init`` the decorator still works, on oxicache's defaults (fastapi-cache2
  raised an ``AssertionError``).
- A plain ``def`` function (memoized in a worker thread, in this process's memory only) cannot
  take an ``async`` key builder; endpoints and ``async def`` functions can.
- ``DynamoBackend`` needs a table in oxicache's layout (partition key ``k``, TTL ``exp``).
- The ``JsonCoder`` decodes dates to ``datetime``/``date`` (not pendulum's types).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ... import config
from ...backends import remote
from ...backends.base import Backend as _EngineProtocol
from ...invalidation.explicit import clear as _clear_all
from ...invalidation.explicit import invalidate as _invalidate
from ...runtime import STATE
from .coder import Coder, JsonCoder
from .key_builder import default_key_builder
from .types import Backend, KeyBuilder

__all__ = [
    "Backend",
    "Coder",
    "FastAPICache",
    "JsonCoder",
    "KeyBuilder",
    "default_key_builder",
]

__version__ = "0.2.2+oxicache"


class FastAPICache:
    """fastapi-cache2's global configuration holder (class methods only)."""

    _backend: ClassVar[Backend | None] = None
    _prefix: ClassVar[str | None] = None
    _expire: ClassVar[int | None] = None
    _init: ClassVar[bool] = False
    _coder: ClassVar[type[Coder] | None] = None
    _key_builder: ClassVar[KeyBuilder | None] = None
    _cache_status_header: ClassVar[str | None] = None
    _enable: ClassVar[bool] = True
    #: oxicache's settings before ``init``, put back by ``reset``.
    _saved: ClassVar[dict[str, Any] | None] = None

    @classmethod
    def init(
        cls,
        backend: Backend,
        prefix: str = "",
        expire: int | None = None,
        coder: type[Coder] = JsonCoder,
        key_builder: KeyBuilder = default_key_builder,
        cache_status_header: str = "X-FastAPI-Cache",
        enable: bool = True,
    ) -> None:
        """Configures the cache once (later calls are ignored until :meth:`reset`).

        ``prefix`` becomes oxicache's key prefix (empty: oxicache's, ``"oxicache"``);
        ``cache_status_header`` its ``header_name``; ``backend`` its backend (see
        :mod:`.backends`; a fastapi-cache2 ``Backend`` subclass of your own is used through
        its ``get``/``set``/``clear``). ``expire`` is the TTL of ``@cache()`` without one
        (``None``: oxicache's default TTL). ``enable=False`` runs every cached function
        uncached.
        """
        if cls._init:
            return
        settings = STATE.settings
        cls._saved = {
            "prefix": settings.prefix,
            "header_name": settings.header_name,
            "backend": remote.current_spec(),
        }
        engine_prefix = prefix or settings.prefix
        engine: _EngineProtocol | str = _engine_of(backend, engine_prefix)
        config.configure(engine, prefix=engine_prefix, header_name=cache_status_header)
        cls._init = True
        cls._backend = backend
        cls._prefix = prefix
        cls._expire = expire
        cls._coder = coder
        cls._key_builder = key_builder
        cls._cache_status_header = cache_status_header
        cls._enable = enable

    @classmethod
    def reset(cls) -> None:
        """Forgets ``init`` and puts oxicache's prefix, header name and backend back."""
        saved = cls._saved
        if saved is not None:
            config.configure(prefix=saved["prefix"], header_name=saved["header_name"])
            if saved["backend"] is None:
                remote.set_backend(None, **config.guard_options(STATE.settings))
            else:
                config.configure(saved["backend"])
        cls._saved = None
        cls._init = False
        cls._backend = None
        cls._prefix = None
        cls._expire = None
        cls._coder = None
        cls._key_builder = None
        cls._cache_status_header = None
        cls._enable = True

    @classmethod
    def get_backend(cls) -> Backend:
        if cls._backend is None:
            raise AssertionError("You must call init first!")
        return cls._backend

    @classmethod
    def get_prefix(cls) -> str:
        if cls._prefix is None:
            raise AssertionError("You must call init first!")
        return cls._prefix

    @classmethod
    def get_expire(cls) -> int | None:
        return cls._expire

    @classmethod
    def get_coder(cls) -> type[Coder]:
        if cls._coder is None:
            raise AssertionError("You must call init first!")
        return cls._coder

    @classmethod
    def get_key_builder(cls) -> KeyBuilder:
        if cls._key_builder is None:
            raise AssertionError("You must call init first!")
        return cls._key_builder

    @classmethod
    def get_cache_status_header(cls) -> str:
        if cls._cache_status_header is None:
            raise AssertionError("You must call init first!")
        return cls._cache_status_header

    @classmethod
    def get_enable(cls) -> bool:
        return cls._enable

    @classmethod
    async def clear(cls, namespace: str | None = None, key: str | None = None) -> int:
        """Drops the entries of ``namespace`` (the ``namespace=`` given to ``@cache``), or of
        ``key`` (a string your key builder returned), or everything under the prefix.

        Returns how many entries the in-process store dropped (best effort: entries dropped
        in a remote backend are not counted).
        """
        store = STATE.store
        before = len(store)
        if namespace:
            await _invalidate(namespace=namespace)
        elif key is not None:
            from .decorator import clear_key

            await clear_key(key)
        else:
            await _clear_all()
        store.run_pending_tasks()
        return max(0, before - len(store))


def _engine_of(backend: Any, prefix: str) -> _EngineProtocol | str:
    from .backends._engine import EngineBackend, PeerBackendAdapter

    if isinstance(backend, EngineBackend):
        return backend.engine_for(prefix)
    if isinstance(backend, _EngineProtocol):  # an oxicache backend given as it is
        return backend
    if isinstance(backend, Backend):
        return PeerBackendAdapter(backend, prefix)
    raise TypeError(f"FastAPICache.init: not a backend: {backend!r}")

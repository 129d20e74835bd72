"""``BackendProxy``: which backend the cached routes use.

``BackendProxy.set(backend)`` configures oxicache's engine (:func:`oxicache.configure`):
``MemoryBackend`` is the in-process store, ``AsyncRedisCacheBackend`` and
``MemcachedBackend`` oxicache's Redis and memcached engines. ``set(None)`` comes back to the
in-process store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar, Generic, NoReturn, TypeVar

from ... import config
from ...runtime import STATE
from .backends import BaseCacheBackend, MemoryBackend
from .exceptions import BackendNotFoundError, ProxyNotSetError

__all__ = ["BackendProxy", "ProxyBase", "get_backend_or_fallback"]

T = TypeVar("T")


class _NoInstances(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Proxy class cannot be instantiated. Use static methods instead.")


class ProxyBase(Generic[T], metaclass=_NoInstances):
    """One instance for the whole process, behind class methods (as in fastapi-cachex)."""

    _instance: ClassVar[Any] = None
    _lock: ClassVar[threading.RLock] = threading.RLock()
    #: Raised by ``get()`` while nothing is set.
    _not_set: ClassVar[type[Exception]] = ProxyNotSetError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._lock = threading.RLock()  # one per proxy: a factory may use another proxy

    @classmethod
    def get(cls) -> T:
        """The instance set; ``ProxyNotSetError`` (``BackendNotFoundError`` for
        ``BackendProxy``) when none is."""
        if cls._instance is None:
            raise cls._not_set(f"No instance set for proxy {cls.__name__}")
        return cls._instance  # type: ignore[no-any-return]

    @classmethod
    def set(cls, instance: T | None) -> None:
        cls._instance = instance

    @classmethod
    def get_or_create(cls, factory: Callable[[], T]) -> T:
        """The instance set, else ``factory()``'s, set once (concurrent first callers,
        threads included, all get the same one)."""
        instance = cls._instance
        if instance is not None:
            return instance  # type: ignore[no-any-return]
        with cls._lock:
            if cls._instance is None:
                cls.set(factory())
            return cls._instance  # type: ignore[no-any-return]


class BackendProxy(ProxyBase[BaseCacheBackend]):
    """The backend in use (class methods only, as in fastapi-cachex)."""

    _instance: ClassVar[BaseCacheBackend | None] = None
    _not_set = BackendNotFoundError

    @classmethod
    def set(cls, instance: BaseCacheBackend | None) -> None:
        """Uses ``instance`` from now on (``None``: the in-process store, and ``get()``
        raises again). Setting a new ``MemoryBackend`` starts with an empty in-process
        store, as a new fastapi-cachex ``MemoryBackend`` is empty."""
        if instance is not None and not isinstance(instance, BaseCacheBackend):
            raise TypeError(f"not a backend of oxicache.compat.fastapi_cachex: {instance!r}")
        with cls._lock:
            previous, cls._instance = cls._instance, instance
            engine = "memory://" if instance is None else instance.oxicache_backend()
            config.configure(engine)
            if isinstance(instance, MemoryBackend) and instance is not previous:
                # Each fastapi-cachex MemoryBackend is a store of its own: a new one is empty.
                STATE.store.clear()

    @classmethod
    def get_or_create(cls, factory: Callable[[], BaseCacheBackend]) -> BaseCacheBackend:
        """The backend set, else ``factory()``'s, set once."""
        instance = cls._instance
        if instance is not None:
            return instance
        with cls._lock:
            if cls._instance is None:
                created = factory()
                cls._instance = created
                config.configure(created.oxicache_backend())
            return cls._instance

    # The 0.3.x names, kept for applications written against them.
    @classmethod
    def get_backend(cls) -> BaseCacheBackend:
        return cls.get()

    @classmethod
    def set_backend(cls, backend: BaseCacheBackend | None) -> None:
        cls.set(backend)


def get_backend_or_fallback() -> BaseCacheBackend:
    """The backend set; with none, a :class:`MemoryBackend` is registered, as fastapi-cachex
    does on a cached route's first request. It changes nothing in oxicache's configuration
    (entries were in the in-process store already, unless ``OXICACHE_URL`` names a backend,
    which stays in force)."""
    instance = BackendProxy._instance
    if instance is not None:
        return instance
    with BackendProxy._lock:
        if BackendProxy._instance is None:
            BackendProxy._instance = MemoryBackend()
        return BackendProxy._instance

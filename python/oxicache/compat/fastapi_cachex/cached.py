"""``@cached``: what a plain function returns, cached through a :class:`CacheManager`, keyed on
its arguments."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar

from .backends.base import entry_ttl
from .dependencies import get_app_cache
from .exceptions import CacheXError
from .manager import CacheManager

__all__ = ["CachedFunction", "cached"]

P = ParamSpec("P")
R = TypeVar("R")


class CachedFunction(Generic[P, R]):
    """A function decorated with ``@cached``: always awaited (``def`` functions too), it
    returns the cached value, running the function on a miss through
    ``CacheManager.get_or_set()`` (so concurrent misses of one key run it once).
    ``cache_key(...)`` and ``await invalidate(...)`` take the function's arguments."""

    def __init__(
        self,
        func: Callable[P, Awaitable[R]] | Callable[P, R],
        *,
        ttl: int | None,
        key: str | Callable[..., str] | None,
        manager: CacheManager | None,
        lock: bool | None,
    ) -> None:
        self.__wrapped__ = func
        self._signature = inspect.signature(func)
        self._ttl = ttl
        self._key = key
        self._manager = manager
        self._lock = lock
        self._name = f"{func.__module__}.{func.__qualname__}"
        functools.update_wrapper(self, func)

    @property
    def manager(self) -> CacheManager:
        """The manager given to ``@cached``, else the application's (``AppCache``), looked up
        on each call."""
        return self._manager if self._manager is not None else get_app_cache()

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self if instance is None else _Bound(self, instance)

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        """The key a call with these arguments uses (without the manager's prefix):
        ``module.qualname:<sha256 of the bound arguments as JSON>`` by default, the
        ``key`` template formatted with the arguments, or what the ``key`` callable gives."""
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if self._key is None:
            try:
                text = json.dumps(bound.arguments, sort_keys=True, separators=(",", ":"))
            except (TypeError, ValueError) as e:
                raise CacheXError(
                    f"@cached cannot build a key for {self._name}: an argument is not "
                    f"JSON-serializable ({e}); pass key= to name the key"
                ) from e
            return f"{self._name}:{hashlib.sha256(text.encode()).hexdigest()}"
        if isinstance(self._key, str):
            return self._key.format(**bound.arguments)
        key = self._key(*args, **kwargs)
        if not isinstance(key, str):
            raise CacheXError(f"key must return a str, got {type(key).__name__}")
        return key

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = self.cache_key(*args, **kwargs)
        value: R = await self.manager.get_or_set(
            key, lambda: self.__wrapped__(*args, **kwargs), ttl=self._ttl, lock=self._lock
        )
        return value

    async def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Drops the value cached for these arguments; whether there was one."""
        return await self.manager.delete(self.cache_key(*args, **kwargs))


class _Bound:
    """A ``CachedFunction`` looked up on an instance: the instance is the first argument."""

    def __init__(self, function: CachedFunction[Any, Any], instance: object) -> None:
        self.__wrapped__ = function
        self.__self__ = instance

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        return self.__wrapped__.cache_key(self.__self__, *args, **kwargs)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self.__wrapped__(self.__self__, *args, **kwargs)

    async def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        return await self.__wrapped__.invalidate(self.__self__, *args, **kwargs)


def cached(
    ttl: int | timedelta | None = None,
    *,
    key: str | Callable[..., str] | None = None,
    manager: CacheManager | None = None,
    lock: bool | None = None,
) -> Callable[[Callable[P, Any]], CachedFunction[P, Any]]:
    """Caches what a plain (not route) function returns, keyed on its arguments, for
    ``ttl`` seconds (``None``: the manager's ``default_ttl``). The result goes through JSON
    (a tuple comes back as a list). ``key``: a ``str.format`` template over the arguments
    (``"user:{user_id}"``) or a callable taking them; ``manager``: the ``CacheManager``
    (default: the application's); ``lock``: whether concurrent misses take the lock
    (default: the manager's setting)."""
    seconds = entry_ttl(ttl)
    if lock is not None and not isinstance(lock, bool):
        raise TypeError(f"lock must be a bool or None, got {type(lock).__name__}")
    if key is not None and not isinstance(key, str) and not callable(key):
        raise CacheXError(f"key must be a str, a callable or None, got {type(key).__name__}")

    def decorate(func: Callable[P, Any]) -> CachedFunction[P, Any]:
        return CachedFunction(func, ttl=seconds, key=key, manager=manager, lock=lock)

    return decorate

"""FastAPI dependencies: the backend in use (``CacheBackend``) and the application's
:class:`CacheManager` (``AppCache``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from .backends.base import BaseCacheBackend
from .manager import CacheManager
from .manager_proxy import CacheManagerProxy
from .proxy import get_backend_or_fallback

__all__ = ["AppCache", "CacheBackend", "get_app_cache", "get_cache_backend"]


def get_cache_backend() -> BaseCacheBackend:
    """The backend in use; with none set, a ``MemoryBackend`` is registered, as a cached
    route's first request does."""
    return get_backend_or_fallback()


def get_app_cache() -> CacheManager:
    """The application's manager: the one ``CacheManagerProxy.set()`` was given, else a
    default ``CacheManager`` on the backend in use, made once."""
    return CacheManagerProxy.get_or_create(lambda: CacheManager(backend=get_backend_or_fallback()))


CacheBackend = Annotated[BaseCacheBackend, Depends(get_cache_backend)]
AppCache = Annotated[CacheManager, Depends(get_app_cache)]

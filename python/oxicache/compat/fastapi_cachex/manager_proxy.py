"""``CacheManagerProxy``: the application's :class:`CacheManager` (class methods only)."""

from __future__ import annotations

from .manager import CacheManager
from .proxy import ProxyBase

__all__ = ["CacheManagerProxy"]


class CacheManagerProxy(ProxyBase[CacheManager]):
    """The manager ``AppCache`` and ``@cached`` use: ``set()`` one at startup, or let the
    first ``get_app_cache()`` make a default one on the backend in use."""

    @classmethod
    def set(cls, instance: CacheManager | None) -> None:
        """Uses ``instance`` from now on (``None``: none)."""
        if instance is not None and not isinstance(instance, CacheManager):
            raise TypeError(f"not a CacheManager: {instance!r}")
        cls._instance = instance

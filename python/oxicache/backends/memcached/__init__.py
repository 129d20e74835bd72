"""Memcached backend: :class:`MemcachedBackend` (:mod:`.client`, where the design is described)
and the layout of its items and counters (:mod:`.format`). Install with
``pip install 'oxicache[memcached]'``."""

from .client import DEFAULT_MAX_ITEM_SIZE, ITEM_SIZE_LIMIT, MemcachedBackend

__all__ = ["DEFAULT_MAX_ITEM_SIZE", "ITEM_SIZE_LIMIT", "MemcachedBackend"]

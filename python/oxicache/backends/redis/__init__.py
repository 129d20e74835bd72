"""Redis backend (standalone, Cluster, Sentinel): :class:`RedisBackend` (:mod:`.client`, where
the layout is described), its pipelined reads (:mod:`.reads`) and pub/sub (:mod:`.pubsub`).
Install with ``pip install 'oxicache[redis]'``."""

from .client import DEFAULT_MAX_ITEM_SIZE, RedisBackend

__all__ = ["DEFAULT_MAX_ITEM_SIZE", "RedisBackend"]

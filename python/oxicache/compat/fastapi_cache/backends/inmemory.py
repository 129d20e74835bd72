"""``InMemoryBackend``: oxicache's in-process store."""

from __future__ import annotations

from ....backends.memory import MemoryBackend
from ._engine import EngineBackend

__all__ = ["InMemoryBackend"]


class InMemoryBackend(EngineBackend):
    """Entries in this process's memory: ``FastAPICache.init(InMemoryBackend())`` configures
    oxicache with no remote backend (its bounded, byte-sized Rust store; LRU-like eviction
    instead of fastapi-cache2's unbounded dict). Its own ``get``/``set`` use a separate
    in-process key-value store."""

    def engine_for(self, prefix: str) -> str:
        return "memory://"

    def make_engine(self, prefix: str) -> MemoryBackend:
        return MemoryBackend(prefix=prefix)

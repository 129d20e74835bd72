"""``MemoryBackend``: oxicache's in-process store (bounded by bytes, Rust)."""

from __future__ import annotations

from .base import BaseCacheBackend

__all__ = ["MemoryBackend"]


class MemoryBackend(BaseCacheBackend):
    """The in-process store of each worker (oxicache's default).

    ``cleanup_interval`` and ``max_entries`` are accepted and validated as fastapi-cachex
    does; oxicache's store expires entries by itself and is bounded by bytes instead
    (``oxicache.configure(max_size=...)``, 256 MiB by default), so no store ever grows
    without bound.
    """

    def __init__(self, cleanup_interval: int = 60, *, max_entries: int | None = None) -> None:
        if cleanup_interval <= 0:
            raise ValueError(f"cleanup_interval must be positive, got {cleanup_interval!r}")
        if max_entries is not None:
            if isinstance(max_entries, bool) or not isinstance(max_entries, int):
                raise TypeError(f"max_entries must be an int or None, got {max_entries!r}")
            if max_entries <= 0:
                raise ValueError(f"max_entries must be positive, got {max_entries!r}")
        self.cleanup_interval = cleanup_interval
        self.max_entries = max_entries

    def start_cleanup(self) -> None:
        """Nothing to start: the store expires entries itself."""

    def stop_cleanup(self) -> None:
        """Nothing to stop."""

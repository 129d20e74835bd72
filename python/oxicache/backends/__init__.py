"""Storage engines behind oxicache: one small protocol (:mod:`.base`), one module per engine."""

from .base import Backend

__all__ = ["Backend"]

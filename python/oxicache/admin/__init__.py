"""Operating the cache: the command line (``python -m oxicache``, :mod:`.cli`), the admin
routes to mount in an app (:func:`router`, also ``oxicache.admin_router``), and the operations
both reach (:mod:`.operations`)."""

from __future__ import annotations

from .router import router

__all__ = ["router"]

"""The object behind one decorated function: its state (:mod:`.base`), serving requests to it
as an endpoint (:mod:`.endpoint`) and memoizing its calls as a plain function (:mod:`.memo`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .endpoint import EndpointMixin
from .memo import MemoMixin
from .options import _Options
from .signature import make_wrapper

__all__ = ["_Cached"]


class _Cached(EndpointMixin, MemoMixin):
    """The state behind one decorated function; :func:`oxicache.cache` makes one."""

    def __init__(self, func: Callable[..., Any], options: _Options) -> None:
        super().__init__(func, options)
        #: What FastAPI (or a caller) gets in place of ``func``.
        self.wrapper = make_wrapper(self)

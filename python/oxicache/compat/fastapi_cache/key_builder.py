"""``default_key_builder``, with fastapi-cache2's call shape."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["default_key_builder"]


def default_key_builder(
    func: Callable[..., Any],
    namespace: str = "",
    *,
    request: Request | None = None,
    response: Response | None = None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> str:
    """``"<namespace>:<md5 of module, name, args and kwargs>"``.

    Callable like fastapi-cache2's. But while it is the key builder in force (the default),
    routes are *not* keyed by it: the compat ``@cache`` then uses oxicache's own key (method,
    path, query string, typed arguments, and the request headers the handler reads), which
    never keys by ``repr()`` (a ``repr`` with a memory address would never hit, and two
    values with the same ``repr`` would share an entry). Pass a key builder of your own to
    key by its string.
    """
    digest = hashlib.md5(
        f"{func.__module__}:{func.__name__}:{args}:{kwargs}".encode(), usedforsecurity=False
    ).hexdigest()
    return f"{namespace}:{digest}"

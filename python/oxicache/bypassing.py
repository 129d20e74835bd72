"""Answering a request without the cache, on the server's say: the ``bypass_header`` setting
(a header your proxy or staff tools send) and :func:`bypass`, the switch a dependency or a
middleware flips for one request (a staff user who must see live data).

A bypassed request is answered as if the route were not cached: nothing is read, nothing is
stored, and the response is labelled ``X-Cache: BYPASS`` and ``Cache-Status: oxicache;
fwd=bypass; detail=<reason>`` (RFC 9211 §2.2). The reason is ``bypass-header`` for the
header, and what :func:`bypass` was given (``requested`` by default) for the switch.
"""

from __future__ import annotations

import re
from typing import Any

from .exceptions import ConfigError
from .runtime import STATE

__all__ = ["bypass", "requested"]

#: Where :func:`bypass` leaves its reason: the request's ASGI scope, which the route's
#: dependencies, the handler and the middlewares of one request share.
SCOPE_KEY = "oxicache.bypass"
#: The reason of a request that carried ``bypass_header`` (with ``bypass_value``).
HEADER_REASON = "bypass-header"
#: A ``Cache-Status`` ``detail`` token (RFC 9211 §2.8) oxicache sends as it is.
_TOKEN = re.compile(r"[a-z0-9-]+")


def bypass(request: Any, reason: str = "requested") -> None:
    """Answers this request without the cache (no read, no write), labelled ``BYPASS`` with
    ``reason`` (a token: lower-case letters, digits and ``-``).

    Call it from a dependency of a cached route (for example for staff users)::

        async def staff_sees_live_data(request: Request, user: User = Depends(current_user)):
            if user.is_staff:
                oxicache.bypass(request, "staff")

    ``request`` is a Starlette ``Request`` or an ASGI scope. ``@cache`` reads the switch when
    the handler is called, after every dependency ran. ``CacheMiddleware`` looks up before the
    app runs, so it sees the switch only when a middleware outside it flips it.
    """
    scope = getattr(request, "scope", request)
    if not isinstance(scope, dict):
        raise ConfigError(f"bypass() takes the Request (or its ASGI scope), got {request!r}")
    if not isinstance(reason, str) or not _TOKEN.fullmatch(reason):
        raise ConfigError(
            f"bypass() reason must be a token of lower-case letters, digits and -, got {reason!r}"
        )
    scope[SCOPE_KEY] = reason


def requested(scope: Any) -> str | None:
    """The reason this request must bypass the cache, or None: :func:`bypass` was called for
    it, or it carries ``bypass_header`` (with ``bypass_value`` when that is set)."""
    reason = scope.get(SCOPE_KEY)
    if reason is not None:
        return str(reason)
    settings = STATE.settings
    name = settings.bypass_header
    if not name:
        return None
    wanted = name.lower().encode("latin-1")
    value = settings.bypass_value.encode("latin-1")
    for field, got in scope.get("headers") or ():
        if field.lower() == wanted and (not value or got.strip() == value):
            return HEADER_REASON
    return None

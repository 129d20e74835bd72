"""Per-request control of ``@cache`` from a dependency or the handler: :class:`CacheRequest`.

FastAPI builds one from the request (``Annotated[CacheRequest, Depends()]``); through it a
dependency or the handler skips the cache for this request, gives the entry this request
stores another TTL, or tags it for :func:`oxicache.invalidate`. What was asked lives in the
request's ASGI scope, as :func:`oxicache.bypass` does, so every dependency and the handler of
one request share it, however many objects FastAPI builds.

``@cache`` reads it when the handler returns, on a miss: on a hit the handler does not run,
and nothing is stored, so a TTL or tags asked for on a hit change nothing.

Used on a route without ``@cache``, the object does nothing and says so in the log (a
warning, rate-limited like oxicache's others): a dependency shared by every route of a router
is legitimate, a TTL that silently never applies is not. :attr:`CacheRequest.route` is then
None.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotations of
# ``CacheRequest.__init__`` to inject the Request, and a class has no ``__globals__`` to
# resolve string annotations against.

import re
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from starlette.requests import HTTPConnection

from . import _log
from .bypassing import bypass, requested
from .durations import parse_ttl
from .exceptions import ConfigError
from .runtime import STATE

__all__ = ["CacheRequest"]

#: Where the TTL and tags asked for this request are kept: the request's ASGI scope.
SCOPE_KEY = "oxicache.request"
#: An application tag: short, ASCII, no spaces, so that every backend keeps it as it is.
_TAG = re.compile(r"[A-Za-z0-9_.:@/+=-]{1,64}")
#: Backend tags of application tags start so, apart from the path tags (``path:<hex>``).
BACKEND_TAG_PREFIX = "tag:"


class Asked:
    """What this request's dependencies and handler asked of the entry it stores."""

    __slots__ = ("tags", "ttl")

    def __init__(self) -> None:
        #: Seconds of freshness for the entry, instead of the route's; None: the route's.
        self.ttl: float | None = None
        #: Application tags, in the order given, each once.
        self.tags: list[str] = []

    def backend_tags(self) -> tuple[str, ...]:
        """The tags as written to a backend (``tag:user:42``)."""
        return tuple(BACKEND_TAG_PREFIX + t for t in self.tags)


def asked(scope: MutableMapping[str, Any]) -> Asked | None:
    """What was asked for this request, or None when nothing was."""
    got = scope.get(SCOPE_KEY)
    return got if isinstance(got, Asked) else None


def check_tag(tag: object) -> str:
    """``tag`` if it is a valid application tag, else :class:`ConfigError`."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise ConfigError(
            f"a cache tag is 1 to 64 ASCII letters, digits and _.:@/+=- (no spaces), got {tag!r}"
        )
    return tag


def _cached_of(scope: MutableMapping[str, Any]) -> Any | None:
    """The ``@cache`` state of the endpoint serving this request, if it has one."""
    endpoint = getattr(scope.get("route"), "endpoint", None)
    for _ in range(32):  # decorators over @cache keep __wrapped__ (functools.wraps)
        if endpoint is None:
            return None
        state = getattr(endpoint, "__oxicache__", None)
        if state is not None:
            return state
        endpoint = getattr(endpoint, "__wrapped__", None)
    return None


class CacheRequest:
    """This request's say over ``@cache``: skip it, give the entry another TTL, tag it.

    Declare it in the handler or in any dependency of a cached route::

        from typing import Annotated
        from fastapi import Depends

        @app.get("/users/{user_id}")
        @cache(ttl="5m")
        async def user(user_id: int, ctl: Annotated[CacheRequest, Depends()]) -> User:
            ctl.tag(f"user:{user_id}")   # oxicache.invalidate(tag="user:42") drops it
            ...

    The parameter is not part of the cache key. Outside FastAPI (a middleware), build it
    from the ``Request`` or the ASGI scope: ``CacheRequest(request)``.
    """

    __slots__ = ("_asked", "_scope", "_state")

    def __init__(self, request: HTTPConnection) -> None:
        scope = getattr(request, "scope", request)
        if not isinstance(scope, MutableMapping):
            raise ConfigError(
                f"CacheRequest takes the Request (or its ASGI scope), got {request!r}"
            )
        self._scope = scope
        got = asked(scope)
        if got is None:
            got = scope[SCOPE_KEY] = Asked()
        self._asked = got
        self._state = _cached_of(scope)
        if self._state is None and scope.get("route") is not None:
            path = getattr(scope["route"], "path", "?")
            _log.warn(
                "cache_request.uncached",
                "oxicache: CacheRequest on %s, which has no @cache: what it asks does nothing",
                path,
            )

    @property
    def route(self) -> str | None:
        """The label of the ``@cache`` route serving this request (``module.function``), or
        None when the route has no ``@cache`` (then nothing asked here applies)."""
        return None if self._state is None else str(self._state.label)

    def skip(self, reason: str = "requested") -> None:
        """Answers this request without the cache: from a dependency, nothing is read or
        stored; from the handler (after the lookup), the response is not stored. Labelled
        ``X-Cache: BYPASS`` and ``Cache-Status: oxicache; fwd=bypass; detail=<reason>``
        (a token of lower-case letters, digits and ``-``). The same as
        :func:`oxicache.bypass`."""
        bypass(self._scope, reason)

    @property
    def skipped(self) -> str | None:
        """Why this request is answered without the cache (:meth:`skip`, or the
        ``bypass_header`` setting), or None."""
        return requested(self._scope)

    @property
    def ttl(self) -> float | None:
        """Seconds the entry this request stores stays fresh: what was set here, else the
        route's TTL (None on a route without ``@cache``). Set it to shorten or extend this
        entry's life (a number, ``timedelta`` or ``"30s"``, ``"5m"``, ``"1h"``, as
        ``@cache(ttl=)``); its ``Cache-Control: max-age`` and ``Expires`` follow, and so does
        the backend's TTL. ``None`` goes back to the route's."""
        if self._asked.ttl is not None:
            return self._asked.ttl
        if self._state is None:
            return None
        route_ttl = self._state.options.ttl
        return float(route_ttl if route_ttl is not None else STATE.settings.default_ttl)

    @ttl.setter
    def ttl(self, value: float | int | timedelta | str | None) -> None:
        self._asked.ttl = None if value is None else parse_ttl(value)

    def tag(self, *tags: str) -> None:
        """Tags the entry this request stores: ``oxicache.invalidate(tag=...)`` drops every
        entry with that tag, in memory and in the backend. A tag is 1 to 64 ASCII letters,
        digits and ``_.:@/+=-`` (``"user:42"``); anything else raises
        :class:`~oxicache.ConfigError` here."""
        for t in tags:
            check_tag(t)
        for t in tags:
            if t not in self._asked.tags:
                self._asked.tags.append(t)

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags given so far by :meth:`tag`."""
        return tuple(self._asked.tags)

    def __repr__(self) -> str:
        return (
            f"CacheRequest(route={self.route!r}, skipped={self.skipped!r},"
            f" ttl={self.ttl!r}, tags={self.tags!r})"
        )

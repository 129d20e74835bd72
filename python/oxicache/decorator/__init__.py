"""``@cache``: response caching for FastAPI endpoints, memoization for plain functions.

Under a route decorator, a hit is answered from stored bytes (status, headers, body) before the
handler runs, with no response-model validation and no serialization. On a plain function, the
return value is stored and handed back with its type. One wrapper serves both: FastAPI passes
the ``Request`` (the wrapper asks for it in its signature), a plain call does not.
"""

from __future__ import annotations

import difflib
import inspect
import sys
import types
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Literal, TypeVar, cast, overload

from .. import placement
from ..codec import Codec
from ..exceptions import ConfigError
from ..statuses import DEFAULT_STATUS_CODES
from .cached import _Cached
from .options import KeyBuilder, _Options, _options

__all__ = ["DEFAULT_STATUS_CODES", "cache"]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def cache(ttl: F, /) -> F: ...


@overload
def cache(
    ttl: float | int | timedelta | str | None = None,
    *,
    namespace: str | None = None,
    key_builder: KeyBuilder | None = None,
    vary: Iterable[str] = (),
    status_codes: Iterable[int] = DEFAULT_STATUS_CODES,
    public: bool = False,
    private: bool = False,
    immutable: bool = False,
    stale_while_revalidate: float | int | timedelta | str | None = None,
    stale_if_error: float | int | timedelta | str | None = None,
    cache_control: str | None = None,
    per_user: bool | None = None,
    ignore_args: Iterable[str] = (),
    codec: Codec | None = None,
    enabled: bool = True,
    openapi: bool = True,
    refresh_ahead: float | int | timedelta | str | None = None,
    query_key: Literal["raw", "sorted", "declared"] | None = None,
    expires: bool | None = None,
) -> Callable[[F], F]: ...


def cache(
    ttl: float | int | timedelta | str | Callable[..., Any] | None = None,
    *,
    namespace: str | None = None,
    key_builder: KeyBuilder | None = None,
    vary: Iterable[str] = (),
    status_codes: Iterable[int] = DEFAULT_STATUS_CODES,
    public: bool = False,
    private: bool = False,
    immutable: bool = False,
    stale_while_revalidate: float | int | timedelta | str | None = None,
    stale_if_error: float | int | timedelta | str | None = None,
    cache_control: str | None = None,
    per_user: bool | None = None,
    ignore_args: Iterable[str] = (),
    codec: Codec | None = None,
    enabled: bool = True,
    openapi: bool = True,
    refresh_ahead: float | int | timedelta | str | None = None,
    query_key: Literal["raw", "sorted", "declared"] | None = None,
    expires: bool | None = None,
) -> Any:
    """Caches an endpoint's response, or memoizes a plain function.

    Place it *under* the route decorator::

        @app.get("/items")
        @cache(ttl=60)
        async def items() -> list[Item]: ...

    Args:
        ttl: freshness lifetime: seconds, ``timedelta`` or ``"1h30m"``; default from
            :func:`oxicache.configure` (60 s).
        namespace: label for grouped invalidation.
        key_builder: ``(request, arguments) -> value`` (sync or async); its result replaces the
            path, query and arguments in the key (``request`` is ``None`` for plain functions).
        vary: request header names whose values key the entry (and are sent in ``Vary``).
        status_codes: statuses that may be stored.
        public: ``Cache-Control: public``; also lets requests with credentials share entries.
        private: ``Cache-Control: private``; entries are keyed per ``Authorization``/``Cookie``.
        immutable: adds ``immutable``.
        stale_while_revalidate: adds ``stale-while-revalidate=N`` (RFC 5861).
        stale_if_error: adds ``stale-if-error=N`` (RFC 5861).
        cache_control: further directives appended verbatim (e.g. ``"no-transform"``).
        per_user: whether the key identifies the user (so requests with ``Authorization`` or
            ``Cookie`` may be answered from it). By default: when a keyed argument comes from a
            dependency (such as ``Depends(current_user)``) or ``vary`` names a credential header.
        ignore_args: parameter names left out of the key.
        codec: how plain functions' values are stored (default: JSON by return annotation,
            else pickle).
        enabled: ``False`` returns the function undecorated.
        openapi: ``False`` leaves the route's OpenAPI operation as FastAPI writes it
            (by default it shows the ``304``, the cache's headers and the conditional request
            headers: :mod:`oxicache.integrations.openapi`).
        refresh_ahead: seconds before expiry in which a request may be drawn to refresh the
            entry while every other request keeps getting it (probabilistic early
            expiration, XFetch); the refresh runs inside that request, so ``yield``
            dependencies work. Shorter than ``ttl``; default ``configure(refresh_ahead=)``
            (0: never).
        query_key: how the key holds the query string: ``"raw"`` (as sent), ``"sorted"``
            (parameters sorted by name: ``?a=1&b=2`` and ``?b=2&a=1`` share an entry) or
            ``"declared"`` (only the query parameters the route and its dependencies
            declare: ``?junk=1`` makes no new entry). Default ``configure(query_key=)``
            (``"raw"``).
        expires: responses carry ``Expires`` (the time their freshness ends, RFC 9111
            §5.3) besides ``max-age``; default ``configure(expires=)`` (False).

    ``@cache`` without parentheses is ``@cache()``. Contradictory or impossible options raise
    :class:`~oxicache.ConfigError` here, at decoration time, naming the fix.
    """
    if callable(ttl) and not isinstance(ttl, timedelta):
        # Bare ``@cache``: the function came in place of the TTL.
        func, frame = ttl, sys._getframe(1)
        return _decorate(func, _options(None), enabled=True, frame=frame)
    options = _options(
        ttl,
        namespace=namespace,
        key_builder=key_builder,
        vary=vary,
        status_codes=status_codes,
        public=public,
        private=private,
        immutable=immutable,
        stale_while_revalidate=stale_while_revalidate,
        stale_if_error=stale_if_error,
        cache_control=cache_control,
        per_user=per_user,
        ignore_args=ignore_args,
        codec=codec,
        openapi=openapi,
        refresh_ahead=refresh_ahead,
        query_key=query_key,
        expires=expires,
    )

    def decorate(func: F) -> F:
        return _decorate(func, options, enabled=enabled, frame=sys._getframe(1))

    return decorate


def _decorate(func: F, options: _Options, *, enabled: bool, frame: types.FrameType | None) -> F:
    if not callable(func):
        raise ConfigError(f"@cache decorates a function, got {func!r}")
    if not enabled:
        return func
    placement.refuse_registered(func, frame)
    parameters = inspect.signature(func).parameters
    for name in options.ignore_args:
        if name not in parameters:
            close = difflib.get_close_matches(name, list(parameters), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"ignore_args names {name!r}, which is not a parameter of"
                f" {getattr(func, '__qualname__', func)!r}{hint}"
            )
    return cast(F, _Cached(func, options).wrapper)

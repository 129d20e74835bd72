"""fastapi-cachex's ``@cache`` on oxicache's engine.

The arguments map onto :func:`oxicache.cache`:

========================  ==============================================================
fastapi-cachex            oxicache
========================  ==============================================================
``ttl``                   ``ttl`` (also ``max-age``); without a positive ``ttl`` nothing
                          is stored, as in fastapi-cachex
``stale="revalidate"``    ``stale_while_revalidate=stale_ttl``: served stale while one
+ ``stale_ttl``           request refreshes it (fastapi-cachex only sends the directive);
                          ``stale_ttl`` alone means this too (fastapi-cachex raises)
``stale="error"``         ``stale_if_error=stale_ttl``: served stale when the handler fails
+ ``stale_ttl``           or answers 5xx
``no_cache``              stored, and sent with ``no-cache``: clients revalidate every
                          time and get a 304 from the stored ETag
``no_store``              nothing stored, ``Cache-Control: no-store``
``public``, ``private``,  the directives (``private`` entries are keyed per
``immutable``,            ``Authorization``/``Cookie``, never shared)
``must_revalidate``
``vary``                  ``vary`` (keyed on the headers, sent in ``Vary``)
``key_builder``           ``key_builder`` (``(request) -> str``, replaces path and query)
``cache_authorized``      ``per_user=True`` (the key builder names the caller)
``coalesce``              accepted; single-flight is always on in oxicache
``fail_open``             accepted; oxicache always fails open (a backend error is a miss)
``debug_header``          accepted; ``X-Cache`` (and ``Cache-Status``) is always sent
``sort_query``            the query is keyed sorted by name unless ``False``
========================  ==============================================================
"""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar, cast, get_args, get_origin
from urllib.parse import unquote_to_bytes

from fastapi.params import Depends as DependsParam
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...decorator import cache as oxicache_cache
from ...render import render
from ...runtime import STATE
from . import _invalidation, _records
from ._invalidation import invalidate
from .backends.base import validate_ttl
from .exceptions import CacheXError
from .proxy import get_backend_or_fallback
from .types import CacheKeyBuilder

__all__ = ["build_cache_key", "cache", "default_key_builder", "invalidate"]

F = TypeVar("F", bound=Callable[..., Any])

_RESPONSE = "cachex_response__"
_REQUEST = "cachex_request__"
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def default_key_builder(request: Request) -> str:
    """fastapi-cachex's default key text (``http:v2|method|host|path|query``, query sorted).

    oxicache routes without a ``key_builder`` do not use it (their key is built by the
    engine from the same parts); it is provided for key builders that extend it."""
    return build_cache_key(request)


def build_cache_key(request: Request, *components: str | int, sort_query: bool = True) -> str:
    """The default key text of ``request`` with ``components`` appended (user id, tenant...):
    return it from a ``key_builder`` to key on the URL *and* those values."""
    items = request.query_params.multi_items()
    if sort_query:
        items = sorted(items, key=lambda item: item[0])
    query = "&".join(f"{k}={v}" for k, v in items)
    host = (request.headers.get("host") or "unknown").lower()
    parts = ["http:v2", "GET" if request.method == "HEAD" else request.method, host]
    parts += [request.url.path, query]
    for component in components:
        if isinstance(component, bool) or not isinstance(component, str | int):
            raise TypeError(
                f"build_cache_key components must be str or int, got {type(component).__name__}"
            )
        parts.append(str(component))
    return "|".join(p.replace("\\", "\\\\").replace("|", "\\|") for p in parts)


def _is_async_callable(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    method = type(func).__dict__.get("__call__")
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(method)


def _vary_names(vary: Sequence[str] | None) -> tuple[str, ...]:
    if vary is None:
        return ()
    if isinstance(vary, str | bytes) or not isinstance(vary, Sequence):
        raise CacheXError("vary must be a list of header names, not a single string")
    for name in vary:
        if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
            raise CacheXError(f"vary names header fields; {name!r} is not one")
    return tuple(vary)


def cache(
    ttl: int | timedelta | None = None,
    stale_ttl: int | timedelta | None = None,
    *,
    stale: Literal["error", "revalidate"] | None = None,
    no_cache: bool = False,
    no_store: bool = False,
    public: bool = False,
    private: bool = False,
    immutable: bool = False,
    must_revalidate: bool = False,
    key_builder: CacheKeyBuilder | None = None,
    fail_open: bool = True,
    cache_authorized: bool = False,
    vary: Sequence[str] | None = None,
    sort_query: bool | None = None,
    coalesce: bool = False,
    debug_header: bool = False,
) -> Callable[[F], F]:
    """Caches a FastAPI route's response (place it under the route decorator), with
    fastapi-cachex's arguments (see the module docstring for how each maps)."""
    ttl_s = validate_ttl(ttl, "ttl")
    stale_s = validate_ttl(stale_ttl, "stale_ttl")
    if stale is not None and stale_s is None:
        raise CacheXError("stale_ttl must be set if stale is used")
    if stale_s is not None and stale is None:
        # fastapi-cachex raises here; oxicache reads stale_ttl alone as the usual case.
        stale = "revalidate"
    if stale not in (None, "error", "revalidate"):
        raise CacheXError(f"stale must be 'error' or 'revalidate', got {stale!r}")
    if public and private:
        raise CacheXError("public and private are mutually exclusive")
    for name, flag in (("coalesce", coalesce), ("debug_header", debug_header)):
        if not isinstance(flag, bool):
            raise CacheXError(f"{name} must be a bool, got {type(flag).__name__}")
    if coalesce and not no_store and (private or no_cache or not ttl_s):
        raise CacheXError(
            "coalesce needs a positive ttl and cannot be combined with private or no_cache"
        )
    if sort_query is not None:
        if not isinstance(sort_query, bool):
            raise CacheXError(f"sort_query must be a bool, got {type(sort_query).__name__}")
        if key_builder is not None:
            raise CacheXError("sort_query applies to the default key builder only")
    if key_builder is not None and _is_async_callable(key_builder):
        raise CacheXError("key_builder must be a sync callable returning a str")
    vary_names = _vary_names(vary)
    if any(n.lower() == "cookie" for n in vary_names):
        warnings.warn(
            "cache vary on Cookie: every distinct Cookie header gets its own entry",
            UserWarning,
            stacklevel=2,
        )
    if no_store:
        ignored = [
            name
            for name, value in (
                ("ttl", ttl_s),
                ("stale", stale),
                ("stale_ttl", stale_s),
                ("no_cache", no_cache),
                ("public", public),
                ("private", private),
                ("immutable", immutable),
                ("must_revalidate", must_revalidate),
                ("coalesce", coalesce),
            )
            if value is not None and value is not False
        ]
        if ignored:
            warnings.warn(f"cache no_store ignores {', '.join(ignored)}", UserWarning, stacklevel=2)

    directives = []
    if no_cache:
        directives.append("no-cache")
    if must_revalidate:
        directives.append("must-revalidate")

    def decorate(func: F) -> F:
        if no_store:
            return cast(F, _uncached(func, "no-store", replace=True))
        if not ttl_s:
            # fastapi-cachex stores nothing without a positive ttl; it sends the directives.
            header = []
            if ttl_s == 0:
                header.append("max-age=0")
            header += [d for d, on in (("public", public), ("private", private)) if on]
            if immutable:
                header.append("immutable")
            if stale is not None and stale_s is not None:
                kind = "while-revalidate" if stale == "revalidate" else "if-error"
                header.append(f"stale-{kind}={stale_s}")
            header += directives
            return cast(F, _uncached(func, ", ".join(header) or None, replace=False, etag=True))
        builder = None
        if key_builder is not None:
            builder = _adapt(key_builder)
        inner = oxicache_cache(
            ttl=ttl_s,
            key_builder=builder,
            vary=vary_names,
            public=public,
            private=private,
            immutable=immutable,
            stale_while_revalidate=stale_s if stale == "revalidate" else None,
            stale_if_error=stale_s if stale == "error" else None,
            cache_control=", ".join(directives) or None,
            per_user=True if cache_authorized else None,
        )(func)
        private_cache_control = ", ".join(
            ["private", f"max-age={ttl_s}", *(["immutable"] if immutable else []), *directives]
        )
        wrapper = _watched(
            inner,
            sort_query=key_builder is None and sort_query is not False,
            key_builder=key_builder,
            ttl=ttl_s,
            private_cache_control=private_cache_control,
        )
        _invalidation.register(wrapper, custom_key=key_builder is not None)
        return cast(F, wrapper)

    return decorate


def _adapt(key_builder: CacheKeyBuilder) -> Callable[[Request | None, dict[str, Any]], Any]:
    def build(request: Request | None, arguments: dict[str, Any]) -> str:
        if request is None:
            raise CacheXError("fastapi-cachex key builders take the request")
        key = key_builder(request)
        if not isinstance(key, str):
            raise CacheXError(f"key_builder must return a str, got {type(key).__name__}")
        _invalidation.saw(key, request.url.path)
        return key

    return build


def _sorted_query(query: bytes) -> bytes:
    """``query`` with its parameters stably sorted by (decoded) name, as fastapi-cachex's
    ``sort_query`` does; empty segments dropped."""
    parts = [p for p in query.split(b"&") if p]
    parts.sort(key=lambda p: unquote_to_bytes(p.split(b"=", 1)[0].replace(b"+", b" ")))
    return b"&".join(parts)


def _watched(
    inner: Callable[..., Any],
    *,
    sort_query: bool,
    key_builder: CacheKeyBuilder | None,
    ttl: int,
    private_cache_control: str,
) -> Callable[..., Any]:
    """``inner`` (an oxicache-cached endpoint) with what fastapi-cachex adds around the
    engine: the keys answered are noted (for ``clear_pattern``), and the responses stored
    (for the monitoring routes), the fallback backend is registered, the query is keyed
    sorted (``sort_query``), and a response answered uncached because the request carried
    credentials says ``private``."""
    state = getattr(inner, "__oxicache__")  # noqa: B009
    request_name = state.plan.request_param or "oxicache_request__"

    async def watched(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.get(request_name)
        key = None
        if isinstance(request, Request):
            get_backend_or_fallback()
            query = request.scope.get("query_string", b"")
            if sort_query and b"&" in query:
                ordered = _sorted_query(query)
                if ordered != query:
                    # A copy of the scope (the caller's stays as sent); state is shared.
                    scope = {**request.scope, "query_string": ordered}
                    request = kwargs[request_name] = Request(scope, request.receive)
            if key_builder is None:
                key = build_cache_key(request, sort_query=False)
                _invalidation.saw(key, request.url.path)
        result = inner(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if (
            isinstance(request, Request)
            and isinstance(result, Response)
            and "; stored" in result.headers.get("cache-status", "")
        ):
            if key is None and key_builder is not None:
                key = key_builder(request)
            if isinstance(key, str):
                _note(request, result, key, ttl, watched)
        if (
            isinstance(result, Response)
            and "detail=credentials" in result.headers.get("cache-status", "")
            and "cache-control" not in result.headers
        ):
            result.headers["Cache-Control"] = private_cache_control
        return result

    functools.update_wrapper(watched, inner)
    watched.__signature__ = inspect.signature(inner)  # type: ignore[attr-defined]
    return watched


def _note(request: Request, response: Response, key: str, ttl: int, route: Any) -> None:
    body = getattr(response, "body", b"")
    body = body if isinstance(body, bytes) else b""
    _records.note(
        _records.Record(
            cache_key=key,
            method="GET" if request.method == "HEAD" else request.method,
            host=(request.headers.get("host") or "unknown").lower(),
            path=request.url.path,
            query=request.url.query,
            etag=response.headers.get("etag", ""),
            size=len(body),
            preview=body[:100],
            media_type=(response.headers.get("content-type") or "").split(";")[0] or None,
            expiry=time.time() + ttl,
            route=id(route),
        )
    )


def _is_response_param(param: inspect.Parameter, hints: dict[str, Any]) -> bool:
    if isinstance(param.default, DependsParam):
        return False
    annotation = hints.get(param.name, param.annotation)
    if get_origin(annotation) is Annotated:
        annotation, *meta = get_args(annotation)
        if any(isinstance(m, DependsParam) for m in meta):
            return False
    return isinstance(annotation, type) and issubclass(annotation, Response)


def _etag_of(body: bytes) -> str:
    digest = hashlib.blake2b(body, digest_size=16).digest()
    return 'W/"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against each listed tag."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


def _uncached(
    func: Callable[..., Any], header: str | None, *, replace: bool, etag: bool = False
) -> Callable[..., Any]:
    """The handler run on every request, nothing stored, with ``Cache-Control: header``
    (``replace``: over the handler's own; else only when it sent none). With ``etag``, a
    2xx response with a body gets an ETag of its bytes, and a matching ``If-None-Match``
    a 304, as fastapi-cachex does on routes without a positive ``ttl``."""
    signature = inspect.signature(func)
    try:
        hints = inspect.get_annotations(func, eval_str=True)
    except Exception:
        hints = {}
    params = list(signature.parameters.values())
    own = next((p.name for p in params if _is_response_param(p, hints)), None)
    own_request = next(
        (
            p.name
            for p in params
            if isinstance(hints.get(p.name, p.annotation), type)
            and issubclass(hints.get(p.name, p.annotation), Request)
        ),
        None,
    )
    is_async = inspect.iscoroutinefunction(func)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        sub = kwargs.get(own) if own is not None else kwargs.pop(_RESPONSE, None)
        request = kwargs.pop(_REQUEST, None) if own_request is None else kwargs.get(own_request)
        if is_async:
            value = await func(*args, **kwargs)
        else:
            value = await run_in_threadpool(func, *args, **kwargs)
        if not isinstance(request, Request):
            return value
        response = await render(request, value, sub if isinstance(sub, Response) else None, True)
        if header is not None and (replace or "cache-control" not in response.headers):
            response.headers["Cache-Control"] = header
        response.headers[STATE.settings.header_name] = "BYPASS"
        body = getattr(response, "body", None)
        if (
            etag
            and request.method in ("GET", "HEAD")
            and 200 <= response.status_code < 300
            and isinstance(body, bytes)
            and "set-cookie" not in response.headers
        ):
            tag = response.headers.get("etag") or _etag_of(body)
            response.headers["ETag"] = tag
            client_tags = request.headers.get("if-none-match")
            if client_tags is not None and _matches(client_tags, tag):
                kept = ("cache-control", "etag", "vary", "expires", "content-location", "date")
                not_modified = Response(status_code=304)
                for name, value_ in response.headers.items():
                    if name in kept:
                        not_modified.headers[name] = value_
                return not_modified
        return response

    functools.update_wrapper(wrapper, func)
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    extra = []
    if own_request is None:
        extra.append(
            inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        )
    if own is None:
        extra.append(
            inspect.Parameter(_RESPONSE, inspect.Parameter.KEYWORD_ONLY, annotation=Response)
        )
    params[at:at] = extra
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper

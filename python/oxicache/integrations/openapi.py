"""What ``@cache`` adds to a route, in the app's OpenAPI schema (``app.openapi()``, ``/docs``).

A cached route answers more than its handler does: a ``304 Not Modified`` to a conditional
request, the ``ETag``, ``Last-Modified``, ``Cache-Control``, ``Age``, ``Vary``, ``X-Cache`` and
``Cache-Status`` response headers, and it reads the ``If-None-Match``, ``If-Modified-Since`` and
``Cache-Control`` request headers. :func:`document` writes those into each cached operation of
a schema, so that generated clients and the ``/docs`` page show them.

It only adds: a response, a header or a parameter the app declared itself (``responses=``,
``openapi_extra=``, a ``Header()`` parameter) is kept as it is, and a route without ``@cache``
(or with ``@cache(openapi=False)``) is left exactly as FastAPI wrote it. The ``openapi``
setting (``configure(openapi=False)``) turns it off for every route.

How it reaches the schema: FastAPI builds it in ``app.openapi()``, which an app may replace
with its own function (FastAPI's documented way to customise the schema). :func:`install`
wraps whatever ``app.openapi`` is at that moment and documents what it returns, in place and
idempotently. oxicache installs it by itself on the FastAPI apps it sees: the ones visible
where ``@cache`` is applied (the module's ``app = FastAPI()``), the app given to
:func:`oxicache.lifespan` at startup, and the app serving the first request to a cached route.
An app whose ``openapi`` is replaced later, or whose routers are decorated in other modules and
which runs without ``oxicache.lifespan``, calls :func:`install` itself (or :func:`document`
from its own ``openapi`` function).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from ..runtime import STATE

__all__ = ["document", "install"]

#: Set on the ``openapi`` function :func:`install` puts on an app.
_MARK = "__oxicache_openapi__"

#: The methods whose responses ``@cache`` answers (RFC 9111 §3: only GET, and HEAD from it).
_CACHED_METHODS = ("get", "head")


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


def _request_parameters(honour_no_cache: bool) -> list[dict[str, Any]]:
    """The request headers a cached route honours (RFC 9110 §13.1, RFC 9111 §5.2.1)."""
    no_cache = (
        "`no-cache` runs the handler again and stores the new response"
        if honour_no_cache
        else "`no-cache` is ignored (this server does not let clients force recomputation)"
    )
    return [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": (
                "Entity tags from earlier `ETag` headers (a list, or `*`), compared weakly:"
                " when one matches, the answer is `304 Not Modified` without a body"
                " (RFC 9110 §13.1.2)."
            ),
            "schema": {"type": "string"},
        },
        {
            "name": "If-Modified-Since",
            "in": "header",
            "required": False,
            "description": (
                "An HTTP date: when the response has not changed since, the answer is"
                " `304 Not Modified` without a body. Ignored when `If-None-Match` is sent"
                " (RFC 9110 §13.1.3)."
            ),
            "schema": {"type": "string"},
        },
        {
            "name": "Cache-Control",
            "in": "header",
            "required": False,
            "description": (
                "Request directives (RFC 9111 §5.2.1): " + no_cache + "; `no-store`: the"
                " response is not stored; `max-age=N` and `min-fresh=N` bound the age of a"
                " stored answer; `only-if-cached`: `504 Gateway Timeout` when nothing is"
                " stored. Other directives are ignored."
            ),
            "schema": {"type": "string"},
        },
    ]


def _response_headers(label: str) -> dict[str, dict[str, Any]]:
    """The headers the cache puts on the responses it answers or stores."""
    return {
        "ETag": _header(
            "Entity tag of the stored response (weak unless configured otherwise): send it"
            " back in `If-None-Match` (RFC 9110 §8.8.3)."
        ),
        "Last-Modified": _header(
            "When the stored response was made, for `If-Modified-Since` (RFC 9110 §8.8.2)."
        ),
        "Cache-Control": _header(
            "How long (`max-age`) and by whom the response may be reused (RFC 9111 §5.2.2)."
        ),
        "Age": {
            "description": (
                "Seconds since the stored response was made; on answers from the cache only"
                " (RFC 9111 §5.1)."
            ),
            "schema": {"type": "integer", "minimum": 0},
        },
        "Vary": _header(
            "The request headers the stored response depends on (RFC 9110 §12.5.5); sent when"
            " the route's key includes some."
        ),
        label: _header(
            "`HIT` (answered from the cache), `MISS` (computed, and stored when allowed),"
            " `STALE` (a stale answer, RFC 5861) or `BYPASS` (the cache was not used)."
        ),
        "Cache-Status": _header(
            "What the cache did, as RFC 9211 defines it, e.g. `oxicache; hit; ttl=42` or"
            " `oxicache; fwd=miss; stored`; `detail=` says why a response was not stored."
        ),
    }


def _not_modified(label: str) -> dict[str, Any]:
    """The ``304`` a cached route answers to a matching conditional request."""
    every = _response_headers(label)
    return {
        "description": (
            "Not Modified: the stored response matches the request's `If-None-Match` (or"
            " has not changed since its `If-Modified-Since`); no content (RFC 9110 §15.4.5)."
        ),
        "headers": {
            name: every[name]
            for name in (
                "ETag",
                "Last-Modified",
                "Cache-Control",
                "Age",
                "Vary",
                label,
                "Cache-Status",
            )
        },
    }


def _has(names: Iterable[str], name: str) -> bool:
    lowered = name.lower()
    return any(n.lower().replace("_", "-") == lowered for n in names)


def _document_operation(operation: dict[str, Any], statuses: Iterable[int]) -> None:
    """Adds the cache's parameters, headers and ``304`` to one operation, keeping what the
    app declared."""
    settings = STATE.settings
    label = settings.header_name
    parameters = operation.setdefault("parameters", [])
    declared = [str(p.get("name", "")) for p in parameters if p.get("in") == "header"]
    for parameter in _request_parameters(settings.honor_request_no_cache):
        if not _has(declared, parameter["name"]):
            parameters.append(parameter)
    responses = operation.setdefault("responses", {})
    for status in statuses:
        response = responses.get(str(status))
        if not isinstance(response, dict):
            continue  # a status the route does not declare: FastAPI does not show it either
        headers = response.setdefault("headers", {})
        for name, header in _response_headers(label).items():
            if not _has(headers, name):
                headers[name] = header
    if "304" not in responses:
        # In status order, as FastAPI writes them (after 200, before 4xx).
        after = [code for code in responses if code > "304"]
        responses["304"] = _not_modified(label)
        for code in after:
            responses[code] = responses.pop(code)


def document(schema: dict[str, Any], routes: Iterable[Any]) -> dict[str, Any]:
    """Adds what ``@cache`` does to each cached GET/HEAD operation of ``schema`` (an OpenAPI
    document FastAPI made from ``routes``, usually ``app.routes``), in place; returns it.

    Idempotent: documenting a schema twice adds nothing the second time. Does nothing when
    the ``openapi`` setting is off; skips routes decorated with ``@cache(openapi=False)``."""
    if not STATE.settings.openapi:
        return schema
    paths = schema.get("paths")
    if not isinstance(paths, dict):
        return schema
    for route in _flattened(routes):
        cached = getattr(getattr(route, "endpoint", None), "__oxicache__", None)
        if cached is None or not cached.options.openapi:
            continue
        item = paths.get(getattr(route, "path_format", None))
        if not isinstance(item, dict):
            continue  # not in the schema (include_in_schema=False, a mount)
        for method in getattr(route, "methods", None) or ():
            operation = item.get(method.lower())
            if method.lower() in _CACHED_METHODS and isinstance(operation, dict):
                _document_operation(operation, cached.options.status_codes)
    return schema


def _flattened(routes: Iterable[Any]) -> Iterable[Any]:
    """Each route as FastAPI puts it in the schema: through included routers, with their
    prefixes (newer FastAPI keeps an included router whole and walks it with
    ``iter_route_contexts``; older versions copied its routes into the app's list)."""
    walk = getattr(sys.modules.get("fastapi.routing"), "iter_route_contexts", None)
    return routes if walk is None else walk(list(routes))


def install(app: Any) -> None:
    """Makes ``app.openapi()`` (a FastAPI app) document what ``@cache`` adds: wraps the
    ``openapi`` function the app has now (FastAPI's own, or one the app set) so that what it
    returns goes through :func:`document`. Installed once; a later call does nothing, unless
    the app replaced its ``openapi`` since (then that function is wrapped)."""
    current: Callable[[], dict[str, Any]] | None = getattr(app, "openapi", None)
    if current is None or not callable(current) or getattr(current, _MARK, False):
        return
    if not hasattr(app, "openapi_schema"):
        return  # not a FastAPI app

    def openapi() -> dict[str, Any]:
        return document(current(), app.routes)

    setattr(openapi, _MARK, True)
    openapi.__doc__ = getattr(current, "__doc__", None)
    app.openapi = openapi


def install_on(values: Iterable[Any]) -> None:
    """:func:`install` on each FastAPI app among ``values`` (what the code applying ``@cache``
    can see). Nothing when FastAPI was never imported."""
    fastapi = sys.modules.get("fastapi")
    app_class = getattr(fastapi, "FastAPI", None)
    if app_class is None:
        return
    for value in values:
        if isinstance(value, app_class):
            install(value)

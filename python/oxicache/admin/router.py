"""Admin routes to mount in a FastAPI app: the operations of ``python -m oxicache`` over HTTP,
for this app's processes (their in-process store included), behind a dependency you give::

    app.include_router(oxicache.admin_router(dependencies=[Depends(require_admin)]))

=======  ===========================  ============================================================
GET      ``/oxicache/stats``          :func:`oxicache.stats` of the process that answers
GET      ``/oxicache/contents``       entries and bytes per route in the backend (a scan)
GET      ``/oxicache/inspect?url=``   what the backend holds for a URL (``show_body=true``: bodies)
POST     ``/oxicache/invalidate``     ``?route=`` / ``path=`` / ``tag=`` / ``namespace=``
POST     ``/oxicache/clear``          every entry, in memory and in the backend
=======  ===========================  ============================================================

These routes can empty the cache and show what it holds, so the router refuses to be built
without a dependency (:class:`~oxicache.ConfigError` naming the fix). With several processes
and no shared backend, ``stats``, ``invalidate`` and ``clear`` reach the process that answers
only. Every answer says ``Cache-Control: no-store``, so no cache in front keeps it.

Status codes: ``404`` nothing stored for the URL; ``422`` a request that says nothing to
invalidate or combines a tag with other targets; ``501`` the backend cannot list its keys (or
there is none, for ``contents`` and ``inspect``); ``503`` the backend did not apply an
invalidation (down or too slow).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..exceptions import ConfigError
from . import operations

__all__ = ["router"]

_NO_STORE = {"Cache-Control": "no-store"}


def _answer(status: int, content: Any) -> Any:
    from fastapi.responses import JSONResponse

    if dataclasses.is_dataclass(content) and not isinstance(content, type):
        content = dataclasses.asdict(content)
    return JSONResponse(content, status_code=status, headers=_NO_STORE)


def _check(dependencies: Sequence[Any] | None) -> list[Any]:
    from fastapi import params

    fix = (
        "oxicache.admin_router() needs a dependency that protects it, such as"
        " admin_router(dependencies=[Depends(require_admin)]): its routes can empty the cache"
        " and show what it holds"
    )
    if dependencies is None or isinstance(dependencies, str | bytes) or not dependencies:
        raise ConfigError(fix)
    found = list(dependencies)
    for dependency in found:
        if not isinstance(dependency, params.Depends) or dependency.dependency is None:
            raise ConfigError(f"{fix}; got {dependency!r}, which is not Depends(some_function)")
    return found


def router(
    *,
    dependencies: Sequence[Any] | None = None,
    prefix: str = "/oxicache",
    tags: Sequence[str] = ("oxicache",),
    include_in_schema: bool = True,
) -> Any:
    """An ``APIRouter`` with the admin routes (see the module docstring), each behind
    ``dependencies`` (required: at least one ``Depends(...)``, which should refuse anyone who
    may not administer the cache). Needs FastAPI (``oxicache[fastapi]``)."""
    try:
        from fastapi import APIRouter
    except ImportError:  # pragma: no cover - FastAPI is the extra of this feature
        raise ImportError(
            "oxicache.admin_router() needs FastAPI: pip install 'oxicache[fastapi]'"
        ) from None
    checked = _check(dependencies)
    api = APIRouter(
        prefix=prefix,
        dependencies=checked,
        tags=list(tags),
        include_in_schema=include_in_schema,
    )

    @api.get("/stats", summary="Counters of the process that answers")
    async def stats() -> Any:
        from .. import stats as process_stats

        return _answer(200, process_stats())

    @api.get("/contents", summary="Entries and bytes per route in the backend")
    async def contents() -> Any:
        try:
            return _answer(200, await operations.backend_contents())
        except operations.NotSupported as exc:
            return _answer(501, {"detail": str(exc)})

    @api.get("/inspect", summary="What the backend holds for a URL")
    async def inspect(url: str, show_body: bool = False) -> Any:
        try:
            entries = await operations.inspect_url(url, show_body=show_body)
        except operations.NotSupported as exc:
            return _answer(501, {"detail": str(exc)})
        except ConfigError as exc:
            return _answer(422, {"detail": str(exc)})
        found = [dataclasses.asdict(e) for e in entries]
        for entry in found:
            if entry["body"] is not None:
                entry["body"] = entry["body"].decode("utf-8", "replace")
        return _answer(200 if found else 404, {"url": url, "entries": found})

    @api.post("/invalidate", summary="Drop the entries of a route, path, tag or namespace")
    async def invalidate(
        route: str | None = None,
        path: str | None = None,
        tag: str | None = None,
        namespace: str | None = None,
    ) -> Any:
        try:
            done = await operations.apply_invalidation(
                route=route, path=path, tag=tag, namespace=namespace
            )
        except operations.NotSupported as exc:
            return _answer(501, {"detail": str(exc)})
        except ConfigError as exc:
            return _answer(422, {"detail": str(exc)})
        return _answer(200 if done.applied else 503, done)

    @api.post("/clear", summary="Drop every entry")
    async def clear() -> Any:
        done = await operations.apply_clear()
        return _answer(200 if done.applied else 503, done)

    return api

"""The armed lookup (``RouteCache.arm`` / ``lookup_call``): once Python's checks passed for the
route serving a function, its calls are looked up in one call to the engine. Whatever those
checks decide must still be decided for every call: another route or inclusion serving the
function, ``oxicache.bypass()``, settings changed by ``configure()``."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request

import oxicache
from oxicache import _core, cache


def _counted_app() -> tuple[FastAPI, list[int]]:
    runs: list[int] = []
    app = FastAPI()

    def staff(request: Request, x_staff: str | None = Header(None)) -> None:
        if x_staff:
            oxicache.bypass(request, "staff")

    @app.get("/items/{item_id}", dependencies=[Depends(staff)])
    @cache(ttl=60)
    async def item(item_id: int) -> dict[str, int]:
        runs.append(item_id)
        return {"id": item_id, "run": len(runs)}

    return app, runs


async def test_an_armed_route_still_honours_a_bypass_asked_by_a_dependency(client: Any) -> None:
    app, runs = _counted_app()
    async with client(app) as c:
        assert (await c.get("/items/1")).headers["x-cache"] == "MISS"
        assert (await c.get("/items/1")).headers["x-cache"] == "HIT"  # the armed path
        skipped = await c.get("/items/1", headers={"x-staff": "1"})
        assert skipped.headers["x-cache"] == "BYPASS"
        assert "staff" in skipped.headers["cache-status"]
        assert (await c.get("/items/1")).headers["x-cache"] == "HIT"
    assert runs == [1, 1]


async def test_settings_changed_after_arming_are_obeyed(client: Any) -> None:
    app, runs = _counted_app()
    async with client(app) as c:
        await c.get("/items/2")
        assert (await c.get("/items/2")).headers["x-cache"] == "HIT"
        oxicache.configure(bypass_header="x-skip-cache")
        await c.get("/items/2")  # (configure() may start a new store: fill it again)
        assert (await c.get("/items/2")).headers["x-cache"] == "HIT"
        skipped = await c.get("/items/2", headers={"x-skip-cache": "yes"})
        assert skipped.headers["x-cache"] == "BYPASS"
        oxicache.configure(enabled=False)
        before = len(runs)
        for _ in range(3):
            off = await c.get("/items/2")
            assert off.headers["x-cache"] == "BYPASS"
            assert "detail=disabled" in off.headers["cache-status"]
        assert len(runs) == before + 3  # every call ran the handler


async def test_another_inclusion_of_the_function_is_checked_before_it_is_answered(
    client: Any,
) -> None:
    """One router included twice: the second inclusion adds a dependency (an authorization
    check). Its requests are not answered by the armed path of the first: they run the
    dependency, and their answers are marked private (RFC 9111 §5.2.2.7)."""
    router = APIRouter()

    @router.get("/report")
    @cache(ttl=60)
    async def report() -> dict[str, str]:
        return {"report": "r"}

    def token(x_token: str | None = Header(None)) -> None:
        if x_token != "ok":
            raise HTTPException(401)

    app = FastAPI()
    app.include_router(router, prefix="/open")
    app.include_router(router, prefix="/guarded", dependencies=[Depends(token)])
    async with client(app) as c:
        for _ in range(3):
            assert (await c.get("/open/report")).status_code == 200
        assert (await c.get("/guarded/report")).status_code == 401
        allowed = await c.get("/guarded/report", headers={"x-token": "ok"})
        assert allowed.status_code == 200
        assert "private" in allowed.headers["cache-control"]


def test_arm_once_and_look_up_only_the_armed_route() -> None:
    app = FastAPI()

    @app.get("/a")
    @cache(ttl=60)
    async def a(q: int = 0) -> dict[str, int]:
        return {"q": q}

    cached = a.__oxicache__  # type: ignore[attr-defined]
    rc = cached.route_cache()
    route, other = object(), object()
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/a",
        "raw_path": b"/a",
        "query_string": b"q=1",
        "headers": [(b"host", b"t")],
        "route": route,
    }
    lookup: Callable[..., Any] = rc.lookup_call
    assert lookup(scope, {"q": 1}) is None  # nothing armed
    assert rc.arm(route, None, ["q"]) is True
    assert rc.arm(other, None, ["q"]) is False  # once per compiled cache
    assert isinstance(lookup(scope, {"q": 1}), _core.Pending)  # armed: a miss
    assert lookup({**scope, "route": other}, {"q": 1}) is None
    assert lookup({**scope, "fastapi": {"effective_route_context": object()}}, {"q": 1}) is None
    assert lookup({**scope, "oxicache.bypass": "staff"}, {"q": 1}) is None


async def test_an_app_built_in_a_factory_is_freed_once_dropped(client: Any) -> None:
    """The decorator remembers the route it checked, and its armed cache the route it answers
    for; a route holds its app. Both are held weakly, so an app made by a factory (per test,
    per tenant) is freed once nothing else holds it."""
    app, _ = _counted_app()
    async with client(app) as c:
        await c.get("/items/3")
        assert (await c.get("/items/3")).headers["x-cache"] == "HIT"  # armed
    gone = weakref.ref(app)
    del app, c
    gc.collect()
    assert gone() is None

"""``oxicache.admin_router()``: the operations of the command line over HTTP, mounted in a real
app, behind the dependency the app gives (and refused without one)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException

import oxicache
from oxicache import ConfigError, admin_router, cache
from oxicache.backends import remote
from tests.python.servers import RedisServer

TOKEN = {"X-Admin-Token": "let-me-in"}


async def require_admin(x_admin_token: Annotated[str | None, Header()] = None) -> None:
    if x_admin_token != TOKEN["X-Admin-Token"]:
        raise HTTPException(status_code=403, detail="admins only")


def app_with_admin() -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    @cache(ttl=60, namespace="catalog")
    async def items(page: int = 1) -> dict[str, int]:
        return {"page": page}

    app.include_router(admin_router(dependencies=[Depends(require_admin)]))
    app.state.items_label = items.__oxicache__.label  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize("dependencies", [None, [], (), "require_admin", [require_admin]])
def test_building_it_without_a_dependency_is_refused_naming_the_fix(dependencies: Any) -> None:
    with pytest.raises(ConfigError, match=r"dependencies=\[Depends\(require_admin\)\]"):
        admin_router(dependencies=dependencies)


async def test_the_dependency_guards_every_route(client: Any) -> None:
    app = app_with_admin()
    async with client(app) as c:
        for method, path in [
            ("GET", "/oxicache/stats"),
            ("GET", "/oxicache/contents"),
            ("GET", "/oxicache/inspect?url=/items"),
            ("POST", "/oxicache/invalidate?namespace=catalog"),
            ("POST", "/oxicache/clear"),
        ]:
            assert (await c.request(method, path)).status_code == 403, path


async def test_in_process_stats_and_invalidation(client: Any) -> None:
    app = app_with_admin()
    async with client(app) as c:
        await c.get("/items")
        assert (await c.get("/items")).headers["x-cache"] == "HIT"
        stats = await c.get("/oxicache/stats", headers=TOKEN)
        assert stats.status_code == 200
        assert stats.headers["cache-control"] == "no-store"  # never kept by a cache in front
        assert stats.json()["store"]["hits"] >= 1
        label = app.state.items_label
        done = await c.post(
            "/oxicache/invalidate", params={"route": label, "namespace": "catalog"}, headers=TOKEN
        )
        assert done.status_code == 200 and done.json()["applied"] is True
        assert (await c.get("/items")).headers["x-cache"] == "MISS"
        nothing = await c.post("/oxicache/invalidate", headers=TOKEN)
        assert nothing.status_code == 422 and "say what to invalidate" in nothing.json()["detail"]
        assert (await c.post("/oxicache/clear", headers=TOKEN)).status_code == 200
        assert (await c.get("/items")).headers["x-cache"] == "MISS"
        # Nothing to list without a backend: the store is the process's own.
        listing = await c.get("/oxicache/contents", headers=TOKEN)
        assert listing.status_code == 501 and "no backend" in listing.json()["detail"]


@pytest.fixture
async def on_redis(redis_server: RedisServer) -> AsyncIterator[str]:
    prefix = f"adm{uuid.uuid4().hex[:8]}"
    oxicache.configure(redis_server.url, prefix=prefix)
    try:
        yield prefix
    finally:
        await remote.close_backend()


async def test_contents_and_inspect_on_redis(client: Any, on_redis: str) -> None:
    app = app_with_admin()
    async with client(app) as c:
        for page in (1, 2):
            await c.get("/items", params={"page": page})
        guard = remote.get_backend()
        assert guard is not None
        await guard.drain()
        contents = (await c.get("/oxicache/contents", headers=TOKEN)).json()
        assert contents["entries"] == 2 and contents["prefix"] == on_redis
        assert contents["routes"][0]["route"] == app.state.items_label

        found = await c.get("/oxicache/inspect", params={"url": "/items"}, headers=TOKEN)
        assert found.status_code == 200
        entries = found.json()["entries"]
        assert len(entries) == 2 and all(e["body"] is None for e in entries)
        bodies = await c.get(
            "/oxicache/inspect", params={"url": "/items", "show_body": "true"}, headers=TOKEN
        )
        assert sorted(e["body"] for e in bodies.json()["entries"]) == ['{"page":1}', '{"page":2}']
        missing = await c.get("/oxicache/inspect", params={"url": "/none"}, headers=TOKEN)
        assert missing.status_code == 404 and missing.json()["entries"] == []

        done = await c.post("/oxicache/invalidate", params={"path": "/items"}, headers=TOKEN)
        assert done.status_code == 200
        assert (await c.get("/oxicache/contents", headers=TOKEN)).json()["entries"] == 0

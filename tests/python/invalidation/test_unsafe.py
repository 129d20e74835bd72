"""``@invalidates``: RFC 9111 §4.4 for apps that cache with ``@cache`` only."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from oxicache import cache, invalidates


def make_app() -> tuple[FastAPI, dict[str, int]]:
    app = FastAPI()
    versions = {"1": 1, "2": 1}

    @app.get("/items/{item_id}")
    @cache(ttl=60)
    async def read(item_id: str) -> dict[str, int]:
        return {"version": versions[item_id]}

    @app.put("/items/{item_id}")
    @invalidates()
    async def update(item_id: str) -> dict[str, bool]:
        versions[item_id] += 1
        return {"ok": True}

    @app.delete("/items/{item_id}")
    @invalidates()
    def delete(item_id: str) -> dict[str, bool]:  # sync handler: runs in the threadpool
        if item_id == "2":
            raise HTTPException(status_code=409)
        versions[item_id] += 1
        return {"ok": True}

    @app.post("/items/{item_id}/move")
    @invalidates()
    async def move(item_id: str, request: Request) -> JSONResponse:
        versions["2"] += 1
        return JSONResponse({"ok": True}, status_code=201, headers={"location": "/items/2"})

    return app, versions


async def test_a_successful_unsafe_request_drops_the_entries_of_its_uri(client) -> None:
    """RFC 9111 §4.4: after a non-error answer to an unsafe method, the URI's stored answers
    are not used again."""
    app, _ = make_app()
    async with client(app) as c:
        assert (await c.get("/items/1")).json() == {"version": 1}
        assert (await c.get("/items/1?with=query")).json() == {"version": 1}
        assert (await c.get("/items/1")).headers["x-cache"] == "HIT"
        assert (await c.put("/items/1")).status_code == 200
        after = await c.get("/items/1")
        after_query = await c.get("/items/1?with=query")
        other = await c.get("/items/2")
    assert after.json() == after_query.json() == {"version": 2}
    assert after.headers["x-cache"] == "MISS"
    assert other.json() == {"version": 1}


async def test_an_error_answer_invalidates_nothing(client) -> None:
    app, _ = make_app()
    async with client(app) as c:
        await c.get("/items/2")
        assert (await c.delete("/items/2")).status_code == 409
        again = await c.get("/items/2")
    assert again.headers["x-cache"] == "HIT"


async def test_location_on_the_same_origin_is_invalidated_too(client) -> None:
    """RFC 9111 §4.4: the Location and Content-Location URIs are invalidated when they share
    the request's origin."""
    app, _ = make_app()
    async with client(app) as c:
        await c.get("/items/2")
        moved = await c.post("/items/1/move")
        after = await c.get("/items/2")
    assert moved.status_code == 201
    assert after.json() == {"version": 2} and after.headers["x-cache"] == "MISS"


async def test_sync_unsafe_handlers_work(client) -> None:
    app, _ = make_app()
    async with client(app) as c:
        await c.get("/items/1")
        assert (await c.delete("/items/1")).json() == {"ok": True}
        assert (await c.get("/items/1")).json() == {"version": 2}


async def test_unsafe_requests_invalidate_the_remote_backend_too(client) -> None:
    """With a backend, the entry lives there as well: ``@invalidates()`` must drop it there (it
    dropped only the in-process copy, and the next GET was a HIT on the backend's old entry)."""

    import oxicache
    from oxicache.backends import MemoryBackend

    oxicache.configure(MemoryBackend())
    try:
        app, _ = make_app()
        async with client(app) as c:
            await c.get("/items/1")
            guard = oxicache.remote.get_backend()
            assert guard is not None
            await guard.drain()  # the entry is written after the response
            assert (await c.get("/items/1")).headers["x-cache"] == "HIT"
            await c.put("/items/1")
            after = await c.get("/items/1")
        assert after.json() == {"version": 2} and after.headers["x-cache"] == "MISS"
    finally:
        oxicache.configure("memory://")

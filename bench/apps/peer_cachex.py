"""fastapi-cachex 0.5.1 (``import fastapi_cachex``) on memory, redis or memcached.

Wired as its docs show: ``BackendProxy.set(backend)`` at startup, ``@cache(ttl=...)`` under the
route decorator, defaults kept. BENCH_VARIANT=coalesce turns on its opt-in miss coalescing on
/items (the stampede phase runs that variant too)."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi_cachex import BackendProxy, cache

from apps.common import (
    BACKEND,
    RUNS,
    TTL,
    VARIANT,
    Item,
    control_routes,
    current_user,
    load_page,
    memcached_location,
    new_session_id,
    redis_location,
    who,
)


def make_backend():
    if BACKEND == "memory":
        from fastapi_cachex.backends import MemoryBackend

        return MemoryBackend()
    if BACKEND == "redis":
        from fastapi_cachex.backends import AsyncRedisCacheBackend

        host, port, db = redis_location()
        return AsyncRedisCacheBackend(host=host, port=port, db=db)
    if BACKEND == "memcached":
        from fastapi_cachex.backends import MemcachedBackend

        host, port = memcached_location()
        return MemcachedBackend(servers=[f"{host}:{port}"])
    raise SystemExit(f"fastapi-cachex: no backend {BACKEND!r}")


@asynccontextmanager
async def lifespan(app: FastAPI):
    BackendProxy.set(make_backend())
    yield


app = FastAPI(lifespan=lifespan)
control_routes(app, "fastapi-cachex")


@app.get("/items")
@cache(ttl=TTL, coalesce=VARIANT == "coalesce")
async def items(page: int = 1) -> list[Item]:
    return await load_page(page)


@app.get("/me/dep")
@cache(ttl=TTL)
async def me_dep(v: int = 0, user: str = Depends(current_user)) -> dict:
    RUNS["me_dep"] += 1
    return {"user": user, "v": v}


@app.get("/me/req")
@cache(ttl=TTL)
async def me_req(request: Request, v: int = 0) -> dict:
    RUNS["me_req"] += 1
    return {"user": who(request.headers), "v": v}


@app.get("/cookie")
@cache(ttl=TTL)
async def cookie(response: Response, v: int = 0) -> dict:
    RUNS["cookie"] += 1
    sid = new_session_id()
    response.set_cookie("sid", sid)
    return {"sid": sid, "v": v}

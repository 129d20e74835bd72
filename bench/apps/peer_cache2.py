"""fastapi-cache2 0.2.2 (``import fastapi_cache``) on memory, redis or memcached.

Wired as its README shows: ``FastAPICache.init(backend, prefix=...)`` in the lifespan and
``@cache(expire=...)`` under the route decorator; the decorator injects Request/Response."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi_cache import FastAPICache
from fastapi_cache.decorator import cache

from apps.common import (
    BACKEND,
    REDIS_URL,
    RUNS,
    TTL,
    Item,
    control_routes,
    current_user,
    load_page,
    memcached_location,
    new_session_id,
    who,
)


def make_backend():
    if BACKEND == "memory":
        from fastapi_cache.backends.inmemory import InMemoryBackend

        return InMemoryBackend()
    if BACKEND == "redis":
        from fastapi_cache.backends.redis import RedisBackend
        from redis import asyncio as aioredis

        return RedisBackend(aioredis.from_url(REDIS_URL))
    if BACKEND == "memcached":
        import aiomcache
        from fastapi_cache.backends.memcached import MemcachedBackend

        return MemcachedBackend(aiomcache.Client(*memcached_location()))
    raise SystemExit(f"fastapi-cache2: no backend {BACKEND!r}")


@asynccontextmanager
async def lifespan(app: FastAPI):
    FastAPICache.init(make_backend(), prefix="bench", expire=TTL)
    yield


app = FastAPI(lifespan=lifespan)
control_routes(app, "fastapi-cache2")


@app.get("/items")
@cache(expire=TTL)
async def items(page: int = 1) -> list[Item]:
    return await load_page(page)


@app.get("/me/dep")
@cache(expire=TTL)
async def me_dep(v: int = 0, user: str = Depends(current_user)) -> dict:
    RUNS["me_dep"] += 1
    return {"user": user, "v": v}


@app.get("/me/req")
@cache(expire=TTL)
async def me_req(request: Request, v: int = 0) -> dict:
    RUNS["me_req"] += 1
    return {"user": who(request.headers), "v": v}


@app.get("/cookie")
@cache(expire=TTL)
async def cookie(response: Response, v: int = 0) -> dict:
    RUNS["cookie"] += 1
    sid = new_session_id()
    response.set_cookie("sid", sid)
    return {"sid": sid, "v": v}

"""fastapi-cachemate 0.1.1 (``import fastapi_cachemate``), redis only.

Wired as its README shows: a redis.asyncio client wrapped in RedisBackend, then
``CacheSetup.setup(backend, lock_manager=RedisLockManager(...))`` in the lifespan and
``@cache_response(ttl=...)`` under the route. Defaults kept (zlib for values of 1 KiB and more,
early-refresh lock)."""

from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Request, Response
from fastapi_cachemate import CacheSetup
from fastapi_cachemate.cache import cache_response
from fastapi_cachemate.core.backends.redis import RedisBackend
from fastapi_cachemate.core.locks.redis import RedisLockManager

from apps.common import (
    BACKEND,
    RUNS,
    TTL,
    Item,
    control_routes,
    current_user,
    load_page,
    new_session_id,
    redis_location,
    who,
)


@asynccontextmanager
async def lifespan(app: FastAPI):
    if BACKEND != "redis":
        raise SystemExit(f"fastapi-cachemate: no backend {BACKEND!r}")
    host, port, db = redis_location()
    backend = RedisBackend(client=aioredis.Redis(host=host, port=port, db=db))
    CacheSetup.setup(backend=backend, lock_manager=RedisLockManager(backend=backend))
    try:
        yield
    finally:
        await CacheSetup.close()


app = FastAPI(lifespan=lifespan)
control_routes(app, "fastapi-cachemate")


@app.get("/items")
@cache_response(ttl=TTL)
async def items(page: int = 1) -> list[Item]:
    return await load_page(page)


@app.get("/me/dep")
@cache_response(ttl=TTL)
async def me_dep(v: int = 0, user: str = Depends(current_user)) -> dict:
    RUNS["me_dep"] += 1
    return {"user": user, "v": v}


@app.get("/me/req")
@cache_response(ttl=TTL)
async def me_req(request: Request, v: int = 0) -> dict:
    RUNS["me_req"] += 1
    return {"user": who(request.headers), "v": v}


@app.get("/cookie")
@cache_response(ttl=TTL)
async def cookie(response: Response, v: int = 0) -> dict:
    RUNS["cookie"] += 1
    sid = new_session_id()
    response.set_cookie("sid", sid)
    return {"sid": sid, "v": v}

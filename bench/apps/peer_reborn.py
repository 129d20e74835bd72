"""fastapi-redis-cache-reborn 0.3.1 (``import fastapi_redis_cache``), redis only.

Wired as its README shows: ``FastApiRedisCache().init(host_url=...)`` at startup and
``@cache(expire=...)`` under the route; handlers take ``request: Request, response: Response``
(the decorator finds them by these names; they enable its ETag/304 and no-cache handling).
Its logger announces every hit and miss at INFO; it is set to WARNING here, as uvicorn's access
log is off for every target. It calls the synchronous redis client from async handlers."""

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi_redis_cache import FastApiRedisCache, cache

from apps.common import (
    BACKEND,
    REDIS_URL,
    RUNS,
    TTL,
    Item,
    control_routes,
    current_user,
    load_page,
    new_session_id,
    who,
)

logging.getLogger("fastapi_redis_cache.client").setLevel(logging.WARNING)


@asynccontextmanager
async def lifespan(app: FastAPI):
    if BACKEND != "redis":
        raise SystemExit(f"fastapi-redis-cache-reborn: no backend {BACKEND!r}")
    FastApiRedisCache().init(host_url=REDIS_URL, prefix="bench")
    yield


app = FastAPI(lifespan=lifespan)
control_routes(app, "fastapi-redis-cache-reborn")


@app.get("/items")
@cache(expire=TTL)
async def items(request: Request, response: Response, page: int = 1) -> list[Item]:
    return await load_page(page)


@app.get("/me/dep")
@cache(expire=TTL)
async def me_dep(
    request: Request, response: Response, v: int = 0, user: str = Depends(current_user)
) -> dict:
    RUNS["me_dep"] += 1
    return {"user": user, "v": v}


@app.get("/me/req")
@cache(expire=TTL)
async def me_req(request: Request, response: Response, v: int = 0) -> dict:
    RUNS["me_req"] += 1
    return {"user": who(request.headers), "v": v}


@app.get("/cookie")
@cache(expire=TTL)
async def cookie(request: Request, response: Response, v: int = 0) -> dict:
    RUNS["cookie"] += 1
    sid = new_session_id()
    response.set_cookie("sid", sid)
    return {"sid": sid, "v": v}

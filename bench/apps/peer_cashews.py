"""cashews 7.6.0 on memory (``mem://``, an LRU of 1000 entries by default) or redis.

Plain: ``cache.setup(url)`` and ``@cache(ttl=...)`` on the endpoints with the default key.
BENCH_VARIANT=mw adds the FastAPI middlewares of ``cashews.contrib.fastapi``
(CacheEtagMiddleware, CacheRequestControlMiddleware, in its README's order) and
``cache_control_ttl`` for the TTL: ETag/304, Cache-Control and request no-cache handling."""

from cashews import cache
from fastapi import Depends, FastAPI, Request, Response

from apps.common import (
    BACKEND,
    REDIS_URL,
    RUNS,
    TTL,
    VARIANT,
    Item,
    control_routes,
    current_user,
    load_page,
    new_session_id,
    who,
)

WITH_MW = VARIANT == "mw"

if BACKEND == "memory":
    cache.setup("mem://")
elif BACKEND == "redis":
    cache.setup(REDIS_URL)
else:
    raise SystemExit(f"cashews: no backend {BACKEND!r}")

app = FastAPI()
control_routes(app, "cashews+mw" if WITH_MW else "cashews")

if WITH_MW:
    from cashews.contrib.fastapi import (
        CacheEtagMiddleware,
        CacheRequestControlMiddleware,
        cache_control_ttl,
    )

    app.add_middleware(CacheEtagMiddleware)
    app.add_middleware(CacheRequestControlMiddleware)
    ENTRY_TTL = cache_control_ttl(default=TTL)
else:
    ENTRY_TTL = TTL


@app.get("/items")
@cache(ttl=ENTRY_TTL)
async def items(page: int = 1) -> list[Item]:
    return await load_page(page)


@app.get("/me/dep")
@cache(ttl=ENTRY_TTL)
async def me_dep(v: int = 0, user: str = Depends(current_user)) -> dict:
    RUNS["me_dep"] += 1
    return {"user": user, "v": v}


@app.get("/me/req")
@cache(ttl=ENTRY_TTL)
async def me_req(request: Request, v: int = 0) -> dict:
    RUNS["me_req"] += 1
    return {"user": who(request.headers), "v": v}


@app.get("/cookie")
@cache(ttl=ENTRY_TTL)
async def cookie(response: Response, v: int = 0) -> dict:
    RUNS["cookie"] += 1
    sid = new_session_id()
    response.set_cookie("sid", sid)
    return {"sid": sid, "v": v}

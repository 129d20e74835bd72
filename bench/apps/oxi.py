"""oxicache on its in-process store: ``@cache(ttl=...)`` under ``@app.get``, nothing else.

Written the way the README shows, with no option chosen for the benchmark: /me/dep is keyed
per user by the dependency; /me/req reads the identity from request.headers inside the handler,
which the key cannot see, and the checks phase reports what oxicache does with it.
BENCH_VARIANT=capped sets the store's byte cap from BENCH_OXI_MAX_SIZE (the growth phase uses it
to see the cap held while entries are evicted). BENCH_BACKEND=redis or memcached puts the entries
on that server (the URL form of the README), and BENCH_VARIANT=two-tier adds the in-process
tier in front of it (issue 6)."""

import os

from fastapi import Depends, FastAPI, Request, Response

import oxicache
from apps.common import (
    BACKEND,
    MEMCACHED,
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
from oxicache import cache

if VARIANT == "capped":
    oxicache.configure(max_size=int(os.environ["BENCH_OXI_MAX_SIZE"]))
if BACKEND == "redis":
    oxicache.configure(REDIS_URL, two_tier=VARIANT == "two-tier")
elif BACKEND == "memcached":
    oxicache.configure(f"memcached://{MEMCACHED}", two_tier=VARIANT == "two-tier")
elif BACKEND != "memory":
    raise SystemExit(f"oxicache: no backend {BACKEND!r}")


def store_figures() -> dict:
    store = oxicache.get_store()
    store.run_pending_tasks()  # weighted_size is approximate until maintenance has run
    return {
        "oxicache": oxicache.stats(),
        "store": {
            "weighted_size": store.weighted_size,
            "entries": len(store),
            "max_bytes": store.max_bytes,
        },
    }


app = FastAPI()
control_routes(app, "oxicache", store_figures)


@app.get("/items")
@cache(ttl=TTL)
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

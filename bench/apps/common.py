"""The workload every benchmark app serves, and the routes the runner talks to.

Endpoint contract (the runner uses nothing else):

  GET /items?page=N   the cached route: a JSON list of 20 ``Item`` (about 2.2 KB). The handler
                      sleeps BENCH_WORK_MS (default 5 ms) to stand for I/O, builds the models and
                      counts itself in RUNS["items"], so the runner can tell hits from misses.
  GET /me/dep?v=N     cached; answers with the caller's identity, taken from a dependency that
                      reads Authorization / X-Api-Key.
  GET /me/req?v=N     cached; the same identity read from request.headers inside the handler.
  GET /cookie?v=N     cached; sets a new ``sid`` cookie on the injected Response and echoes it.
  GET /_stats         never cached: pid, handler run counters, backend, lib (+ library extras).
  GET /_health        never cached: "ok" once the app is serving.

Environment (set by bench/run.py):
  BENCH_BACKEND     memory | redis | memcached | none
  BENCH_REDIS_URL   redis://127.0.0.1:6391/<db>
  BENCH_MEMCACHED   127.0.0.1:11291
  BENCH_TTL         seconds an entry lives (default 3600: the hot key never expires in a run)
  BENCH_WORK_MS     simulated handler latency in ms (default 5)
  BENCH_VARIANT     a library-specific switch (coalesce, mw, capped)

App modules must not use ``from __future__ import annotations``: fastapi-redis-cache-reborn
recognises Request/Response parameters by comparing the annotation objects themselves.

The workload is the one of ../shared/bench-peers (same model, fields and values), so figures
can be set beside that harness's results.
"""

import asyncio
import gc
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, TypeAdapter

BACKEND = os.environ.get("BENCH_BACKEND", "memory")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6391/0")
MEMCACHED = os.environ.get("BENCH_MEMCACHED", "127.0.0.1:11291")
TTL = int(os.environ.get("BENCH_TTL", "3600"))
WORK_MS = float(os.environ.get("BENCH_WORK_MS", "5"))
VARIANT = os.environ.get("BENCH_VARIANT", "")
PER_PAGE = 20

RUNS = {"items": 0, "me_dep": 0, "me_req": 0, "cookie": 0}


class Item(BaseModel):
    id: int
    name: str
    price: float
    in_stock: bool
    tags: list[str]
    description: str


_ITEMS = TypeAdapter(list[Item])


def page_items(page: int) -> list[Item]:
    first = page * PER_PAGE
    items = []
    for n in range(first, first + PER_PAGE):
        items.append(
            Item(
                id=n,
                name=f"Item {n}",
                price=round((n * 7919 % 100000) / 100, 2),
                in_stock=n % 3 != 0,
                tags=[f"tag{n % 7}", f"cat{n % 11}"],
                description=f"lorem ipsum {n}",
            )
        )
    return items


def page_bytes(page: int) -> bytes:
    """The body FastAPI sends for ``-> list[Item]`` (pydantic's compact JSON)."""
    return _ITEMS.dump_json(page_items(page))


async def load_page(page: int) -> list[Item]:
    """The work behind GET /items: counted, a simulated wait, then the models."""
    RUNS["items"] += 1
    if WORK_MS > 0:
        await asyncio.sleep(WORK_MS / 1000)
    return page_items(page)


def who(headers: Any) -> str:
    """The caller's identity from a mapping of request headers."""
    token = headers.get("authorization")
    if token:
        return f"auth:{token}"
    key = headers.get("x-api-key")
    return f"apikey:{key}" if key else "anonymous"


async def current_user(
    authorization: str | None = Header(None), x_api_key: str | None = Header(None)
) -> str:
    """An ordinary auth dependency: its value depends on the request's headers."""
    return who({"authorization": authorization, "x-api-key": x_api_key})


def new_session_id() -> str:
    return uuid4().hex


def redis_location() -> tuple[str, int, int]:
    """(host, port, db) of BENCH_REDIS_URL."""
    u = urlsplit(REDIS_URL)
    return u.hostname or "127.0.0.1", u.port or 6379, int(u.path.strip("/") or 0)


def memcached_location() -> tuple[str, int]:
    host, _, port = MEMCACHED.rpartition(":")
    return host, int(port)


def control_routes(app: FastAPI, lib: str, extra: Callable[[], dict] | None = None) -> None:
    """/_stats and /_health; ``extra`` adds library-specific figures to /_stats."""

    @app.get("/_stats")
    async def _stats() -> JSONResponse:
        doc = {
            "pid": os.getpid(),
            "counters": RUNS,
            "backend": BACKEND,
            "lib": lib,
            "variant": VARIANT,
            # collections so far per generation (young, middle, full): see apps/gc_tuned.py
            "gc": [g["collections"] for g in gc.get_stats()],
        }
        if extra is not None:
            doc.update(extra())
        return JSONResponse(doc)

    @app.get("/_health")
    async def _health() -> PlainTextResponse:
        return PlainTextResponse("ok")

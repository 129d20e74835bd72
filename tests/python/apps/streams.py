"""An app behind ``CacheMiddleware`` for the streaming and single-flight tests, served by a real
uvicorn (httpx's ASGI transport reads a whole response before handing it over).

- ``/events``: server-sent events, ``Cache-Control: max-age=60`` (which must not matter): the
  first event at once, then one every 30 s.
- ``/slow-no-store``: answers after ``SLOW`` seconds with ``no-store``.
- ``/big``: a cacheable 2 MiB body with its length, after ``BIG_DELAY`` seconds.
- ``/pid`` and ``/runs``: for the harness.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import Response, StreamingResponse

import oxicache
from oxicache import CacheMiddleware

SLOW = 2.0
BIG_DELAY = 0.5
BIG = b"x" * (2 * 1024 * 1024)

# Waiters would give up on a stuck leader only after this: long, so a queue shows.
oxicache.configure(lock_timeout=60)
app = FastAPI()
app.add_middleware(CacheMiddleware)
runs: dict[str, int] = {}


def ran(name: str) -> None:
    runs[name] = runs.get(name, 0) + 1


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/runs")
async def get_runs() -> dict[str, int]:
    return runs


@app.get("/events")
async def events() -> StreamingResponse:
    ran("events")

    async def stream() -> AsyncIterator[bytes]:
        n = 0
        while True:
            yield f"data: event {n}\n\n".encode()
            n += 1
            await asyncio.sleep(30)

    headers = {"cache-control": "max-age=60"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@app.get("/slow-no-store")
async def slow_no_store() -> Response:
    ran("slow-no-store")
    await asyncio.sleep(SLOW)
    return Response(b"done", headers={"cache-control": "no-store"})


@app.get("/big")
async def big() -> Response:
    ran("big")
    await asyncio.sleep(BIG_DELAY)
    return Response(BIG, headers={"cache-control": "max-age=60"})

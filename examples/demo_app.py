"""The demo app: a FastAPI service whose endpoints are cached by oxicache on its in-memory default.

Run it yourself with ``uvicorn examples.demo_app:app``; ``make demo`` starts it and drives it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

from oxicache import cache

app = FastAPI(title="oxicache demo")

#: How many times each handler really ran (the cache answers the rest).
handler_runs: dict[str, int] = {}


class Item(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]


def _ran(name: str) -> None:
    handler_runs[name] = handler_runs.get(name, 0) + 1


@app.get("/items")
@cache(ttl=60)
async def list_items(page: int = 1) -> list[Item]:
    """A page of 20 items; the sleep stands for a database query."""
    _ran("list_items")
    await asyncio.sleep(0.05)
    start = (page - 1) * 20
    return [
        Item(id=i, name=f"item {i}", price=i * 1.25, tags=["demo", f"page-{page}"])
        for i in range(start, start + 20)
    ]


@app.get("/report")
@cache(ttl="1h30m")
def report() -> dict[str, float]:
    """A slow synchronous endpoint: it runs in the threadpool, hits do not."""
    _ran("report")
    import time

    time.sleep(0.1)
    return {"revenue": 1234.5, "margin": 0.42}


async def current_user(authorization: Annotated[str | None, Header()] = None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(status_code=401, detail="missing token")
    return authorization.removeprefix("Bearer ")


@app.get("/me")
@cache(ttl=60)
async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
    """Keyed per user: the value from the dependency is part of the key."""
    _ran("me")
    await asyncio.sleep(0.02)
    return {"user": user}


@app.get("/stats")
async def stats() -> dict[str, int]:
    return handler_runs

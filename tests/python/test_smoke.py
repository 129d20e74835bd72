"""The first thing a user does: a route, a miss, a hit."""

from __future__ import annotations

from fastapi import FastAPI

from oxicache import cache


async def test_miss_then_hit_replays_identical_bytes(client) -> None:
    app = FastAPI()
    runs = 0

    @app.get("/items")
    @cache(ttl=60)
    async def items() -> list[int]:
        nonlocal runs
        runs += 1
        return [1, 2, 3]

    async with client(app) as c:
        first = await c.get("/items")
        second = await c.get("/items")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.content == second.content == b"[1,2,3]"
    assert runs == 1

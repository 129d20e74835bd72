"""Refresh ahead of expiry (``refresh_ahead``): near expiry, one request refreshes the entry
inside itself while the others keep getting the entry, which is still fresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI

import oxicache
from oxicache import ConfigError, cache
from oxicache.backends import remote


async def test_one_request_refreshes_while_the_others_get_the_entry(client, clock) -> None:
    app = FastAPI()
    runs = 0
    release = asyncio.Event()
    opened: list[str] = []

    async def session() -> AsyncIterator[str]:
        # A yield dependency: the refresh must run while it is open (inside the request).
        opened.append("open")
        yield "db"
        opened.append("closed")

    @app.get("/hot")
    @cache(ttl=120, refresh_ahead=100)
    async def hot(db: str = Depends(session)) -> dict[str, int]:
        nonlocal runs
        runs += 1
        assert opened[-1] == "open"
        if runs > 1:
            await asyncio.wait_for(release.wait(), 30)
        return {"version": runs}

    async with client(app) as c:
        await c.get("/hot")
        # 5 s left of a 100 s window: each request refreshes with a chance of exp(-0.2), 82 %,
        # and the entry stays fresh however slow the machine is.
        clock.advance(115)
        refreshing = await _start_refresh(c, "/hot", lambda: runs)
        others = await asyncio.gather(*(c.get("/hot") for _ in range(10)))
        assert all(r.headers["x-cache"] == "HIT" and r.json() == {"version": 1} for r in others)
        release.set()
        refreshed = await asyncio.wait_for(refreshing, 30)
        after = await c.get("/hot")
    assert refreshed.headers["x-cache"] == "MISS" and refreshed.json() == {"version": 2}
    assert after.headers["x-cache"] == "HIT" and after.json() == {"version": 2}
    assert runs == 2


async def test_before_the_window_no_request_refreshes(client, clock) -> None:
    app = FastAPI()
    runs = 0

    @app.get("/x")
    @cache(ttl=60, refresh_ahead=10)
    async def x() -> dict[str, int]:
        nonlocal runs
        runs += 1
        return {"version": runs}

    async with client(app) as c:
        await c.get("/x")
        clock.advance(40)  # 20 s left
        answers = [await c.get("/x") for _ in range(100)]
    assert {r.headers["x-cache"] for r in answers} == {"HIT"} and runs == 1


async def test_a_failed_refresh_answers_with_the_entry(client, clock) -> None:
    app = FastAPI()
    runs = 0

    @app.get("/x")
    @cache(ttl=120, refresh_ahead=100)
    async def x() -> dict[str, int]:
        nonlocal runs
        runs += 1
        if runs > 1:
            raise RuntimeError("upstream down")
        return {"version": runs}

    async with client(app) as c:
        await c.get("/x")
        clock.advance(115)
        answers = [await c.get("/x") for _ in range(20)]
    assert runs > 1  # refreshes were tried, and failed
    assert all(r.status_code == 200 and r.json() == {"version": 1} for r in answers)


async def test_the_global_setting_applies_and_is_bounded_by_short_ttls(client, clock) -> None:
    oxicache.configure(refresh_ahead=300)
    app = FastAPI()
    runs = 0

    @app.get("/short")
    @cache(ttl=100)  # the 300 s window is longer than the TTL: the last 50 s instead
    async def short() -> dict[str, int]:
        nonlocal runs
        runs += 1
        return {"version": runs}

    async with client(app) as c:
        await c.get("/short")
        clock.advance(40)  # 60 s left
        early = [await c.get("/short") for _ in range(50)]
        assert runs == 1 and {r.headers["x-cache"] for r in early} == {"HIT"}
        clock.advance(55)  # 5 s left: 67 % a request
        for _ in range(50):
            await c.get("/short")
            if runs == 2:
                break
    assert runs == 2


def test_a_window_as_long_as_the_ttl_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"refresh_ahead=.* is not shorter than ttl"):
        cache(ttl=10, refresh_ahead="10s")
    with pytest.raises(ConfigError, match="refresh_ahead must be 0 or more seconds"):
        oxicache.configure(refresh_ahead=-1)


async def test_on_redis_the_refresh_is_written_and_the_others_read_the_entry(
    client, clock, redis_server
) -> None:
    redis_server.flushall()
    # A read past the default 5 ms deadline would be a miss, which waits for the refresh.
    oxicache.configure(redis_server.url, prefix="refresh-ahead", backend_timeout=2.0)
    app = FastAPI()
    runs = 0
    release = asyncio.Event()

    @app.get("/hot")
    @cache(ttl=120, refresh_ahead=100)
    async def hot() -> dict[str, int]:
        nonlocal runs
        runs += 1
        if runs > 1:
            await asyncio.wait_for(release.wait(), 30)
        return {"version": runs}

    async with client(app) as c:
        first = await c.get("/hot")
        assert first.headers["x-cache"] == "MISS"
        await _drain()  # the entry is in Redis
        clock.advance(115)
        refreshing = await _start_refresh(c, "/hot", lambda: runs)
        others = await asyncio.gather(*(c.get("/hot") for _ in range(5)))
        assert all(r.headers["x-cache"] == "HIT" and r.json() == {"version": 1} for r in others)
        release.set()
        refreshed = await asyncio.wait_for(refreshing, 30)
        await _drain()
        after = await c.get("/hot")
    assert refreshed.json() == {"version": 2}
    assert after.headers["x-cache"] == "HIT" and after.json() == {"version": 2}


async def _drain() -> None:
    backend = remote.get_backend()
    assert backend is not None
    await backend.drain()  # the writes done after the responses have reached Redis


async def _start_refresh(c: Any, path: str, runs: Callable[[], int]) -> asyncio.Future[Any]:
    """Requests ``path`` until one is drawn to refresh (the handler's second run starts, and
    waits); that request, still running."""
    for _ in range(50):  # 82 % a request: the chance that none of 50 is drawn is nil
        refreshing = asyncio.ensure_future(c.get(path))
        while not refreshing.done() and runs() < 2:  # a hit ends; a refresh waits
            await asyncio.sleep(0.01)
        if runs() == 2:
            return refreshing
    raise AssertionError("no request was drawn to refresh the entry")

"""Server-side stale serving for @cache routes (RFC 5861), tied to the emitted directives."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI, HTTPException

from oxicache import cache


def xc(r: httpx.Response) -> str:
    return r.headers["x-cache"]


async def test_stale_while_revalidate_answers_stale_and_refreshes_once(client, clock) -> None:
    """RFC 5861 §3: inside the window the stale entry answers at once while exactly one
    background refresh per key runs; the next request gets the refreshed entry."""
    app = FastAPI()
    runs = 0

    @app.get("/x")
    @cache(ttl=10, stale_while_revalidate=30)
    async def handler() -> dict[str, int]:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.02)
        return {"version": runs}

    async with client(app) as c:
        first = await c.get("/x")
        assert first.headers["cache-control"] == "max-age=10, stale-while-revalidate=30"
        clock.advance(15)
        stale = await asyncio.gather(*(c.get("/x") for _ in range(5)))
        assert all(xc(r) == "STALE" and r.json() == {"version": 1} for r in stale)
        assert "detail=stale-while-revalidate" in stale[0].headers["cache-status"]
        # The one background refresh ends (however slow the machine), then the next request.
        await asyncio.wait_for(asyncio.gather(*handler.__oxicache__._refreshes), 30)
        fresh = await c.get("/x")
    assert fresh.json() == {"version": 2} and xc(fresh) == "HIT"
    assert runs == 2


async def test_past_the_window_it_is_a_plain_miss(client, clock) -> None:
    app = FastAPI()
    runs = 0

    @app.get("/x")
    @cache(ttl=10, stale_while_revalidate=30)
    async def handler() -> dict[str, int]:
        nonlocal runs
        runs += 1
        return {"version": runs}

    async with client(app) as c:
        await c.get("/x")
        clock.advance(45)
        late = await c.get("/x")
    assert xc(late) == "MISS" and late.json() == {"version": 2}


async def test_stale_if_error_answers_stale_when_the_handler_fails(client, clock) -> None:
    """RFC 5861 §4: when the handler raises or answers 5xx inside the window, the stale
    entry answers; outside it, the error goes through."""
    app = FastAPI()
    fail = False

    @app.get("/x")
    @cache(ttl=10, stale_if_error=60)
    async def handler() -> dict[str, str]:
        if fail:
            raise HTTPException(status_code=503)
        return {"v": "good"}

    @app.get("/raise")
    @cache(ttl=10, stale_if_error=60)
    async def raising() -> dict[str, str]:
        if fail:
            raise RuntimeError("database down")
        return {"v": "good"}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await c.get("/x")
        await c.get("/raise")
        fail = True
        clock.advance(20)
        served = await c.get("/x")
        served_raise = await c.get("/raise")
        clock.advance(100)
        too_late = await c.get("/x")
    assert served.status_code == 200 and served.json() == {"v": "good"} and xc(served) == "STALE"
    assert "detail=stale-if-error" in served.headers["cache-status"]
    assert served_raise.status_code == 200 and served_raise.json() == {"v": "good"}
    assert too_late.status_code == 503


async def test_must_revalidate_forbids_stale_serving(client, clock) -> None:
    """RFC 9111 §5.2.2.2: must-revalidate forbids using a stale entry."""
    app = FastAPI()
    runs = 0

    @app.get("/x")
    @cache(ttl=10, stale_while_revalidate=30, cache_control="must-revalidate")
    async def handler() -> dict[str, int]:
        nonlocal runs
        runs += 1
        return {"version": runs}

    async with client(app) as c:
        await c.get("/x")
        clock.advance(15)
        again = await c.get("/x")
    assert xc(again) == "MISS" and again.json() == {"version": 2}

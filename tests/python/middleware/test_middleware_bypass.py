"""``CacheMiddleware`` honours the ``bypass_header`` setting and ``oxicache.bypass()`` called
by a middleware outside it: the app answers, nothing is read or stored, the answer is labelled
``BYPASS`` (RFC 9211 §2.2 ``fwd=bypass``)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import oxicache
from oxicache import CacheMiddleware


def _app() -> tuple[Any, list[int]]:
    runs: list[int] = []

    async def items(request: Request) -> JSONResponse:
        runs.append(1)
        return JSONResponse({"run": len(runs)}, headers={"Cache-Control": "max-age=60"})

    inner = Starlette(routes=[Route("/items", items)])
    cached = CacheMiddleware(inner)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        # A middleware outside CacheMiddleware: staff requests are answered live.
        if any(k == b"x-role" and v == b"staff" for k, v in scope.get("headers", ())):
            oxicache.bypass(scope, "staff")
        await cached(scope, receive, send)

    return outer, runs


async def test_the_bypass_header_skips_the_middleware(client) -> None:
    oxicache.configure(bypass_header="X-Cache-Bypass", bypass_value="s3cret")
    app, runs = _app()
    async with client(app) as c:
        skipped = await c.get("/items", headers={"x-cache-bypass": "s3cret"})
        first = await c.get("/items")
        hit = await c.get("/items")
        wrong = await c.get("/items", headers={"x-cache-bypass": "nope"})
    assert skipped.headers["x-cache"] == "BYPASS"
    assert skipped.headers["cache-status"] == "oxicache; fwd=bypass; detail=bypass-header"
    assert first.headers["x-cache"] == "MISS" and first.json() == {"run": 2}
    assert hit.headers["x-cache"] == "HIT" and wrong.headers["x-cache"] == "HIT"
    assert len(runs) == 2


async def test_a_switch_flipped_outside_skips_the_middleware(client) -> None:
    app, _ = _app()
    async with client(app) as c:
        await c.get("/items")
        staff = await c.get("/items", headers={"x-role": "staff"})
        other = await c.get("/items")
    assert staff.headers["x-cache"] == "BYPASS" and staff.json() == {"run": 2}
    assert staff.headers["cache-status"] == "oxicache; fwd=bypass; detail=staff"
    assert other.headers["x-cache"] == "HIT" and other.json() == {"run": 1}

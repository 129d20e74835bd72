"""Server-side bypass: the ``bypass_header`` setting and ``oxicache.bypass()`` make a request
answered uncached (no read, no write), labelled ``BYPASS`` (RFC 9211 §2.2 ``fwd=bypass``,
§2.8 ``detail``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import Depends, FastAPI, Request

import oxicache
from oxicache import ConfigError, cache


def _app() -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    runs: list[int] = []

    async def staff(request: Request) -> AsyncIterator[None]:
        if request.headers.get("x-role") == "staff":
            oxicache.bypass(request, "staff")
        yield

    @app.get("/items", dependencies=[Depends(staff)])
    @cache(ttl=60)
    async def items() -> dict[str, int]:
        runs.append(1)
        return {"run": len(runs)}

    return app, runs


async def test_the_bypass_header_with_its_value_skips_reading_and_storing(client) -> None:
    oxicache.configure(bypass_header="X-Cache-Bypass", bypass_value="s3cret")
    app, runs = _app()
    async with client(app) as c:
        skipped = await c.get("/items", headers={"x-cache-bypass": "s3cret"})
        first = await c.get("/items")  # nothing was stored by the bypassed request
        again = await c.get("/items", headers={"X-Cache-Bypass": "s3cret"})
        wrong = await c.get("/items", headers={"x-cache-bypass": "guess"})
    assert skipped.headers["x-cache"] == "BYPASS"
    assert skipped.headers["cache-status"] == "oxicache; fwd=bypass; detail=bypass-header"
    assert "etag" not in skipped.headers and "cache-control" not in skipped.headers
    assert first.headers["x-cache"] == "MISS" and first.json() == {"run": 2}
    assert again.headers["x-cache"] == "BYPASS" and again.json() == {"run": 3}
    assert wrong.headers["x-cache"] == "HIT" and wrong.json() == {"run": 2}
    assert len(runs) == 3


async def test_an_empty_bypass_value_accepts_any_value(client) -> None:
    oxicache.configure(bypass_header="X-Cache-Bypass")
    app, _ = _app()
    async with client(app) as c:
        await c.get("/items")
        r = await c.get("/items", headers={"x-cache-bypass": "1"})
    assert r.headers["x-cache"] == "BYPASS"


async def test_without_the_setting_the_header_means_nothing(client) -> None:
    app, _ = _app()
    async with client(app) as c:
        await c.get("/items")
        r = await c.get("/items", headers={"x-cache-bypass": "1"})
    assert r.headers["x-cache"] == "HIT"


async def test_a_dependency_bypasses_one_request_with_its_reason(client) -> None:
    app, runs = _app()
    async with client(app) as c:
        await c.get("/items")
        staff = await c.get("/items", headers={"x-role": "staff"})
        other = await c.get("/items")
    assert staff.headers["x-cache"] == "BYPASS" and staff.json() == {"run": 2}
    assert staff.headers["cache-status"] == "oxicache; fwd=bypass; detail=staff"
    assert other.headers["x-cache"] == "HIT" and other.json() == {"run": 1}
    assert len(runs) == 2


def test_mistakes_fail_when_made() -> None:
    with pytest.raises(ConfigError, match="bypass_header must be a header field name"):
        oxicache.configure(bypass_header="X Bypass")
    with pytest.raises(ConfigError, match="reason must be a token"):
        oxicache.bypass({"type": "http"}, "Staff User")
    with pytest.raises(ConfigError, match="takes the Request"):
        oxicache.bypass("not a request")

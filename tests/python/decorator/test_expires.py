"""``expires=True``: responses carry ``Expires`` (RFC 9111 §5.3), the time the entry's
freshness ends, on the miss and unchanged on hits and 304s (RFC 9110 §15.4.5)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from fastapi import FastAPI

import oxicache
from oxicache import cache


def _app(**options: object) -> FastAPI:
    app = FastAPI()

    @app.get("/x")
    @cache(ttl="1mo", **options)  # type: ignore[arg-type]
    async def x() -> dict[str, int]:
        return {"n": 1}

    return app


async def test_expires_is_the_end_of_freshness_on_every_answer(client) -> None:
    now = oxicache.get_store().now()
    async with client(_app(expires=True)) as c:
        miss = await c.get("/x")
        hit = await c.get("/x")
        not_modified = await c.get("/x", headers={"if-none-match": miss.headers["etag"]})
    expires = parsedate_to_datetime(miss.headers["expires"]).timestamp()
    assert abs(expires - (now + 30 * 86400)) < 5  # one month is 30 days
    assert miss.headers["cache-control"] == "max-age=2592000"
    assert hit.headers["x-cache"] == "HIT" and hit.headers["expires"] == miss.headers["expires"]
    assert not_modified.status_code == 304
    assert not_modified.headers["expires"] == miss.headers["expires"]


async def test_off_by_default_and_on_for_every_route_with_the_setting(client) -> None:
    async with client(_app()) as c:
        assert "expires" not in (await c.get("/x")).headers
    oxicache.configure(expires=True)
    oxicache.get_store().clear()
    async with client(_app()) as c:
        assert "expires" in (await c.get("/x")).headers


async def test_a_handlers_own_expires_is_kept(client) -> None:
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.get("/own")
    @cache(ttl=60, expires=True)
    async def own() -> JSONResponse:
        return JSONResponse({"n": 1}, headers={"Expires": "Thu, 01 Jan 2099 00:00:00 GMT"})

    async with client(app) as c:
        r = await c.get("/own")
    assert r.headers.get_list("expires") == ["Thu, 01 Jan 2099 00:00:00 GMT"]

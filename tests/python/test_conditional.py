"""Last-Modified and If-Modified-Since on @cache routes (RFC 9110 §8.8.2, §13.1.3, §13.2.2)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from oxicache import cache


def app_with(last_modified: str | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/x")
    @cache(ttl=60)
    async def handler() -> PlainTextResponse:
        headers = {"last-modified": last_modified} if last_modified else {}
        return PlainTextResponse("body", headers=headers)

    return app


async def test_last_modified_is_generated_when_the_handler_sets_none(client) -> None:
    """RFC 9110 §8.8.2: the cache states when the stored representation was made."""
    async with client(app_with()) as c:
        miss, hit = await c.get("/x"), await c.get("/x")
    assert miss.headers["last-modified"] == hit.headers["last-modified"]
    assert parsedate_to_datetime(hit.headers["last-modified"]).tzinfo is not None


async def test_the_handlers_last_modified_is_kept(client) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    async with client(app_with(date)) as c:
        miss, hit = await c.get("/x"), await c.get("/x")
    assert miss.headers["last-modified"] == hit.headers["last-modified"] == date


async def test_if_modified_since_answers_304_from_the_entry(client) -> None:
    """RFC 9110 §13.1.3: not modified since the given date → 304 without content."""
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    later = format_datetime(parsedate_to_datetime(date) + timedelta(days=1), usegmt=True)
    earlier = format_datetime(parsedate_to_datetime(date) - timedelta(days=1), usegmt=True)
    async with client(app_with(date)) as c:
        await c.get("/x")
        same = await c.get("/x", headers={"if-modified-since": date})
        after = await c.get("/x", headers={"if-modified-since": later})
        before = await c.get("/x", headers={"if-modified-since": earlier})
        junk = await c.get("/x", headers={"if-modified-since": "yesterday"})
    assert same.status_code == after.status_code == 304 and same.content == b""
    assert before.status_code == 200 and before.text == "body"
    assert junk.status_code == 200  # an invalid date is ignored (RFC 9110 §13.1.3)


async def test_if_none_match_wins_over_if_modified_since(client) -> None:
    """RFC 9110 §13.2.2: If-Modified-Since is evaluated only without If-None-Match."""
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    async with client(app_with(date)) as c:
        first = await c.get("/x")
        other = await c.get("/x", headers={"if-none-match": '"other"', "if-modified-since": date})
        same = await c.get(
            "/x", headers={"if-none-match": first.headers["etag"], "if-modified-since": "junk"}
        )
    assert other.status_code == 200 and same.status_code == 304

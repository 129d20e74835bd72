"""fastapi-cachemate 0.1.1's README as HTTP-level tests (its own tests replace its internal
helpers with mocks, so they say nothing about behaviour over HTTP).

Written against ``fastapi_cachemate``'s imports; ``tests/compat/run_cachemate_tests.py`` runs
them first against the real library (every test must pass there: they describe the peer),
then against ``oxicache.compat.fastapi_cachemate`` with only the imports rewritten. They need
a Redis server: ``CACHEMATE_REDIS_URL`` (the runner starts one).
"""

# No ``from __future__ import annotations``: fastapi-cachemate reads the handlers'
# annotations as objects (as the README's examples have them) to find the filters' fields.
import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
import redis.asyncio
from fastapi import Depends, FastAPI, Query, Request
from fastapi_cachemate import BaseCacheSettings, CacheSetup
from fastapi_cachemate.cache import cache_response, is_bypass
from fastapi_cachemate.core.backends.redis import RedisBackend
from fastapi_cachemate.core.locks.redis import RedisLockManager
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

URL = os.environ.get("CACHEMATE_REDIS_URL", "redis://127.0.0.1:6379/0")
STATUS = "x-cache-status"


class ApiCacheSettings(BaseCacheSettings):
    """The README's settings, with its bypass example."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    ttl_lock_seconds: int = 5
    buffer: float = 0.2
    bypass_header: str = "X-CACHE-BYPASS"
    bypass_value: str = "test"

    model_config = SettingsConfigDict(env_prefix="api_cache_")


class BlogPydanticFilter(BaseModel):
    blog_id: str | None = Field(None, description="blog id", alias="id")
    slug: str | None = Field(None, description="blog slug")
    page: int = Field(1, ge=1)
    max_page: int = Field(10, ge=1, le=100)

    model_config = ConfigDict(populate_by_name=True)


@dataclasses.dataclass
class BlogDataclassFilter:
    author: str | None = None
    year: int | None = None


def make_app(runs: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        client = redis.asyncio.Redis.from_url(URL)
        await client.flushdb()
        redis_backend = RedisBackend(client=client)
        try:
            CacheSetup.setup(
                backend=redis_backend,
                lock_manager=RedisLockManager(backend=redis_backend),
                settings=ApiCacheSettings(),
            )
            yield
        finally:
            await CacheSetup.close()

    app = FastAPI(lifespan=lifespan)

    async def bypass_authorized_request(request: Request) -> AsyncIterator[None]:
        """The README's per-request flag: authorized users skip cached responses."""
        if request.headers.get("authorization-user"):
            token = is_bypass.set(True)
            try:
                yield
            finally:
                is_bypass.reset(token)
        else:
            yield

    @app.get("/blogs/{blog_id}")
    @cache_response(ttl=300)
    async def get_blog_by_id(blog_id: int) -> dict[str, int]:
        runs.append(f"blog {blog_id}")
        return {"blog_id": blog_id}

    @app.get("/staff-aware/{blog_id}", dependencies=[Depends(bypass_authorized_request)])
    @cache_response(ttl=300)
    async def staff_aware(blog_id: int) -> dict[str, int]:
        runs.append(f"staff-aware {blog_id}")
        return {"blog_id": blog_id}

    @app.get("/blogs")
    @cache_response(ttl=300)
    async def get_blogs(filter_: Annotated[BlogPydanticFilter, Query()]) -> dict[str, Any]:
        runs.append("blogs")
        return filter_.model_dump()

    @app.get("/by-author")
    @cache_response(ttl=300)
    async def by_author(filter_: BlogDataclassFilter = Depends()) -> dict[str, Any]:  # noqa: B008
        runs.append("by-author")
        return dataclasses.asdict(filter_)

    @app.get("/slow")
    @cache_response(ttl=4)
    async def slow() -> dict[str, int]:
        runs.append("slow")
        await asyncio.sleep(1.0)
        return {"version": runs.count("slow")}

    return app


@asynccontextmanager
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    runs: list[str] = []
    app = make_app(runs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, runs


async def test_a_second_request_is_a_hit_with_max_age() -> None:
    async with served() as (c, runs):
        first = await c.get("/blogs/1")
        second = await c.get("/blogs/1")
    assert first.headers[STATUS] == "MISS" and first.json() == {"blog_id": 1}
    assert second.headers[STATUS] == "HIT" and second.json() == {"blog_id": 1}
    assert second.headers["cache-control"] == "max-age=300"
    assert runs == ["blog 1"]


async def test_each_path_is_its_own_entry() -> None:
    async with served() as (c, runs):
        await c.get("/blogs/1")
        other = await c.get("/blogs/2")
    assert other.headers[STATUS] == "MISS" and runs == ["blog 1", "blog 2"]


@pytest.mark.parametrize("directive", ["no-cache", "no-store"])
async def test_a_client_no_cache_or_no_store_skips_the_cache(directive: str) -> None:
    async with served() as (c, runs):
        await c.get("/blogs/1")
        skipped = await c.get("/blogs/1", headers={"Cache-Control": directive})
        after = await c.get("/blogs/1")
    assert skipped.headers[STATUS] == "NO_CACHE" and skipped.json() == {"blog_id": 1}
    assert after.headers[STATUS] == "HIT"
    assert runs == ["blog 1", "blog 1"]


async def test_the_configured_bypass_header_skips_the_cache() -> None:
    async with served() as (c, runs):
        bypassed = await c.get("/blogs/1", headers={"X-CACHE-BYPASS": "test"})
        first = await c.get("/blogs/1")  # the bypassed request stored nothing
        wrong = await c.get("/blogs/1", headers={"X-CACHE-BYPASS": "other"})
    assert bypassed.headers[STATUS] == "BYPASS"
    assert first.headers[STATUS] == "MISS" and wrong.headers[STATUS] == "HIT"
    assert runs == ["blog 1", "blog 1"]


async def test_the_is_bypass_flag_set_by_a_dependency_skips_the_cache() -> None:
    async with served() as (c, runs):
        await c.get("/staff-aware/1")
        staff = await c.get("/staff-aware/1", headers={"authorization-user": "ada"})
        anonymous = await c.get("/staff-aware/1")
    assert staff.headers[STATUS] == "BYPASS"
    assert anonymous.headers[STATUS] == "HIT"
    assert runs == ["staff-aware 1", "staff-aware 1"]


async def test_a_pydantic_filter_is_unpacked_into_the_key() -> None:
    async with served() as (c, runs):
        labels = [
            (await c.get(url)).headers[STATUS]
            for url in (
                "/blogs?id=7&page=2",
                "/blogs?page=2&id=7",  # the same filter
                "/blogs?id=7&page=2&utm_source=mail",  # not a field of the filter
                "/blogs?id=8&page=2",
                "/blogs?id=7&page=2&slug=hello",
            )
        ]
    assert labels == ["MISS", "HIT", "HIT", "MISS", "MISS"]
    assert runs.count("blogs") == 3


async def test_a_dataclass_filter_is_unpacked_into_the_key() -> None:
    async with served() as (c, runs):
        labels = [
            (await c.get(url)).headers[STATUS]
            for url in (
                "/by-author?author=ada&year=1843",
                "/by-author?year=1843&author=ada",
                "/by-author?author=ada&year=1843&junk=1",
                "/by-author?author=ada&year=1844",
            )
        ]
    assert labels == ["MISS", "HIT", "HIT", "MISS"]
    assert runs.count("by-author") == 2


async def test_a_hot_key_near_expiry_is_refreshed_while_others_get_the_cached_value() -> None:
    """The README's cache stampede mitigation: while a key is valid and near its expiry, one
    request refreshes it and the others keep the cached value; the key never goes cold."""
    async with served() as (c, _):
        first = await c.get("/slow")  # 1 s to compute, 4 s to live
        await asyncio.sleep(1.5)  # about 2.5 s left: inside the refresh window
        near = await c.get("/slow")
        await asyncio.sleep(2.8)  # the first entry has expired; a refreshed one has not
        later = await c.get("/slow")
    assert first.headers[STATUS] == "MISS"
    assert near.headers[STATUS] == "HIT" and near.json() == {"version": 1}
    assert later.headers[STATUS] == "HIT" and later.json() == {"version": 2}

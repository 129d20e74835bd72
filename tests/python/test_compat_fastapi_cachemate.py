"""``oxicache.compat.fastapi_cachemate``: fastapi-cachemate's surface, over HTTP, on Redis.

fastapi-cachemate's own tests mock its internals (they replace its load and save helpers), so
the runner ``tests/compat/run_cachemate_tests.py`` runs scenario tests written from its README
instead; these check the rest and the places where oxicache keeps its safer behaviour.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
import redis.asyncio
from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

import oxicache
from oxicache import ConfigError
from oxicache.compat.fastapi_cachemate import BaseCacheSettings, CacheSetup
from oxicache.compat.fastapi_cachemate.cache import cache_response, is_bypass
from oxicache.compat.fastapi_cachemate.core.backends.redis import RedisBackend
from oxicache.compat.fastapi_cachemate.core.locks.redis import RedisLockManager

STATUS = "x-cache-status"


class Settings(BaseCacheSettings):
    bypass_header: str = "X-CACHE-BYPASS"
    bypass_value: str | None = "test"
    buffer: float = 0.5
    max_planing_execution_time: int = 100_000


class BlogFilter(BaseModel):
    blog_id: str | None = Field(None, alias="id")
    slug: str | None = None
    page: int = Field(1, ge=1)

    model_config = ConfigDict(populate_by_name=True)


@dataclasses.dataclass
class Paging:
    size: int = 10


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    CacheSetup.reset()
    yield
    CacheSetup.reset()


def make_app(url: str, settings: BaseCacheSettings | None = None) -> tuple[FastAPI, list[str]]:
    runs: list[str] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        client = redis.asyncio.Redis.from_url(url)
        backend = RedisBackend(client=client)
        CacheSetup.setup(
            backend=backend,
            lock_manager=RedisLockManager(backend=backend),
            prefix="cachemate-test",
            settings=settings or Settings(),
        )
        try:
            yield
        finally:
            await CacheSetup.close()

    app = FastAPI(lifespan=lifespan)

    async def staff(request: Request) -> AsyncIterator[None]:
        if request.headers.get("x-role") == "staff":
            token = is_bypass.set(True)
            try:
                yield
            finally:
                is_bypass.reset(token)
        else:
            yield

    @app.get("/blogs/{blog_id}", dependencies=[Depends(staff)])
    @cache_response(ttl=300)
    async def blog(blog_id: int) -> dict[str, int]:
        runs.append(f"blog {blog_id}")
        return {"blog_id": blog_id}

    @app.get("/blogs")
    @cache_response(ttl=300)
    async def blogs(
        filter_: Annotated[BlogFilter, Query()], paging: Annotated[Paging, Depends()]
    ) -> dict[str, Any]:
        runs.append("blogs")
        return {**filter_.model_dump(), "size": paging.size}

    return app, runs


@pytest.fixture
def url(redis_server: Any) -> str:
    redis_server.flushall()
    return str(redis_server.url)


@asynccontextmanager
async def served(app: FastAPI, client: Any) -> AsyncIterator[Any]:
    async with app.router.lifespan_context(app), client(app) as c:
        yield c


async def test_the_readme_quick_start(client, url: str) -> None:
    app, runs = make_app(url)
    async with served(app, client) as c:
        miss = await c.get("/blogs/1")
        hit = await c.get("/blogs/1")
    assert miss.headers[STATUS] == "MISS" and hit.headers[STATUS] == "HIT"
    # private: the route has a dependency of its own (the staff check), which a cache in front
    # would not run.
    assert hit.headers["cache-control"] == "private, max-age=300"
    assert hit.json() == {"blog_id": 1}
    assert "x-cache" not in hit.headers and runs == ["blog 1"]


async def test_the_bypass_header_and_the_is_bypass_flag(client, url: str) -> None:
    app, runs = make_app(url)
    async with served(app, client) as c:
        await c.get("/blogs/1")
        header = await c.get("/blogs/1", headers={"X-CACHE-BYPASS": "test"})
        wrong = await c.get("/blogs/1", headers={"X-CACHE-BYPASS": "nope"})
        staff = await c.get("/blogs/1", headers={"x-role": "staff"})
    assert header.headers[STATUS] == "BYPASS" and wrong.headers[STATUS] == "HIT"
    assert staff.headers[STATUS] == "BYPASS"
    assert runs == ["blog 1"] * 3


async def test_no_bypass_header_without_a_value(client, url: str) -> None:
    app, _ = make_app(url, BaseCacheSettings())
    async with served(app, client) as c:
        await c.get("/blogs/1")
        r = await c.get("/blogs/1", headers={"X-BYPASS-CACHE": "anything"})
    assert r.headers[STATUS] == "HIT"
    assert oxicache.get_settings().bypass_header == ""


async def test_no_cache_and_no_store_requests_say_no_cache(client, url: str) -> None:
    app, runs = make_app(url)
    async with served(app, client) as c:
        await c.get("/blogs/1")
        labels = [
            (await c.get("/blogs/1", headers={"cache-control": d})).headers[STATUS]
            for d in ("no-cache", "no-store", "max-age=0, no-cache")
        ]
        after = await c.get("/blogs/1")
    assert labels == ["NO_CACHE"] * 3 and after.headers[STATUS] == "HIT"
    assert len(runs) == 4


async def test_filters_are_unpacked_into_the_key(client, url: str) -> None:
    app, runs = make_app(url)
    async with served(app, client) as c:
        labels = [
            (await c.get(u)).headers[STATUS]
            for u in (
                "/blogs?id=7&page=2",
                "/blogs?page=2&id=7&utm_source=mail",
                "/blogs?blog_id=7&page=2",  # populate_by_name: the field's name is read too
                "/blogs?id=7&page=2&size=5",  # the dataclass dependency's field
                "/blogs?id=8&page=2",
            )
        ]
    assert labels == ["MISS", "HIT", "MISS", "MISS", "MISS"]
    assert runs.count("blogs") == 4


async def test_buffer_refreshes_ahead_of_expiry_inside_one_request(client, url: str, clock) -> None:
    app, runs = make_app(url)
    async with served(app, client) as c:
        await c.get("/blogs/1")
        # buffer 0.5 of 300 s: the last 150 s; 10 s left draws a refresh 76 % of the time.
        clock.advance(290)
        for _ in range(50):
            r = await c.get("/blogs/1")
            if len(runs) == 2:
                break
    assert len(runs) == 2 and r.headers[STATUS] == "MISS"


async def test_setup_maps_the_settings(url: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    backend = RedisBackend(client=client)
    CacheSetup.setup(
        backend,
        RedisLockManager(backend, lock_ttl=7),
        prefix="mapped",
        settings=BaseCacheSettings(compression_mode="disabled", bypass_value="x"),
    )
    settings = oxicache.get_settings()
    assert settings.prefix == "mapped" and settings.lock_lease == 7.0
    assert settings.compress_threshold == sys.maxsize
    assert (settings.bypass_header, settings.bypass_value) == ("X-BYPASS-CACHE", "x")
    assert CacheSetup.bypass().value == "x" and CacheSetup.prefix() == "mapped"
    await CacheSetup.close()


async def test_its_backend_and_lock_manager_work_directly(url: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    backend = RedisBackend(client=client)
    assert await backend.set("k", b"v", ttl=60)
    left, value = await backend.get("k")
    assert value == b"v" and 55_000 < left <= 60_000
    first, second = RedisLockManager(backend), RedisLockManager(backend)
    assert await first.acquire("lock:k") and not await second.acquire("lock:k")
    assert not await second.release("lock:k") and await first.release("lock:k")
    assert await second.acquire("lock:k")
    await backend.close()


def test_mistakes_fail_at_setup() -> None:
    class Other(RedisBackend):
        pass

    with pytest.raises(ConfigError, match="give RedisBackend"):
        CacheSetup.setup(object(), object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="positive number of seconds"):
        cache_response(ttl=0)
    with pytest.raises(ConfigError, match="setup"):
        CacheSetup.backend()
    assert Other  # a subclass is a RedisBackend


async def test_a_refresh_window_never_reaches_the_ttl(client, url: str) -> None:
    from oxicache.compat.fastapi_cachemate.cache import refresh_window

    app, _ = make_app(url, Settings(buffer=3.0))
    async with served(app, client):
        assert refresh_window(10) == 5.0
        assert refresh_window(1000) == 100.0  # max_planing_execution_time
    await asyncio.sleep(0)

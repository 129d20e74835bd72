"""``oxicache.compat.fastapi_redis_cache``: fastapi-redis-cache-reborn's surface, over HTTP.

Its own tests run against it with ``tests/compat/run_redis_cache_tests.py``; these check the
rest (``ignore_arg_types``, ``tag``, the presets, Redis, the state before ``init``) and the
places where oxicache keeps its safer behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime

import pytest
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

import oxicache
from oxicache import ConfigError
from oxicache.compat.fastapi_redis_cache import (
    FastApiRedisCache,
    cache,
    cache_one_day,
    cache_one_hour,
    cache_one_minute,
    cache_one_month,
    cache_one_week,
    cache_one_year,
)
from oxicache.compat.fastapi_redis_cache.client import HTTP_TIME, RedisStatus
from oxicache.compat.fastapi_redis_cache.util import deserialize_json, serialize_json

HEADER = "x-fastapi-cache"


@pytest.fixture(autouse=True)
def _test_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[FastApiRedisCache]:
    monkeypatch.setenv("CACHE_ENV", "TEST")
    client = FastApiRedisCache()
    client.init(host_url="")
    yield client
    client.status = RedisStatus.NONE


class Session:
    """A resource a dependency hands the handler (left out of keys by type)."""

    def __init__(self, name: str) -> None:
        self.name = name


async def test_hit_and_miss_with_expires_and_etag(client) -> None:
    app = FastAPI()
    runs: list[int] = []

    @app.get("/items")
    @cache(expire=timedelta(minutes=5))
    async def items() -> dict[str, int]:
        runs.append(1)
        return {"n": len(runs)}

    async with client(app) as c:
        miss = await c.get("/items")
        hit = await c.get("/items")
        not_modified = await c.get("/items", headers={"if-none-match": miss.headers["etag"]})
    assert miss.headers[HEADER] == "Miss" and hit.headers[HEADER] == "Hit"
    assert "x-cache" not in hit.headers and hit.json() == {"n": 1}
    assert miss.headers["cache-control"] == "max-age=300"
    expires = datetime.strptime(hit.headers["expires"], HTTP_TIME).replace(tzinfo=UTC)
    assert hit.headers["expires"] == miss.headers["expires"]
    assert abs(expires.timestamp() - (oxicache.get_store().now() + 300)) < 5
    assert not_modified.status_code == 304 and not_modified.headers[HEADER] == "Hit"
    assert len(runs) == 1


async def test_the_presets_and_the_one_year_default(client) -> None:
    app = FastAPI()
    presets = {
        "default": (cache(), 365 * 86400),
        "minute": (cache_one_minute(), 60),
        "hour": (cache_one_hour(), 3600),
        "day": (cache_one_day(), 86400),
        "week": (cache_one_week(), 7 * 86400),
        "month": (cache_one_month(), 30 * 86400),
        "year": (cache_one_year(), 365 * 86400),
        "capped": (cache(expire=10 * 365 * 86400), 365 * 86400),
    }
    for name, (decorator, _) in presets.items():

        async def handler() -> dict[str, str]:
            return {"ok": "yes"}

        handler.__name__ = name
        app.get(f"/{name}")(decorator(handler))
    async with client(app) as c:
        for name, (_, seconds) in presets.items():
            r = await c.get(f"/{name}")
            assert r.headers["cache-control"] == f"max-age={seconds}", name
            expires = parsedate_to_datetime(r.headers["expires"]).timestamp()
            assert abs(expires - (oxicache.get_store().now() + seconds)) < 5, name


async def test_ignore_arg_types_leaves_those_parameters_out_of_the_key(
    client, _test_mode: FastApiRedisCache
) -> None:
    from fastapi import Depends

    app = FastAPI()
    runs: list[str] = []

    def session(request: Request) -> Session:
        return Session(request.headers.get("x-session", "a"))

    @app.get("/items")
    @cache(expire=60)
    async def items(db: Session = Depends(session)) -> dict[str, int]:  # noqa: B008
        runs.append(db.name)
        return {"n": len(runs)}

    _test_mode.init(host_url="", ignore_arg_types=[Session])
    async with client(app) as c:
        first = await c.get("/items", headers={"x-session": "a"})
        second = await c.get("/items", headers={"x-session": "b"})
    assert first.headers[HEADER] == "Miss" and second.headers[HEADER] == "Hit"
    assert runs == ["a"]


async def test_a_request_that_refuses_caches_is_answered_without_the_cache(client) -> None:
    app = FastAPI()
    runs: list[int] = []

    @app.get("/items")
    @cache(expire=60)
    async def items() -> dict[str, int]:
        runs.append(1)
        return {"n": len(runs)}

    async with client(app) as c:
        await c.get("/items")
        for directive in ("no-cache", "no-store", "max-age=0, no-cache"):
            r = await c.get("/items", headers={"cache-control": directive})
            assert HEADER not in r.headers and "expires" not in r.headers
            assert "detail=request-directive" in r.headers["cache-status"]
        hit = await c.get("/items")
    assert hit.headers[HEADER] == "Hit" and hit.json() == {"n": 1} and len(runs) == 4


async def test_tag_is_the_namespace_to_invalidate(client) -> None:
    app = FastAPI()

    @app.get("/a")
    @cache(expire=60, tag="catalog")
    async def a() -> dict[str, str]:
        return {"a": "a"}

    @app.get("/b")
    @cache(expire=60)
    async def b() -> dict[str, str]:
        return {"b": "b"}

    async with client(app) as c:
        await c.get("/a")
        await c.get("/b")
        await oxicache.invalidate(namespace="catalog")
        assert (await c.get("/a")).headers[HEADER] == "Miss"
        assert (await c.get("/b")).headers[HEADER] == "Hit"


async def test_response_model_and_set_cookie_stay_safe(client) -> None:
    class Public(BaseModel):
        name: str

    app = FastAPI()

    @app.get("/user", response_model=Public)
    @cache(expire=60)
    async def user() -> dict[str, str]:
        return {"name": "ada", "password_hash": "secret"}

    @app.get("/login")
    @cache(expire=60)
    async def login(response: Response) -> dict[str, str]:
        response.set_cookie("session", "abc")
        return {"ok": "yes"}

    async with client(app) as c:
        first = await c.get("/user")
        second = await c.get("/user")
        await c.get("/login")
        again = await c.get("/login")
    assert first.json() == {"name": "ada"} and second.json() == {"name": "ada"}
    assert second.headers[HEADER] == "Hit"
    # A response with Set-Cookie is never stored; the client's cookie makes the next request
    # credentialed, answered uncached (no header, as with fastapi-redis-cache's misses).
    assert again.status_code == 200 and HEADER not in again.headers


async def test_before_init_nothing_is_cached(client, _test_mode: FastApiRedisCache) -> None:
    _test_mode.status = RedisStatus.NONE
    app = FastAPI()

    @app.get("/items")
    @cache(expire=60)
    def items(request: Request) -> dict[str, str]:
        return {"path": request.url.path}

    async with client(app) as c:
        r = await c.get("/items")
    assert r.json() == {"path": "/items"} and HEADER not in r.headers


async def test_plain_functions_are_memoized_and_awaited() -> None:
    runs: list[int] = []

    @cache(expire=60)
    def double(x: int) -> int:
        runs.append(x)
        return 2 * x

    assert await double(2) == 4 and await double(2) == 4 and runs == [2]


async def test_on_redis(client, redis_server, _test_mode: FastApiRedisCache) -> None:
    redis_server.flushall()
    _test_mode.init(host_url=redis_server.url, prefix="redis-cache-compat")
    assert oxicache.get_settings().prefix == "redis-cache-compat"
    app = FastAPI()

    @app.get("/items")
    @cache(expire=60)
    async def items() -> dict[str, str]:
        return {"ok": "yes"}

    async with client(app) as c:
        miss = await c.get("/items")
        oxicache.get_store().clear()  # the next answer must come from Redis
        backend = oxicache.backends.remote.get_backend()
        assert backend is not None
        await backend.drain()
        hit = await c.get("/items")
    assert miss.headers[HEADER] == "Miss" and hit.headers[HEADER] == "Hit"


def test_mistakes_fail_at_init(_test_mode: FastApiRedisCache, monkeypatch) -> None:
    monkeypatch.delenv("CACHE_ENV")
    with pytest.raises(ConfigError, match="set CACHE_ENV=TEST"):
        _test_mode.init(host_url="")
    with pytest.raises(ConfigError, match="unknown scheme"):
        _test_mode.init(host_url="reddis://localhost")
    with pytest.raises(ConfigError, match="ignore_arg_types takes a list of types"):
        _test_mode.init(host_url="memory://", ignore_arg_types=["Session"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="expire must be a positive"):
        cache(expire=0)


def test_its_json_format_round_trips() -> None:
    value = {
        "at": datetime(2021, 4, 20, 7, 17, 17, tzinfo=UTC),
        "on": date(2021, 4, 21),
        "pi": Decimal("3.14"),
    }
    back = deserialize_json(serialize_json(value))
    assert back["at"] == value["at"] and back["pi"] == Decimal("3.14")
    assert back["on"] == datetime(2021, 4, 21)

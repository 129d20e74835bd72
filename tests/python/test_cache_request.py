"""``CacheRequest``: a dependency or the handler of a cached route skips the cache for one
request, gives the entry it stores another TTL, or tags it for ``invalidate(tag=)``."""

from __future__ import annotations

import logging
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request

import oxicache
from oxicache import CacheRequest, ConfigError, cache
from oxicache.backends import remote

Ctl = Annotated[CacheRequest, Depends()]


def _app() -> tuple[FastAPI, list[str]]:
    """``/items/{item_id}``: ``?skip=`` skips from a dependency, ``?late_skip=`` from the
    handler, ``?ttl=`` sets the entry's TTL from a dependency, and every entry is tagged
    ``item:<id>`` by the handler."""
    app = FastAPI()
    runs: list[str] = []

    async def policy(ctl: Ctl, skip: str = "", ttl: str = "") -> None:
        if skip:
            ctl.skip(skip)
        if ttl:
            ctl.ttl = ttl

    @app.get("/items/{item_id}", dependencies=[Depends(policy)])
    @cache(ttl=60)
    async def item(item_id: int, ctl: Ctl, late_skip: str = "") -> dict[str, Any]:
        runs.append(f"item:{item_id}")
        ctl.tag(f"item:{item_id}", "items")
        if late_skip:
            ctl.skip(late_skip)
        return {"id": item_id, "run": len(runs)}

    return app, runs


async def test_a_dependency_skips_the_cache_for_one_request(client) -> None:
    app, runs = _app()
    async with client(app) as c:
        first = await c.get("/items/1")
        skipped = await c.get("/items/1", params={"skip": "staff"})
        again = await c.get("/items/1")
    assert skipped.headers["x-cache"] == "BYPASS"
    assert skipped.headers["cache-status"] == "oxicache; fwd=bypass; detail=staff"
    assert skipped.json()["run"] == 2
    assert again.headers["x-cache"] == "HIT" and again.json() == first.json()
    assert len(runs) == 2


async def test_the_handler_skipping_keeps_its_response_out_of_the_cache(client) -> None:
    app, runs = _app()
    async with client(app) as c:
        skipped = await c.get("/items/1", params={"late_skip": "draft"})
        after = await c.get("/items/1", params={"late_skip": "draft"})
    assert skipped.headers["x-cache"] == "BYPASS"
    assert skipped.headers["cache-status"] == "oxicache; fwd=bypass; detail=draft"
    assert "etag" not in skipped.headers
    assert after.headers["x-cache"] == "BYPASS" and len(runs) == 2


async def test_a_shorter_ttl_shows_in_max_age_and_expires_sooner(client, clock) -> None:
    app, runs = _app()
    async with client(app) as c:
        short = await c.get("/items/1", params={"ttl": "10s"})
        hit = await c.get("/items/1", params={"ttl": "10s"})
        clock.advance(11)
        expired = await c.get("/items/1", params={"ttl": "10s"})
    assert short.headers["cache-control"].endswith(" max-age=10")
    assert hit.headers["x-cache"] == "HIT" and hit.headers["cache-control"].endswith(" max-age=10")
    assert hit.headers["cache-status"] in ("oxicache; hit; ttl=10", "oxicache; hit; ttl=9")
    assert expired.headers["x-cache"] == "MISS" and len(runs) == 2


async def test_a_longer_ttl_outlives_the_routes(client, clock) -> None:
    oxicache.configure(expires=True)
    app, runs = _app()
    async with client(app) as c:
        long = await c.get("/items/1", params={"ttl": "1h"})
        clock.advance(600)  # the route's 60 s are long past
        hit = await c.get("/items/1", params={"ttl": "1h"})
        clock.advance(3001)
        expired = await c.get("/items/1", params={"ttl": "1h"})
    assert long.headers["cache-control"].endswith(" max-age=3600")
    expires = parsedate_to_datetime(long.headers["expires"])
    stored = parsedate_to_datetime(long.headers["last-modified"])
    assert (expires - stored).total_seconds() == 3600
    assert hit.headers["x-cache"] == "HIT" and hit.headers["age"] == "600"
    assert expired.headers["x-cache"] == "MISS" and len(runs) == 2


async def test_invalidate_by_tag_drops_every_entry_with_it(client) -> None:
    app, runs = _app()
    async with client(app) as c:
        await c.get("/items/1")
        await c.get("/items/1?page=2")
        await c.get("/items/2")
        await oxicache.invalidate(tag="item:1")
        one = await c.get("/items/1")
        one_page = await c.get("/items/1?page=2")
        two = await c.get("/items/2")
        await oxicache.invalidate(tag="items")
        after = await c.get("/items/2")
    assert one.headers["x-cache"] == one_page.headers["x-cache"] == "MISS"
    assert two.headers["x-cache"] == "HIT"
    assert after.headers["x-cache"] == "MISS"
    assert len(runs) == 6


async def test_the_handler_and_its_dependencies_share_one_state(client) -> None:
    app = FastAPI()
    seen: list[Any] = []

    async def tagging(ctl: Ctl) -> None:
        ctl.tag("from-dependency")
        ctl.ttl = timedelta(minutes=2)

    @app.get("/shared")
    @cache(ttl=30)
    async def shared(ctl: Ctl, _: None = Depends(tagging)) -> dict[str, int]:
        seen.extend([ctl.tags, ctl.ttl, ctl.route, ctl.skipped])
        return {"ok": 1}

    async with client(app) as c:
        r = await c.get("/shared")
    assert seen == [("from-dependency",), 120.0, shared.__oxicache__.label, None]  # type: ignore[attr-defined]
    assert r.headers["cache-control"].endswith(" max-age=120")


async def test_the_parameter_is_not_part_of_the_key(client) -> None:
    app, runs = _app()
    async with client(app) as c:
        await c.get("/items/3")
        hit = await c.get("/items/3")
    assert hit.headers["x-cache"] == "HIT" and len(runs) == 1


async def test_on_a_route_without_cache_it_does_nothing_and_says_so(client, caplog) -> None:
    app = FastAPI()
    seen: list[Any] = []

    @app.get("/plain")
    async def plain(ctl: Ctl) -> dict[str, int]:
        ctl.tag("x")
        ctl.ttl = 5
        seen.extend([ctl.route, ctl.ttl])
        return {"ok": 1}

    with caplog.at_level(logging.WARNING, logger="oxicache"):
        async with client(app) as c:
            r = await c.get("/plain")
    assert r.status_code == 200 and "x-cache" not in r.headers
    assert seen == [None, 5.0]
    assert "CacheRequest on /plain, which has no @cache" in caplog.text


def test_mistakes_fail_when_made() -> None:
    ctl = CacheRequest({"type": "http"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cache tag is 1 to 64 ASCII"):
        ctl.tag("has space")
    with pytest.raises(ConfigError, match="cache tag"):
        ctl.tag("ok", "x" * 65)
    assert ctl.tags == ()  # all or nothing
    with pytest.raises(ConfigError, match="ttl"):
        ctl.ttl = 0
    with pytest.raises(ConfigError, match="as a duration"):
        ctl.ttl = "soon"
    with pytest.raises(ConfigError, match="reason must be a token"):
        ctl.skip("Not A Token")
    with pytest.raises(ConfigError, match="takes the Request"):
        CacheRequest(42)  # type: ignore[arg-type]
    ctl.ttl = "90s"
    assert ctl.ttl == 90.0
    ctl.ttl = None
    assert ctl.ttl is None  # no route: nothing to fall back to


async def test_invalidate_refuses_a_malformed_tag() -> None:
    with pytest.raises(ConfigError, match="cache tag"):
        await oxicache.invalidate(tag="a b")


async def test_outside_fastapi_it_is_built_from_the_request(client) -> None:
    app = FastAPI()

    @app.get("/built")
    @cache(ttl=60)
    async def built(request: Request) -> dict[str, int]:
        CacheRequest(request).ttl = 7
        return {"ok": 1}

    async with client(app) as c:
        r = await c.get("/built")
    assert r.headers["cache-control"] == "max-age=7"


# --- on a backend ------------------------------------------------------------------------


async def _drain() -> None:
    backend = remote.get_backend()
    assert backend is not None
    await backend.drain()


async def _tags_and_ttl_on_a_backend(client, clock) -> None:
    app, runs = _app()
    async with client(app) as c:
        await c.get("/items/1", params={"ttl": "5s"})
        await c.get("/items/2")
        await _drain()
        assert (await c.get("/items/2")).headers["x-cache"] == "HIT"
        clock.advance(6)  # /items/1 stored for 5 s: gone from the backend's view too
        assert (await c.get("/items/1", params={"ttl": "5s"})).headers["x-cache"] == "MISS"
        await oxicache.invalidate(tag="item:2")
        assert (await c.get("/items/2")).headers["x-cache"] == "MISS"
    assert len(runs) == 4


async def test_on_redis_the_ttl_and_tags_reach_the_backend(client, clock, redis_server) -> None:
    redis_server.flushall()
    oxicache.configure(redis_server.url, prefix="cache-request", backend_timeout=2.0)
    await _tags_and_ttl_on_a_backend(client, clock)


async def test_on_memcached_the_ttl_and_tags_reach_the_backend(
    client, clock, memcached_server
) -> None:
    host, port = memcached_server.address
    oxicache.configure(
        f"memcached://{host}:{port}",
        prefix="cache-request",
        backend_timeout=2.0,
    )
    await _tags_and_ttl_on_a_backend(client, clock)


async def test_a_coherence_message_drops_the_tagged_local_entries(client) -> None:
    from oxicache.coordination import coherence

    app, _ = _app()
    async with client(app) as c:
        await c.get("/items/1")
        await c.get("/items/2")
        prefix = oxicache.get_settings().prefix
        assert coherence.apply_message("t", "tag:item:2", prefix)
        assert not coherence.apply_message("t", "tag:not a tag", prefix)
        one = await c.get("/items/1")
        two = await c.get("/items/2")
    assert one.headers["x-cache"] == "HIT" and two.headers["x-cache"] == "MISS"


async def test_the_admin_invalidation_takes_an_application_tag(client) -> None:
    from oxicache.admin.operations import apply_invalidation

    app, _ = _app()
    async with client(app) as c:
        await c.get("/items/1")
        await c.get("/items/2")
        done = await apply_invalidation(tag="item:1")
        one = await c.get("/items/1")
        two = await c.get("/items/2")
    assert done.applied
    assert one.headers["x-cache"] == "MISS" and two.headers["x-cache"] == "HIT"
    with pytest.raises(ConfigError, match="cache tag"):
        await apply_invalidation(tag="not a tag")

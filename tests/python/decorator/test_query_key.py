"""``query_key``: keys that hold the query sorted, or only the declared parameters (see
``src/core/query.rs``: FastAPI hands the handler the same arguments either way)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict

import oxicache
from oxicache import ConfigError, cache


class Filter(BaseModel):
    slug: str | None = None
    page: int = 1


class StrictFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = 1


@dataclasses.dataclass
class Paging:
    size: int = 10


def _app(query_key: str | None = None) -> tuple[FastAPI, list[str]]:
    app = FastAPI()
    runs: list[str] = []

    @app.get("/items")
    @cache(ttl=60, query_key=query_key)  # type: ignore[arg-type]
    async def items(
        paging: Annotated[Paging, Depends()],
        page: int = 1,
        tag: Annotated[list[str], Query()] = [],  # noqa: B006
    ) -> dict[str, object]:
        runs.append("items")
        return {"page": page, "tag": tag, "size": paging.size}

    @app.get("/filtered")
    @cache(ttl=60, query_key=query_key)  # type: ignore[arg-type]
    async def filtered(f: Annotated[Filter, Query()]) -> dict[str, object]:
        runs.append("filtered")
        return f.model_dump()

    @app.get("/strict")
    @cache(ttl=60, query_key=query_key)  # type: ignore[arg-type]
    async def strict(f: Annotated[StrictFilter, Query()]) -> dict[str, object]:
        runs.append("strict")
        return f.model_dump()

    @app.get("/reads")
    @cache(ttl=60, query_key=query_key)  # type: ignore[arg-type]
    async def reads(request: Request) -> dict[str, object]:
        runs.append("reads")
        return dict(request.query_params)

    return app, runs


async def _labels(c, *urls: str) -> list[str]:
    return [(await c.get(u)).headers["x-cache"] for u in urls]


async def test_raw_is_the_default_and_keys_the_query_as_sent(client) -> None:
    app, _ = _app()
    async with client(app) as c:
        labels = await _labels(
            c, "/items?page=2&tag=a", "/items?tag=a&page=2", "/items?page=2&tag=a&junk=1"
        )
    assert labels == ["MISS", "MISS", "MISS"]


async def test_sorted_shares_entries_across_orders_but_keeps_repeated_values_in_order(
    client,
) -> None:
    app, _ = _app("sorted")
    async with client(app) as c:
        labels = await _labels(
            c, "/items?page=2&tag=a&tag=b", "/items?tag=a&page=2&tag=b", "/items?tag=b&tag=a&page=2"
        )
        ba = await c.get("/items?tag=b&tag=a&page=2")
        junk = await c.get("/items?page=2&tag=a&tag=b&junk=1")
    assert labels == ["MISS", "HIT", "MISS"]  # tag=[b, a] is another list
    assert ba.json()["tag"] == ["b", "a"]
    assert junk.headers["x-cache"] == "MISS"


async def test_declared_ignores_undeclared_parameters(client) -> None:
    app, runs = _app("declared")
    async with client(app) as c:
        labels = await _labels(
            c,
            "/items?page=2&size=5",
            "/items?page=2&size=5&junk=1",
            "/items?utm_source=mail&size=5&page=2",
            "/items?page=2&size=6",  # a dependency's parameter is declared too
            "/filtered?slug=a&junk=1",
            "/filtered?slug=a",  # a query model's fields are declared
            "/filtered?slug=b",
        )
    assert labels == ["MISS", "HIT", "HIT", "MISS", "MISS", "HIT", "MISS"]
    assert runs.count("items") == 2


async def test_declared_keeps_the_whole_query_for_models_that_see_extra_fields(client) -> None:
    app, _ = _app("declared")
    async with client(app) as c:
        first = await c.get("/strict?page=2")
        junk = await c.get("/strict?page=2&junk=1")
    assert first.headers["x-cache"] == "MISS"
    assert junk.status_code == 422  # FastAPI hands the model every parameter


async def test_a_handler_that_reads_the_query_itself_is_answered_uncached(client) -> None:
    app, runs = _app("declared")
    async with client(app) as c:
        first = await c.get("/reads?a=1")
        second = await c.get("/reads?a=1&b=2")
    # The request that revealed the read is not stored, and the route is uncached from then on.
    assert first.headers["x-cache"] == "BYPASS" and "learned-input" in first.headers["cache-status"]
    assert second.headers["x-cache"] == "BYPASS" and second.json() == {"a": "1", "b": "2"}
    assert runs.count("reads") == 2


async def test_the_global_setting_applies(client) -> None:
    oxicache.configure(query_key="sorted")
    app, _ = _app()
    async with client(app) as c:
        labels = await _labels(c, "/items?page=2&size=3", "/items?size=3&page=2")
    assert labels == ["MISS", "HIT"]


def test_mistakes_fail_when_made() -> None:
    with pytest.raises(ConfigError, match="query_key must be one of 'raw', 'sorted', 'declared'"):
        cache(ttl=1, query_key="sort")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="query_key must be one of"):
        oxicache.configure(query_key="all")

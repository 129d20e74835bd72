"""``@cache`` above the route decorator is refused, at decoration time or at startup."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

import oxicache
from oxicache import ConfigError, cache

app = FastAPI()
router = APIRouter()


def test_above_a_module_level_app_is_refused_when_decorated() -> None:
    with pytest.raises(ConfigError, match=r"@cache is above the route decorator") as caught:

        @cache(ttl=60)
        @app.get("/wrong")
        async def wrong() -> dict[str, int]:
            return {"n": 1}

    message = str(caught.value)
    assert "'test_above_a_module_level_app_is_refused_when_decorated.<locals>.wrong'" in message
    assert "route /wrong" in message
    assert '@app.get("/path")\n    @cache(ttl=60)' in message  # the fix, spelled out


def test_above_a_router_in_a_function_is_refused_too() -> None:
    local_router = APIRouter()
    with pytest.raises(ConfigError, match="route /sync"):

        @cache
        @local_router.get("/sync")
        def sync() -> int:
            return 1


def test_above_add_api_route_is_refused() -> None:
    async def handler() -> int:
        return 1

    router.add_api_route("/added", handler)
    with pytest.raises(ConfigError, match="route /added"):
        cache(ttl=5)(handler)


async def test_a_router_out_of_sight_is_caught_by_the_lifespan(client: Any) -> None:
    """The router lives where the decorating code cannot see it (here, in a dict): the
    lifespan's start-up check finds the undecorated endpoint and refuses to start."""
    routers = {"api": APIRouter()}

    def register() -> None:
        @cache(ttl=60)
        @routers["api"].get("/hidden")
        async def hidden() -> dict[str, int]:
            return {"n": 1}

    register()  # not visible at decoration time
    hidden_app = FastAPI(lifespan=oxicache.lifespan("memory://"))
    hidden_app.include_router(routers["api"])
    with pytest.raises(ConfigError, match="route /hidden"):
        async with hidden_app.router.lifespan_context(hidden_app):
            pass


async def test_the_right_order_caches(client: Any) -> None:
    right = FastAPI(lifespan=oxicache.lifespan("memory://"))
    runs: list[int] = []

    @right.get("/ok")
    @cache(ttl=60)
    async def ok() -> dict[str, int]:
        runs.append(1)
        return {"n": 1}

    async with right.router.lifespan_context(right):
        transport = httpx.ASGITransport(app=right)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            labels = [(await c.get("/ok")).headers["x-cache"] for _ in range(2)]
    assert labels == ["MISS", "HIT"] and runs == [1]


def test_memoizing_a_function_no_router_holds_is_fine() -> None:
    def compute(x: int) -> int:
        return x * 2

    assert cache(ttl=5)(compute)(2) == 4

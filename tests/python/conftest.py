"""Shared fixtures: a clean cache per test, a movable clock, an HTTP client for an app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

import oxicache
from oxicache import _log, config


@pytest.fixture(autouse=True)
def clean_cache() -> Iterator[None]:
    """Every test starts with default settings, an empty store and zeroed counters."""
    oxicache.configure(**dataclass_defaults())
    config.get_store().clear()
    _log.reset_counters()
    yield
    oxicache.configure(**dataclass_defaults())
    config.get_store().clear()


def dataclass_defaults() -> dict[str, Any]:
    import dataclasses

    return {f.name: f.default for f in dataclasses.fields(oxicache.Settings)}


class Clock:
    """Moves the store's clock: expiry tests never sleep."""

    def advance(self, seconds: float) -> None:
        config.get_store().advance_clock(seconds)


@pytest.fixture
def clock() -> Iterator[Clock]:
    store = config.get_store()
    start = store.now()
    yield Clock()
    store.advance_clock(start - store.now())


@pytest.fixture
def client() -> Callable[[Any], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with client(app) as c:`` drives a real ASGI app over httpx's ASGI transport."""

    @asynccontextmanager
    async def make(app: Any) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    return make


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

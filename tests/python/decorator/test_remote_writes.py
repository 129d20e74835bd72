"""``Cache-Status`` says ``stored`` (RFC 9211 §2.5) only for a response the cache does keep: on
a remote backend, a write skipped before it is made (over the backend's item size, breaker
open) drops ``stored`` and says why in ``detail`` (§2.8), and is counted."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

import oxicache
from oxicache import cache
from oxicache.backends import remote
from oxicache.backends.memory import MemoryBackend


class DownBackend(MemoryBackend):
    """Refuses every call, as a backend that went away does."""

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("down")

    async def set(self, key: str, value: bytes, ttl: float, tags: Any = ()) -> None:
        raise ConnectionError("down")


def app_of(size: int) -> FastAPI:
    app = FastAPI()

    @app.get("/blob")
    @cache(ttl=60)
    async def blob() -> str:
        return os.urandom(size // 2 + 1).hex()[:size]  # incompressible: its size is its size

    return app


async def test_a_written_entry_says_stored_and_is_served_from_the_backend(client: Any) -> None:
    oxicache.configure(MemoryBackend())
    async with client(app_of(10)) as c:
        first = await c.get("/blob")
        assert first.headers["cache-status"] == "oxicache; fwd=miss; stored"
        guard = remote.get_backend()
        assert guard is not None
        await guard.drain()
        oxicache.get_store().clear()  # nothing left in memory: the hit comes from the backend
        assert (await c.get("/blob")).headers["x-cache"] == "HIT"


async def test_an_entry_over_the_backends_item_size_is_not_said_stored(client: Any) -> None:
    oxicache.configure(MemoryBackend(max_item_size=200))
    async with client(app_of(1000)) as c:
        first = await c.get("/blob")
        assert first.status_code == 200 and len(first.json()) == 1000
        assert first.headers["x-cache"] == "MISS"
        assert first.headers["cache-status"] == "oxicache; fwd=miss; detail=backend-too-large"
        oxicache.get_store().clear()
        assert (await c.get("/blob")).headers["x-cache"] == "MISS"  # indeed not stored
    assert oxicache.stats()["events"]["remote.write_skipped.backend-too-large"] == 2


async def test_with_two_tiers_the_local_tier_still_stores_it(client: Any) -> None:
    oxicache.configure(MemoryBackend(max_item_size=200), two_tier=True)
    async with client(app_of(1000)) as c:
        first = await c.get("/blob")
        assert first.headers["cache-status"] == (
            "oxicache; fwd=miss; stored; detail=backend-too-large"
        )
        assert (await c.get("/blob")).headers["x-cache"] == "HIT"  # from the local tier


async def test_a_backend_that_is_down_is_not_written_and_says_so(client: Any) -> None:
    oxicache.configure(DownBackend(), breaker_failures=1, breaker_open_after=0)
    async with client(app_of(10)) as c:
        reply = await c.get("/blob")  # the read fails: the breaker opens
        assert reply.status_code == 200
        assert reply.headers["cache-status"] == "oxicache; fwd=miss; detail=backend-down"
    assert oxicache.stats()["events"]["remote.write_skipped.backend-down"] == 1

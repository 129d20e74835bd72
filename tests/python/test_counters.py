"""``oxicache.stats()``: per tier, remote hits and misses included, with the keys it always
had."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

import oxicache
from oxicache import cache
from oxicache.backends import remote
from oxicache.backends.memory import MemoryBackend

#: A body the backend's compression cannot bring under its item size.
BIG = os.urandom(1000).hex()


def test_without_a_backend_only_the_memory_tier_is_reported() -> None:
    stats = oxicache.stats()
    assert set(stats) == {"tiers", "store", "events", "coherence", "backend"}
    store = stats["store"]
    assert stats["tiers"] == {
        "local": {"hits": store["hits"], "misses": store["misses"], "failed": 0}
    }
    assert stats["backend"] is None


async def test_remote_hits_and_misses_are_counted_on_the_backends_tier(client: Any) -> None:
    oxicache.configure(MemoryBackend(max_item_size=300))
    app = FastAPI()

    @app.get("/small")
    @cache(ttl=60)
    async def small() -> str:
        return "x"

    @app.get("/big")
    @cache(ttl=60)
    async def big() -> str:
        return BIG

    before = oxicache.stats()["tiers"]["local"]  # the store's counters live as long as it does
    async with client(app) as c:
        await c.get("/small")  # a miss in both tiers, then written
        await c.get("/big")  # a miss in both tiers, too large for the backend
        guard = remote.get_backend()
        assert guard is not None
        await guard.drain()
        oxicache.get_store().clear()
        assert (await c.get("/small")).headers["x-cache"] == "HIT"  # from the backend
    stats = oxicache.stats()
    # No request was answered in process; of the three backend reads, one hit.
    assert stats["tiers"]["local"]["hits"] == before["hits"]
    assert stats["tiers"]["local"]["misses"] == stats["store"]["misses"] > before["misses"]
    assert stats["tiers"]["memory"] == {"hits": 1, "misses": 2, "failed": 0}  # MemoryBackend
    backend = stats["backend"]
    assert backend is not None and backend["name"] == "memory"
    assert backend["hits"] == 1 and backend["misses"] == 2
    assert backend["writes_skipped"] == {"backend-too-large": 1}

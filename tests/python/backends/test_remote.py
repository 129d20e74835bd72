"""``@cache`` routes on a remote backend (real servers), remote-only and two-tier.

Each app is a real FastAPI app driven over HTTP (httpx ASGI transport). "Another process" is
simulated faithfully where it matters: the second app shares nothing in memory with the first
(``config.get_store().clear()`` between them), only the backend.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

import oxicache
from oxicache import cache, config
from oxicache.backends import remote
from oxicache.backends.guard import GuardedBackend
from tests.python.backends.test_backend_contract import FACTORIES

#: The engines the decorator runs on here: the contract suite's factories (one place builds a
#: backend of each kind on the harness's servers).
ENGINES = ("dynamodb", "memcached", "memory", "redis")


async def configured(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A backend of the kind ``request.param`` names, configured as the process's backend for
    the test; its writes drained, its entries cleared and memory back at the end."""
    b = FACTORIES[request.param](request, f"t{uuid.uuid4().hex[:8]}")
    # Generous deadlines: these tests are about behaviour, not the breaker (test_outage.py).
    oxicache.configure(b, backend_timeout=2.0, backend_write_timeout=5.0)
    yield b
    guard = remote.get_backend()
    if guard is not None:
        await guard.drain()
    oxicache.configure("memory://")
    await b.clear()
    await b.close()


@pytest.fixture(params=ENGINES)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    async for b in configured(request):
        yield b


def items_app(runs: list[int], **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    @cache(ttl=60, **options)
    async def item(item_id: int) -> dict[str, int]:
        runs.append(item_id)
        return {"id": item_id, "run": len(runs)}

    return app


async def settle() -> None:
    """The background writes have landed."""
    guard = remote.get_backend()
    assert isinstance(guard, GuardedBackend)
    await guard.drain()


async def test_entries_are_shared_through_the_backend(backend, client) -> None:
    """A second process (empty memory) answers from the entry the first one wrote."""
    runs: list[int] = []
    async with client(items_app(runs)) as c:
        first = await c.get("/items/1")
        await settle()
        config.get_store().clear()  # "another process": nothing in memory
        second = await c.get("/items/1")
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert second.json() == first.json() and runs == [1]
    assert second.headers["etag"] == first.headers["etag"]
    assert int(second.headers["age"]) >= 0


async def test_remote_only_never_answers_from_memory(backend, client) -> None:
    """Without two tiers, an entry invalidated in the backend (by any process) is gone at once,
    even in a process that served it a moment ago."""
    runs: list[int] = []
    async with client(items_app(runs)) as c:
        await c.get("/items/2")
        await settle()
        assert (await c.get("/items/2")).headers["x-cache"] == "HIT"
        await backend.clear()  # another process's invalidation
        again = await c.get("/items/2")
    assert again.headers["x-cache"] == "MISS" and runs == [2, 2]


async def test_invalidate_reaches_the_backend(backend, client) -> None:
    runs: list[int] = []
    app = items_app(runs, namespace="items")
    async with client(app) as c:
        await c.get("/items/3")
        await c.get("/items/4")
        await settle()
        await oxicache.invalidate(path="/items/3")
        config.get_store().clear()
        r3 = await c.get("/items/3")
        r4 = await c.get("/items/4")
        await oxicache.invalidate(namespace="items")
        r4b = await c.get("/items/4")
    assert r3.headers["x-cache"] == "MISS"
    assert r4.headers["x-cache"] == "HIT"
    assert r4b.headers["x-cache"] == "MISS"


async def test_corrupt_entry_is_a_miss_and_is_overwritten(backend, client) -> None:
    """docs/http.md: a corrupt, truncated or foreign entry is a miss, and the miss overwrites it."""
    runs: list[int] = []
    async with client(items_app(runs)) as c:
        await c.get("/items/5")
        await settle()
        assert _LAST_KEYS
        for key in _LAST_KEYS:
            await backend.set(key, b"\x00junk-not-an-envelope", 60)
        config.get_store().clear()
        bad = await c.get("/items/5")
        await settle()
        config.get_store().clear()
        good = await c.get("/items/5")
    assert bad.status_code == 200 and bad.headers["x-cache"] == "MISS"
    assert good.headers["x-cache"] == "HIT"
    assert runs == [5, 5]


async def test_an_unchanged_frame_is_decoded_once_a_changed_one_again(backend, client) -> None:
    """src/py/decoded.rs: every hit still reads the backend; a frame identical to the last one
    read for its key reuses that decoded entry, and a rewritten or damaged one is decoded (or
    refused) as usual, so the answer is always what the backend holds now."""
    runs: list[int] = []
    app = FastAPI()

    @app.get("/rows/{row}")
    @cache(ttl=60)
    async def rows(row: int) -> dict[str, int]:
        runs.append(row)
        return {"row": row, "run": len(runs)}

    rc = rows.__oxicache__.route_cache()
    async with client(app) as c:
        await c.get("/rows/1")
        await settle()
        keys = list(_LAST_KEYS)
        hits = [await c.get("/rows/1") for _ in range(3)]
        assert [h.headers["x-cache"] for h in hits] == ["HIT"] * 3
        assert {h.json()["run"] for h in hits} == {1}
        assert rc.remembered_frames == 1
        # Rewritten by "another process": the new frame is decoded and replaces the old one.
        for key in keys:
            await backend.delete(key)
        assert (await c.get("/rows/1")).headers["x-cache"] == "MISS"
        await settle()
        rewritten = await c.get("/rows/1")
        assert rewritten.headers["x-cache"] == "HIT" and rewritten.json()["run"] == 2
        assert rc.remembered_frames == 1
        # Damaged: a miss, never the remembered entry.
        for key in keys:
            await backend.set(key, b"\x9e\x00junk", 60)
        damaged = await c.get("/rows/1")
    assert damaged.headers["x-cache"] == "MISS" and damaged.json()["run"] == 3
    assert runs == [1, 1, 1]


async def test_large_frames_are_decoded_every_time(backend, client) -> None:
    """Frames over 64 KiB are not remembered (src/py/decoded.rs): the copy would cost more
    memory than decoding costs time. Their hits are answered all the same."""
    app = FastAPI()
    blob = os.urandom(96 * 1024).hex()  # 192 KiB of hex: zstd halves it, to over 64 KiB

    @app.get("/blob")
    @cache(ttl=60)
    async def big() -> dict[str, str]:
        return {"blob": blob}

    async with client(app) as c:
        await c.get("/blob")
        await settle()
        hits = [await c.get("/blob") for _ in range(2)]
    assert [h.headers["x-cache"] for h in hits] == ["HIT", "HIT"]
    assert hits[1].json()["blob"] == blob
    assert big.__oxicache__.route_cache().remembered_frames == 0


_LAST_KEYS: list[str] = []


@pytest.fixture(autouse=True)
def _record_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remembers the keys the cache writes, so a test can damage those exact entries."""
    _LAST_KEYS.clear()
    original = GuardedBackend.set_later

    def recording(self: GuardedBackend, key: str, *args: Any, **kwargs: Any) -> bool:
        _LAST_KEYS.append(key)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(GuardedBackend, "set_later", recording)


async def test_two_tiers_serve_from_memory_and_bound_staleness(backend, client, clock) -> None:
    """Two tiers: a hit on the local copy needs no backend read; an invalidation that this
    process does not hear about is seen at the latest after ``local_ttl``."""
    oxicache.configure(two_tier=True, local_ttl=5)
    runs: list[int] = []
    async with client(items_app(runs)) as c:
        await c.get("/items/6")
        await settle()
        config.get_store().clear()
        warm = await c.get("/items/6")  # from the backend, now kept locally
        await backend.clear()  # another process invalidates; no message reaches us
        local = await c.get("/items/6")
        clock.advance(6)
        after = await c.get("/items/6")
    assert warm.headers["x-cache"] == "HIT" and local.headers["x-cache"] == "HIT"
    assert after.headers["x-cache"] == "MISS"
    assert runs == [6, 6]


async def test_concurrent_cold_requests_run_the_handler_once(backend, client) -> None:
    runs: list[int] = []
    app = FastAPI()

    @app.get("/slow")
    @cache(ttl=60)
    async def slow() -> dict[str, int]:
        runs.append(1)
        await asyncio.sleep(0.05)
        return {"n": len(runs)}

    async with client(app) as c:
        replies = await asyncio.gather(*(c.get("/slow") for _ in range(20)))
    assert all(r.status_code == 200 for r in replies)
    assert runs == [1]


async def test_memoized_async_functions_share_values_through_the_backend(backend) -> None:
    """A plain async function memoized with @cache uses the backend too: another process
    (empty memory) gets the value without running the function."""
    runs: list[int] = []

    @cache(ttl=60)
    async def rate(currency: str) -> dict[str, float]:
        runs.append(1)
        return {"rate": 1.5, "n": float(len(runs))}

    first = await rate("EUR")
    await settle()
    config.get_store().clear()  # another process
    second = await rate("EUR")
    assert second == first and runs == [1]
    # A corrupt value is a miss, recomputed and overwritten.
    for key in _LAST_KEYS:
        await backend.set(key, b"junk", 60)
    config.get_store().clear()
    third = await rate("EUR")
    await settle()
    config.get_store().clear()
    fourth = await rate("EUR")
    assert runs == [1, 1] and fourth == third


async def test_memoized_sync_functions_stay_in_memory(backend) -> None:
    """Synchronous functions run in worker threads, away from the backend's event loop: they
    memoize in the in-process store, and write nothing to the backend."""
    runs: list[int] = []

    @cache(ttl=60)
    def square(x: int) -> int:
        runs.append(x)
        return x * x

    assert square(3) == 9 and square(3) == 9
    assert runs == [3]
    assert _LAST_KEYS == []


async def test_unannotated_functions_never_pickle_through_the_backend(backend) -> None:
    """A value without a return annotation is pickled; unpickling what a backend returned would
    run code chosen by whoever can write to it, so such functions stay in memory."""
    runs: list[int] = []

    @cache(ttl=60)
    async def untyped(x: int):  # type: ignore[no-untyped-def]
        runs.append(x)
        return {"x": x}

    assert await untyped(1) == {"x": 1}
    assert await untyped(1) == {"x": 1}
    await settle()
    assert runs == [1]
    assert _LAST_KEYS == []  # nothing written to the backend


async def test_invalidating_one_memoized_call_reaches_the_backend(backend) -> None:
    runs: list[int] = []

    @cache(ttl=60)
    async def rate(currency: str) -> dict[str, int]:
        runs.append(1)
        return {"n": len(runs)}

    await rate("EUR")
    await settle()
    await oxicache.invalidate(rate, "EUR")
    config.get_store().clear()  # another process: only the backend could answer
    assert await rate("EUR") == {"n": 2}

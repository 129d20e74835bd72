"""fastapi-cachex 0.5.1's application cache, lock, backend primitives and monitoring routes, as
its README Quick Start and the docstrings of ``CacheManager``, ``@cached``, ``CacheLock``,
``add_routes`` and the backends describe them.

Written against ``fastapi_cachex`` (the peer's import name) and run by ``run_cachex_tests.py``
twice: against the real fastapi-cachex 0.5.1 (fetched at run time) and against
``oxicache.compat.fastapi_cachex`` with only the imports rewritten. Each test names the
documented behaviour it checks; none reads the peer's internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from fastapi_cachex import (
    AppCache,
    BackendProxy,
    CacheBackend,
    CacheLock,
    CacheManager,
    CacheManagerProxy,
    add_routes,
    cache,
    cached,
)
from fastapi_cachex.backends import MemoryBackend
from fastapi_cachex.exceptions import CacheXError, LockTimeoutError
from fastapi_cachex.types import CacheEntry


@pytest.fixture(autouse=True)
def backend() -> Iterator[MemoryBackend]:
    made = MemoryBackend()
    BackendProxy.set(made)
    CacheManagerProxy.set(None)
    yield made
    BackendProxy.set(None)
    CacheManagerProxy.set(None)


def test_quick_start_report_is_computed_once() -> None:
    """README Quick Start: ``cache.get_or_set("report", build_report, ttl=300)`` through the
    ``AppCache`` dependency; concurrent misses run ``build_report`` once."""
    app = FastAPI()
    calls = []

    def build_report() -> dict[str, int]:
        calls.append(1)
        return {"total": 42}

    @app.get("/report")
    async def report(cache: AppCache) -> Any:
        return await cache.get_or_set("report", build_report, ttl=300)

    c = TestClient(app)
    assert c.get("/report").json() == {"total": 42}
    assert c.get("/report").json() == {"total": 42}
    assert calls == [1]


def test_cache_backend_dependency_is_the_backend_set(backend: MemoryBackend) -> None:
    """``CacheBackend``: the backend in use, injected."""
    app = FastAPI()

    @app.get("/keys")
    async def keys(store: CacheBackend) -> list[str]:
        await store.set("seen", CacheEntry(fingerprint="f", content=b"1"), ttl=60)
        return sorted(await store.get_all_keys())

    assert TestClient(app).get("/keys").json() == ["seen"]


def test_manager_stores_json_values() -> None:
    """CacheManager: JSON values under ``key_prefix``; a tuple comes back as a list; ``add``
    stores once; ``delete`` says whether the key held a value; ``default`` on a miss."""

    async def scenario() -> None:
        manager = CacheManager(key_prefix="app:")
        await manager.set("pair", (1, 2), ttl=60)
        assert await manager.get("pair") == [1, 2]
        assert await manager.get("missing", "dflt") == "dflt"
        assert await manager.has("pair")
        assert await manager.add("once", 1) is True
        assert await manager.add("once", 2) is False
        assert await manager.get("once") == 1
        assert await manager.delete("once") is True
        assert await manager.delete("once") is False
        with pytest.raises(TypeError):
            await manager.set("bad", object())

    asyncio.run(scenario())


def test_manager_clear_pattern_and_prefix() -> None:
    """CacheManager.clear_pattern (a glob relative to ``key_prefix``) and clear_prefix."""

    async def scenario() -> None:
        manager = CacheManager(key_prefix="app:")
        for key in ("user:1", "user:2", "team:1"):
            await manager.set(key, key, ttl=60)
        assert await manager.clear_pattern("user:*") == 2
        assert await manager.get("user:1") is None
        assert await manager.get("team:1") == "team:1"
        assert await manager.clear_prefix("team") == 1

    asyncio.run(scenario())


def test_get_or_set_waiter_raises_on_timeout(backend: MemoryBackend) -> None:
    """get_or_set: a caller that waits longer than ``wait_timeout`` for another holder raises
    ``LockTimeoutError`` with ``raise_on_timeout=True``, else computes the value itself."""

    async def scenario() -> None:
        manager = CacheManager()
        held = CacheLock("cache:slow", ttl=30, backend=backend)
        assert await held.acquire()
        with pytest.raises(LockTimeoutError):
            await manager.get_or_set("slow", lambda: 1, wait_timeout=0.3, raise_on_timeout=True)
        assert await manager.get_or_set("slow", lambda: 2, wait_timeout=0.3) == 2
        await held.release()

    asyncio.run(scenario())


def test_cached_runs_once_per_arguments() -> None:
    """@cached: keyed on the bound arguments (by position or name, defaults applied);
    ``invalidate`` drops the value for those arguments."""
    calls = []

    @cached(ttl=60)
    async def load(user_id: int, locale: str = "en") -> dict[str, Any]:
        calls.append(user_id)
        return {"id": user_id, "locale": locale}

    async def scenario() -> None:
        assert await load(1) == {"id": 1, "locale": "en"}
        assert await load(user_id=1, locale="en") == {"id": 1, "locale": "en"}
        assert load.cache_key(1) == load.cache_key(user_id=1)
        assert await load.invalidate(1) is True
        await load(1)

    asyncio.run(scenario())
    assert calls == [1, 1]


def test_cached_key_template_and_methods() -> None:
    """@cached(key="user:{user_id}") names the key; a method needs ``key=`` and binds self."""
    manager = CacheManager(key_prefix="fn:")

    class Repo:
        runs = 0

        @cached(ttl=60, manager=manager, key=lambda self, user_id: f"user:{user_id}")
        def load(self, user_id: int) -> list[int]:
            Repo.runs += 1
            return [user_id]

    async def scenario() -> None:
        repo = Repo()
        assert await repo.load(3) == [3]
        assert await repo.load(3) == [3]
        assert repo.load.cache_key(3) == "user:3"
        assert await manager.get("user:3") == [3]

    asyncio.run(scenario())
    assert Repo.runs == 1
    with pytest.raises(CacheXError):
        cached(key=3)  # type: ignore[arg-type]


def test_lock_excludes_others_and_times_out() -> None:
    """CacheLock: one holder at a time; a non-blocking acquire says False; ``async with``
    raises ``LockTimeoutError`` when ``timeout`` passes; only the holder releases."""

    async def scenario() -> None:
        first = CacheLock("job", ttl=30)
        assert await first.acquire()
        assert await first.locked()
        other = CacheLock("job", ttl=30, blocking=False)
        assert await other.acquire() is False
        assert await other.release() is False
        with pytest.raises(LockTimeoutError):
            async with CacheLock("job", ttl=30, timeout=0.2):
                pass
        assert await first.extend(60) is True
        assert await first.release() is True
        assert not await first.locked()

    asyncio.run(scenario())


def test_backend_primitives(backend: MemoryBackend) -> None:
    """Backends: atomic counters (``increment`` with a window ``ttl``), ``set_if_absent``,
    ``get``/``set``/``delete`` of ``CacheEntry`` values, ``get_all_keys``."""

    async def scenario() -> None:
        assert await backend.increment("hits", ttl=60) == 1
        assert await backend.increment("hits", 4) == 5
        entry = CacheEntry(fingerprint="f", content=b"body")
        assert await backend.set_if_absent("slot", entry, ttl=60) is True
        assert await backend.set_if_absent("slot", entry, ttl=60) is False
        assert await backend.get("slot") == entry
        with pytest.raises(CacheXError):
            await backend.increment("slot")
        assert sorted(await backend.get_all_keys()) == ["hits", "slot"]
        assert await backend.delete("slot") is True
        assert await backend.get("slot") is None

    asyncio.run(scenario())


def test_monitoring_routes() -> None:
    """add_routes: ``dependencies`` is required (``[]`` mounts them unguarded);
    ``/cached-hits`` lists the cached route entries with their path and method."""
    app = FastAPI()

    @app.get("/items/{n}")
    @cache(ttl=60)
    async def item(n: int) -> dict[str, int]:
        return {"n": n}

    def admin(request: Request) -> None:
        if request.headers.get("x-admin") != "yes":
            raise HTTPException(status_code=403)

    with pytest.raises(TypeError):
        add_routes(app, dependencies=None)  # type: ignore[arg-type]
    add_routes(app, prefix="/admin", dependencies=[Depends(admin)])
    c = TestClient(app)
    c.get("/items/1")
    c.get("/items/2")
    assert c.get("/admin/cached-hits").status_code == 403
    hits = c.get("/admin/cached-hits", headers={"x-admin": "yes"}).json()
    assert hits["total_entries"] == 2
    assert sorted(e["path"] for e in hits["entries"]) == ["/items/1", "/items/2"]
    assert {e["method"] for e in hits["entries"]} == {"GET"}
    records = c.get("/admin/cached-records", headers={"x-admin": "yes"}).json()
    assert records["total_records"] == 2
    assert records["cached_records"][0]["content_preview"] is None


def test_max_entries_evicts_the_least_recently_used() -> None:
    """MemoryBackend(max_entries=N): storing one more evicts the least recently used."""
    BackendProxy.set(MemoryBackend(max_entries=2))
    app = FastAPI()
    calls = []

    @app.get("/p/{name}")
    @cache(ttl=60)
    async def page(name: str) -> dict[str, str]:
        calls.append(name)
        return {"name": name}

    with TestClient(app) as c:  # one event loop for every request
        for name in ("a", "b", "a", "c", "a", "b"):
            c.get(f"/p/{name}")
    # a, b stored; a hit (most recent); c evicts b; a hit; b computed again.
    assert calls == ["a", "b", "c", "b"]


def test_clear_pattern_with_whole_key_globs(backend: MemoryBackend) -> None:
    """clear_pattern matches whole keys (``http:v2|method|host|path|query``)."""
    app = FastAPI()
    calls = []

    @app.get("/{path:path}")
    @cache(ttl=60)
    async def any_path(path: str) -> dict[str, str]:
        calls.append(path)
        return {"path": path}

    c = TestClient(app)
    for path in ("users/1", "users/2", "teams/1"):
        c.get(f"/{path}")
    with c as running:
        running.portal.call(backend.clear_pattern, "http:v2|GET|*|/users/*")
    for path in ("users/1", "users/2", "teams/1"):
        c.get(f"/{path}")
    assert calls == ["users/1", "users/2", "teams/1", "users/1", "users/2"]

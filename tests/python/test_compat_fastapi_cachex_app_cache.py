"""oxicache.compat.fastapi_cachex beyond ``@cache``: the backends' key-value primitives on
every engine (real Redis and memcached servers), ``CacheManager`` / ``AppCache`` /
``CacheBackend``, ``@cached``, ``CacheLock``, the monitoring routes, ``clear_pattern`` with
path globs and ``MemoryBackend(max_entries=N)``, through real FastAPI apps where a user would
meet them."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request

from oxicache.backends import remote
from oxicache.compat.fastapi_cachex import (
    AppCache,
    BackendProxy,
    CacheBackend,
    CacheEntry,
    CacheLock,
    CacheManager,
    CacheManagerProxy,
    add_routes,
    cache,
    cached,
    clear_pattern,
    get_app_cache,
)
from oxicache.compat.fastapi_cachex.backends import (
    AsyncRedisCacheBackend,
    BaseCacheBackend,
    MemcachedBackend,
    MemoryBackend,
)
from oxicache.compat.fastapi_cachex.exceptions import CacheXError, LockTimeoutError, TTLValueError

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_proxies() -> Iterator[None]:
    BackendProxy._instance = None
    CacheManagerProxy.set(None)
    yield
    BackendProxy._instance = None
    CacheManagerProxy.set(None)


@pytest.fixture(params=["memory", "redis", "memcached"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[BaseCacheBackend]:
    """A backend on each engine, set with ``BackendProxy``, under a prefix of its own."""
    prefix = f"cx{uuid.uuid4().hex[:8]}:"
    made: BaseCacheBackend
    if request.param == "memory":
        made = MemoryBackend()
    elif request.param == "redis":
        server = request.getfixturevalue("redis_server")
        made = AsyncRedisCacheBackend(port=server.port, key_prefix=prefix)
    else:
        server = request.getfixturevalue("memcached_server")
        made = MemcachedBackend([f"127.0.0.1:{server.port}"], key_prefix=prefix)
    BackendProxy.set(made)
    try:
        yield made
    finally:
        await made.clear()
        BackendProxy.set(None)
        await made.aclose()


def entry(text: str) -> CacheEntry:
    return CacheEntry(fingerprint=f"fp-{text}", content=text.encode(), media_type="text/plain")


# --- the key-value primitives, on every engine ----------------------------------------------


async def test_get_set_delete_round_trip_an_entry(backend: BaseCacheBackend) -> None:
    assert await backend.get("k") is None
    await backend.set("k", entry("one"), ttl=60)
    assert await backend.get("k") == entry("one")
    await backend.set("k", entry("two"), ttl=timedelta(minutes=1))
    assert await backend.get("k") == entry("two")
    assert await backend.delete("k") is True
    assert await backend.delete("k") is False
    assert await backend.get("k") is None


async def test_set_if_absent_stores_once(backend: BaseCacheBackend) -> None:
    results = await asyncio.gather(
        *(backend.set_if_absent("slot", entry(str(i)), ttl=60) for i in range(8))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await backend.get("slot") == entry(str(winner))


async def test_increment_counts_atomically(backend: BaseCacheBackend) -> None:
    assert await backend.increment("hits", ttl=60) == 1
    await asyncio.gather(*(backend.increment("hits") for _ in range(20)))
    assert await backend.increment("hits", 5) == 26
    assert await backend.increment("hits", -6) == 20
    await backend.set("page", entry("a body"))
    with pytest.raises(CacheXError, match="not a counter"):
        await backend.increment("page")


async def test_compare_and_swap_primitives_act_only_on_the_expected_value(
    backend: BaseCacheBackend,
) -> None:
    await backend.set("k", entry("mine"), ttl=60)
    assert await backend.delete_if_equals("k", entry("theirs")) is False
    assert await backend.set_if_equals("k", entry("theirs"), entry("x"), ttl=60) is False
    assert await backend.expire_if_equals("k", entry("mine"), ttl=120) is True
    assert await backend.set_if_equals("k", entry("mine"), entry("new"), ttl=60) is True
    assert await backend.get("k") == entry("new")
    assert await backend.get_and_delete("k") == entry("new")
    assert await backend.get_and_delete("k") is None
    await backend.set("k", entry("mine"))
    assert await backend.delete_if_equals("k", entry("mine")) is True
    assert await backend.get("k") is None


async def test_get_all_keys_lists_the_primitives_keys(backend: BaseCacheBackend) -> None:
    for name in ("a:1", "a:2", "b:1"):
        await backend.set(name, entry(name), ttl=60)
    if isinstance(backend, MemcachedBackend):
        with pytest.warns(RuntimeWarning, match="cannot list keys"):
            assert await backend.get_all_keys() == []
        return
    assert sorted(await backend.get_all_keys()) == ["a:1", "a:2", "b:1"]
    data = await backend.get_cache_data()
    assert data["a:1"][0] == entry("a:1") and data["a:1"][1] is not None
    assert await backend.delete_many(["a:1", "b:1", "gone"]) == 2
    assert await backend.get_all_keys() == ["a:2"]


async def test_clear_pattern_on_keys_never_clears_less(backend: BaseCacheBackend) -> None:
    for name in ("user:1", "user:2", "team:1"):
        await backend.set(name, entry(name), ttl=60)
    await backend.clear_pattern("user:*")
    assert await backend.get("user:1") is None and await backend.get("user:2") is None
    if not isinstance(backend, MemcachedBackend):  # memcached drops every key: it cannot list
        assert await backend.get("team:1") == entry("team:1")
    await backend.clear()
    assert await backend.get("team:1") is None


async def test_primitive_ttls_are_checked() -> None:
    made = MemoryBackend()
    with pytest.raises(TTLValueError):
        await made.set("k", entry("x"), ttl=0)
    with pytest.raises(TypeError):
        await made.set("k", entry("x"), ttl=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await made.increment("k", True)


async def test_memory_entries_expire_by_the_clock() -> None:
    made = MemoryBackend()
    now = [1_000_000.0]
    made.entries.clock = lambda: now[0]
    await made.set("k", entry("x"), ttl=10)
    await made.increment("n", ttl=10)
    now[0] += 9
    assert await made.get("k") == entry("x")
    assert await made.increment("n") == 2
    now[0] += 2
    assert await made.get("k") is None
    assert await made.increment("n") == 1  # a new window


# --- the application cache -------------------------------------------------------------------


def report_app(calls: list[int]) -> FastAPI:
    """The Quick Start of fastapi-cachex 0.5."""
    app = FastAPI()

    def build_report() -> dict[str, int]:
        calls.append(1)
        return {"total": 42}

    @app.get("/report")
    async def report(cache: AppCache) -> Any:
        return await cache.get_or_set("report", build_report, ttl=300)

    @app.get("/keys")
    async def keys(backend: CacheBackend) -> list[str]:
        return sorted(await backend.get_all_keys())

    return app


async def test_quick_start_app_cache_computes_once(client: Any, backend: BaseCacheBackend) -> None:
    calls: list[int] = []
    async with client(report_app(calls)) as c:
        replies = await asyncio.gather(*(c.get("/report") for _ in range(6)))
        assert {r.json()["total"] for r in replies} == {42}
        assert calls == [1]
        if not isinstance(backend, MemcachedBackend):
            assert (await c.get("/keys")).json() == ["cache:report"]
    assert get_app_cache().backend is backend


async def test_app_cache_without_a_backend_registers_the_memory_fallback(client: Any) -> None:
    calls: list[int] = []
    async with client(report_app(calls)) as c:
        assert (await c.get("/report")).json() == {"total": 42}
        assert (await c.get("/keys")).json() == ["cache:report"]
    assert isinstance(BackendProxy.get(), MemoryBackend)


async def test_manager_values_go_through_json(backend: BaseCacheBackend) -> None:
    manager = CacheManager(key_prefix="app:", default_ttl=60)
    await manager.set("pair", (1, 2))
    assert await manager.get("pair") == [1, 2]
    assert await manager.get("missing", "dflt") == "dflt"
    assert await manager.has("pair") and not await manager.has("missing")
    assert await manager.add("once", {"n": 1}) is True
    assert await manager.add("once", {"n": 2}) is False
    assert await manager.get("once") == {"n": 1}
    assert await manager.delete("once") is True
    assert await manager.delete("once") is False
    with pytest.raises(TypeError):
        await manager.set("bad", object())
    miss = await manager.get_or_set("t", lambda: (1, {2: 3}))
    assert miss == [1, {"2": 3}] == await manager.get("t")


async def test_manager_clearing_by_pattern_and_prefix(backend: BaseCacheBackend) -> None:
    manager = CacheManager(key_prefix="app:")
    for key in ("user:1", "user:2", "team:1"):
        await manager.set(key, key)
    await manager.clear_pattern("user:*")
    assert await manager.get("user:1") is None
    if isinstance(backend, MemcachedBackend):
        return  # no key listing: clear_prefix has nothing to go by
    assert await manager.get("team:1") == "team:1"
    assert await manager.clear_prefix("team") == 1
    await manager.set("x", 1)
    assert await manager.clear() == 1


async def test_manager_clear_pattern_leaves_cached_routes(client: Any) -> None:
    BackendProxy.set(MemoryBackend())
    app = FastAPI()
    calls: list[int] = []

    @app.get("/items/{n}")
    @cache(ttl=60)
    async def item(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n}

    manager = CacheManager()
    await manager.set("user:1", 1)
    async with client(app) as c:
        await c.get("/items/1")
        await manager.clear_pattern("*")
        assert (await c.get("/items/1")).headers["x-cache"] == "HIT"
    assert await manager.get("user:1") is None


async def test_get_or_set_waiter_times_out(backend: BaseCacheBackend) -> None:
    manager = CacheManager()
    held = CacheLock("cache:slow", ttl=30, backend=backend)
    assert await held.acquire()
    try:
        with pytest.raises(LockTimeoutError):
            await manager.get_or_set("slow", lambda: 1, wait_timeout=0.3, raise_on_timeout=True)
        assert await manager.get_or_set("slow", lambda: 2, wait_timeout=0.3) == 2
    finally:
        await held.release()


async def test_nested_get_or_set_of_the_same_key_does_not_wait_for_itself(
    backend: BaseCacheBackend,
) -> None:
    manager = CacheManager()

    async def outer() -> int:
        return int(await manager.get_or_set("k", lambda: 1, lock=True)) + 1

    assert await asyncio.wait_for(manager.get_or_set("k", outer), timeout=10) == 2


def test_manager_configuration_errors() -> None:
    made = MemoryBackend()
    with pytest.raises(TypeError):
        CacheManager(made, lock="yes")  # type: ignore[arg-type]
    with pytest.raises(TTLValueError):
        CacheManager(made, default_ttl=0)
    with pytest.raises(ValueError):
        CacheManager(made, lock_ttl=None)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="glob"):
        CacheManager(made, key_prefix="a*:")


# --- @cached -------------------------------------------------------------------------------


async def test_cached_function_runs_once_per_arguments(backend: BaseCacheBackend) -> None:
    runs: list[tuple[int, str]] = []

    @cached(ttl=60)
    async def load(user_id: int, kind: str = "full") -> dict[str, Any]:
        runs.append((user_id, kind))
        return {"id": user_id, "kind": kind}

    assert await load(1) == {"id": 1, "kind": "full"}
    assert await load(user_id=1, kind="full") == {"id": 1, "kind": "full"}
    await asyncio.gather(*(load(2) for _ in range(5)))
    assert runs == [(1, "full"), (2, "full")]
    assert load.cache_key(1) == load.cache_key(1, "full")
    assert await load.invalidate(1) is True
    await load(1)
    assert runs[-1] == (1, "full") and len(runs) == 3


async def test_cached_key_template_sync_function_and_method(backend: BaseCacheBackend) -> None:
    manager = CacheManager(key_prefix="fn:")

    class Repo:
        runs = 0

        @cached(key="user:{user_id}", manager=manager)
        def load(self, user_id: int) -> list[int]:
            Repo.runs += 1
            return [user_id]

    repo = Repo()
    assert await repo.load(3) == [3]
    assert await repo.load(3) == [3]
    assert Repo.runs == 1
    assert repo.load.cache_key(3) == "user:3"
    assert await manager.get("user:3") == [3]
    assert await repo.load.invalidate(3) is True


async def test_cached_refuses_what_it_cannot_key() -> None:
    @cached()
    async def f(obj: object) -> int:
        return 1

    with pytest.raises(CacheXError, match="key="):
        await f(object())
    with pytest.raises(CacheXError):
        cached(key=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cached(lock="no")  # type: ignore[arg-type]


# --- CacheLock -----------------------------------------------------------------------------


async def test_lock_excludes_a_second_holder(backend: BaseCacheBackend) -> None:
    first = CacheLock("job", ttl=30)
    second = CacheLock("job", ttl=30, blocking=False)
    assert await first.acquire()
    assert await first.locked()
    assert await second.acquire() is False
    assert await second.release() is False  # not its lock
    assert await first.locked()
    assert await first.extend(60) is True
    with pytest.raises(RuntimeError):
        await first.acquire()
    assert await first.release() is True
    assert not await first.locked()
    async with CacheLock("job", ttl=30) as held:
        with pytest.raises(LockTimeoutError):
            async with CacheLock("job", ttl=30, timeout=0.2):
                pass
        assert await held.locked()
    assert not await CacheLock("job").locked()


async def test_a_waiting_lock_gets_it_when_released(backend: BaseCacheBackend) -> None:
    holder = CacheLock("w", ttl=30)
    assert await holder.acquire()

    async def release_soon() -> None:
        await asyncio.sleep(0.2)
        await holder.release()

    waiter = CacheLock("w", ttl=30, timeout=20, poll_interval=0.05)
    _, got = await asyncio.gather(release_soon(), waiter.acquire())
    assert got is True
    await waiter.release()


# --- the monitoring routes -----------------------------------------------------------------


def monitored_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{n}")
    @cache(ttl=60)
    async def item(n: int, q: str = "") -> dict[str, Any]:
        return {"n": n, "q": q}

    def admin(request: Request) -> None:
        if request.headers.get("x-admin") != "yes":
            raise HTTPException(status_code=403)

    add_routes(app, prefix="/admin/cache", dependencies=[Depends(admin)])
    return app


async def test_monitoring_routes_list_the_stored_entries(client: Any) -> None:
    BackendProxy.set(MemoryBackend())
    async with client(monitored_app()) as c:
        await c.get("/items/1?q=a")
        await c.get("/items/1?q=a")
        await c.get("/items/2")
        assert (await c.get("/admin/cache/cached-hits")).status_code == 403
        admin = {"x-admin": "yes"}
        hits = (await c.get("/admin/cache/cached-hits", headers=admin)).json()
        assert hits["total_entries"] == 2
        assert hits["summary"]["cached_paths"] == ["/items/1", "/items/2"]
        one = next(e for e in hits["entries"] if e["path"] == "/items/1")
        assert one["query_params"] == "q=a" and one["method"] == "GET"
        assert one["cache_key"].startswith("http:v2|GET|testserver|/items/1|")
        assert 0 < one["ttl_remaining"] <= 60 and one["etag"]
        records = (await c.get("/admin/cache/cached-records", headers=admin)).json()
        assert records["total_records"] == 2
        assert records["cached_records"][0]["content_preview"] is None
        assert records["total_cache_size_bytes"] > 0
        await clear_pattern("/items/1")
        hits = (await c.get("/admin/cache/cached-hits", headers=admin)).json()
        assert [e["path"] for e in hits["entries"]] == ["/items/2"]


def test_monitoring_routes_need_their_guard_named() -> None:
    with pytest.raises(TypeError, match="dependencies"):
        add_routes(FastAPI(), dependencies=None)  # type: ignore[arg-type]


# --- clear_pattern with path globs, MemoryBackend(max_entries) --------------------------------


def paths_app(calls: dict[str, int]) -> FastAPI:
    app = FastAPI()

    @app.get("/{path:path}")
    @cache(ttl=60)
    async def any_path(path: str) -> dict[str, int]:
        calls[path] = calls.get(path, 0) + 1
        return {"n": calls[path]}

    return app


@pytest.mark.parametrize(
    ("pattern", "dropped"),
    [
        ("/path/to/clear/*", {"path/to/clear/a", "path/to/clear/b"}),
        ("*/users/*", {"api/users/1", "v2/users/2"}),
        ("http:v2|GET|*|/api/*", {"api/users/1", "api/teams/1"}),
        ("*teams*", {"api/teams/1"}),
    ],
)
async def test_clear_pattern_takes_path_globs(client: Any, pattern: str, dropped: set[str]) -> None:
    BackendProxy.set(MemoryBackend())
    calls: dict[str, int] = {}
    every = ["path/to/clear/a", "path/to/clear/b", "api/users/1", "v2/users/2", "api/teams/1"]
    async with client(paths_app(calls)) as c:
        for path in every:
            await c.get(f"/{path}")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await BackendProxy.get().clear_pattern(pattern)
        for path in every:
            await c.get(f"/{path}")
    assert {p for p, n in calls.items() if n == 2} == dropped


async def test_a_shared_backend_never_clears_less_than_asked(
    client: Any, redis_server: Any
) -> None:
    made = AsyncRedisCacheBackend(port=redis_server.port, key_prefix=f"cx{uuid.uuid4().hex[:8]}:")
    BackendProxy.set(made)
    calls: dict[str, int] = {}
    try:
        async with client(paths_app(calls)) as c:
            await c.get("/api/users/1")
            # A key another process stored: this process never saw /api/users/2.
            async with client(paths_app(calls)) as other:
                await other.get("/api/users/2")
            from oxicache.compat.fastapi_cachex import _invalidation

            _invalidation._seen.clear()
            await made.clear_pattern("*/users/*")
            await c.get("/api/users/1")
            await c.get("/api/users/2")
        assert calls == {"api/users/1": 2, "api/users/2": 2}
    finally:
        await made.clear()
        BackendProxy.set(None)
        await made.aclose()


async def test_memory_backend_max_entries_evicts_the_least_recently_used(client: Any) -> None:
    made = MemoryBackend(max_entries=2)
    BackendProxy.set(made)
    calls: dict[str, int] = {}
    async with client(paths_app(calls)) as c:

        async def get(path: str) -> str:
            reply = await c.get(path)
            await remote.get_backend().drain()  # type: ignore[union-attr]  # writes land
            return reply.headers["x-cache"]

        await get("/a")
        await get("/b")
        assert await get("/a") == "HIT"  # /a is now the most recently used
        await get("/c")  # evicts /b
        assert await get("/a") == "HIT"
        assert await get("/b") == "MISS"
        # The primitives' keys share the bound.
        await made.set("k1", entry("1"))
        await made.set("k2", entry("2"))
        assert await get("/a") == "MISS"
        assert await made.clear_path("/a") == 1
    assert calls == {"a": 2, "b": 2, "c": 1}


def test_max_entries_is_checked() -> None:
    with pytest.raises(ValueError):
        MemoryBackend(max_entries=0)
    with pytest.raises(TypeError):
        MemoryBackend(max_entries=True)

"""``oxicache.compat.fastapi_cache``: fastapi-cache2's surface, driven over HTTP.

fastapi-cache2's own tests run against it with ``tests/compat/run_peer_tests.py``; these check
the rest of the surface (init's options, clear, backends, coders, key builders) and the places
where oxicache keeps its safer behaviour.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

import oxicache
from oxicache import config
from oxicache.backends import remote
from oxicache.compat.fastapi_cache import Coder, FastAPICache, JsonCoder, default_key_builder
from oxicache.compat.fastapi_cache.backends.inmemory import InMemoryBackend
from oxicache.compat.fastapi_cache.coder import PickleCoder
from oxicache.compat.fastapi_cache.decorator import cache
from oxicache.compat.fastapi_cache.types import Backend

HEADER = "X-FastAPI-Cache"


@pytest.fixture(autouse=True)
def _fastapi_cache() -> Iterator[None]:
    FastAPICache.reset()
    yield
    FastAPICache.reset()


def fc(r: httpx.Response) -> str | None:
    return r.headers.get(HEADER)


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def app_with(runs: Counter, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    @cache(namespace="items", **options)
    async def items(q: str = "") -> dict[str, Any]:
        return {"q": q, "run": runs()}

    @app.put("/items")
    @cache(namespace="items")
    async def put_items() -> dict[str, int]:
        return {"run": runs()}

    @app.get("/cookie")
    @cache(namespace="cookie")
    async def cookie(response: Response) -> dict[str, int]:
        response.set_cookie("session", "secret")
        return {"run": runs()}

    @app.get("/sync")
    @cache()
    def sync(request: Request) -> dict[str, Any]:
        return {"path": request.url.path, "run": runs()}

    return app


async def test_hit_and_miss_header_and_init_settings(client: Any) -> None:
    FastAPICache.init(InMemoryBackend(), prefix="myapp", expire=30)
    assert FastAPICache.get_prefix() == "myapp"
    assert FastAPICache.get_expire() == 30
    assert FastAPICache.get_coder() is JsonCoder
    assert FastAPICache.get_key_builder() is default_key_builder
    assert FastAPICache.get_cache_status_header() == HEADER
    assert FastAPICache.get_enable() is True
    assert isinstance(FastAPICache.get_backend(), InMemoryBackend)
    assert config.get_settings().prefix == "myapp"
    runs = Counter()
    async with client(app_with(runs)) as c:
        first = await c.get("/items?q=a")
        second = await c.get("/items?q=a")
        other = await c.get("/items?q=b")
        sync1 = await c.get("/sync")
        sync2 = await c.get("/sync")
    assert (fc(first), fc(second), fc(other)) == ("MISS", "HIT", "MISS")
    assert first.json() == second.json() == {"q": "a", "run": 1}
    assert other.json()["run"] == 2
    assert first.headers["cache-control"] == "max-age=30"
    assert second.headers["cache-status"].startswith("oxicache; hit")
    assert "x-cache" not in first.headers  # the header was renamed, not duplicated
    assert (fc(sync1), fc(sync2)) == ("MISS", "HIT")
    assert sync2.json() == {"path": "/sync", "run": 3}


async def test_no_expire_means_oxicache_default_ttl_not_max_age_none(client: Any) -> None:
    FastAPICache.init(InMemoryBackend())
    async with client(app_with(Counter())) as c:
        r = await c.get("/items")
    assert r.headers["cache-control"] == "max-age=60"


async def test_decorator_expire_wins_and_expires(client: Any, clock: Any) -> None:
    FastAPICache.init(InMemoryBackend(), expire=300)
    runs = Counter()
    async with client(app_with(runs, expire=5)) as c:
        assert fc(await c.get("/items")) == "MISS"
        assert fc(await c.get("/items")) == "HIT"
        clock.advance(6)
        r = await c.get("/items")
    assert fc(r) == "MISS"
    assert r.headers["cache-control"] == "max-age=5"
    assert runs.n == 2


async def test_non_get_and_disabled_have_no_header(client: Any) -> None:
    FastAPICache.init(InMemoryBackend(), enable=False)
    runs = Counter()
    async with client(app_with(runs)) as c:
        disabled = [await c.get("/items") for _ in range(2)]
        FastAPICache._enable = True  # what fastapi-cache2's own tests do
        put = [await c.put("/items") for _ in range(2)]
    assert [fc(r) for r in disabled + put] == [None] * 4
    assert [r.json()["run"] for r in disabled + put] == [1, 2, 3, 4]
    assert "bypass" in put[0].headers["cache-status"]  # the reason is still told


async def test_set_cookie_responses_are_never_stored(client: Any) -> None:
    FastAPICache.init(InMemoryBackend())
    runs = Counter()
    async with client(app_with(runs)) as c:
        rs = [await c.get("/cookie") for _ in range(2)]
    assert [r.json()["run"] for r in rs] == [1, 2]
    assert all("session=secret" in r.headers["set-cookie"] for r in rs)
    assert all(fc(r) != "HIT" for r in rs)


async def test_etag_is_stable_and_if_none_match_gives_304(client: Any) -> None:
    FastAPICache.init(InMemoryBackend())
    async with client(app_with(Counter())) as c:
        first = await c.get("/items")
        hit = await c.get("/items")
        etag = first.headers["etag"]
        assert hit.headers["etag"] == etag
        assert etag.startswith('W/"')
        again = await c.get("/items", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


async def test_request_no_cache_runs_the_handler_and_refreshes(client: Any) -> None:
    FastAPICache.init(InMemoryBackend())
    runs = Counter()
    async with client(app_with(runs)) as c:
        await c.get("/items")
        fresh = await c.get("/items", headers={"Cache-Control": "max-age=0, no-cache"})
        after = await c.get("/items")
    assert fresh.json()["run"] == 2
    assert (fc(after), after.json()["run"]) == ("HIT", 2)


async def test_credentials_are_not_answered_from_a_shared_entry(client: Any) -> None:
    FastAPICache.init(InMemoryBackend())
    runs = Counter()
    async with client(app_with(runs)) as c:
        await c.get("/items")
        authed = await c.get("/items", headers={"Authorization": "Bearer alice"})
    assert authed.json()["run"] == 2
    assert fc(authed) != "HIT"


async def test_custom_key_builder_keys_by_its_string(client: Any) -> None:
    seen: list[dict[str, Any]] = []

    def by_path(
        func: Any,
        namespace: str = "",
        *,
        request: Request | None = None,
        response: Response | None = None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> str:
        seen.append({"namespace": namespace, "kwargs": kwargs, "args": args})
        assert request is not None
        return f"{namespace}:{request.url.path}"  # ignores the query string

    FastAPICache.init(InMemoryBackend(), prefix="p", key_builder=by_path)
    runs = Counter()
    async with client(app_with(runs)) as c:
        a = await c.get("/items?q=a")
        b = await c.get("/items?q=b")
    assert (fc(a), fc(b)) == ("MISS", "HIT")
    assert b.json() == {"q": "a", "run": 1}
    assert seen[0] == {"namespace": "p:items", "kwargs": {"q": "a"}, "args": ()}


async def test_async_key_builder_on_the_decorator(client: Any) -> None:
    async def constant(func: Any, namespace: str = "", **_: Any) -> str:
        return "one"

    FastAPICache.init(InMemoryBackend())
    runs = Counter()
    app = FastAPI()

    @app.get("/k/{n}")
    @cache(key_builder=constant)
    async def k(n: int) -> dict[str, int]:
        return {"n": n, "run": runs()}

    async with client(app) as c:
        assert (await c.get("/k/1")).json() == {"n": 1, "run": 1}
        assert (await c.get("/k/2")).json() == {"n": 1, "run": 1}


async def test_clear_namespace_and_everything(client: Any) -> None:
    FastAPICache.init(InMemoryBackend())
    runs = Counter()
    async with client(app_with(runs)) as c:
        await c.get("/items")
        await c.get("/sync")
        assert fc(await c.get("/items")) == "HIT"
        assert await FastAPICache.clear(namespace="items") >= 1
        assert fc(await c.get("/items")) == "MISS"
        assert fc(await c.get("/sync")) == "HIT"  # another namespace
        await FastAPICache.clear()
        assert fc(await c.get("/items")) == "MISS"
        assert fc(await c.get("/sync")) == "MISS"


async def test_plain_functions_are_memoized_and_awaited() -> None:
    FastAPICache.init(InMemoryBackend())
    calls: list[Any] = []

    @cache(namespace="fn", expire=60)
    async def add(a: int, b: int = 1) -> tuple[int, int]:
        calls.append((a, b))
        return (a, a + b)

    @cache(namespace="fn")
    def blocking(x: int) -> int:
        calls.append(x)
        return x * 2

    assert await add(1) == (1, 2)
    assert await add(1, 1) == (1, 2)  # same call once defaults are applied
    assert await add(a=1) == (1, 2)
    assert await blocking(21) == 42  # awaited, like fastapi-cache2's wrapper
    assert await blocking(21) == 42
    assert calls == [(1, 1), 21]
    await FastAPICache.clear(namespace="fn")
    assert await add(1) == (1, 2)
    assert calls == [(1, 1), 21, (1, 1)]


async def test_coder_other_than_json_is_used_for_plain_functions() -> None:
    used: list[str] = []

    class Tracing(PickleCoder):
        @classmethod
        def encode(cls, value: Any) -> bytes:
            used.append("encode")
            return super().encode(value)

        @classmethod
        def decode(cls, value: bytes) -> Any:
            used.append("decode")
            return super().decode(value)

    FastAPICache.init(InMemoryBackend(), coder=Tracing)
    runs = Counter()

    @cache()
    async def value() -> dict[str, int]:
        return {"run": runs()}

    assert await value() == {"run": 1}
    assert await value() == {"run": 1}
    assert used == ["encode", "decode"]


async def test_clear_by_key_of_a_memoized_function() -> None:
    def fixed(func: Any, namespace: str = "", **_: Any) -> str:
        return f"{namespace}:fixed"

    FastAPICache.init(InMemoryBackend(), prefix="app")
    runs = Counter()

    @cache(namespace="k", key_builder=fixed)
    async def value() -> int:
        return runs()

    assert (await value(), await value()) == (1, 1)
    await FastAPICache.clear(key="app:k:fixed")
    assert await value() == 2


async def test_a_backend_of_ones_own_stores_through_its_methods(client: Any) -> None:
    class DictBackend(Backend):
        def __init__(self) -> None:
            self.data: dict[str, bytes] = {}

        async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
            return (60, self.data[key]) if key in self.data else (0, None)

        async def get(self, key: str) -> bytes | None:
            return self.data.get(key)

        async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
            self.data[key] = value

        async def clear(self, namespace: str | None = None, key: str | None = None) -> int:
            gone = [k for k in self.data if (namespace and k.startswith(namespace)) or k == key]
            for k in gone:
                del self.data[k]
            return len(gone)

    backend = DictBackend()
    FastAPICache.init(backend, prefix="mine")
    runs = Counter()
    async with client(app_with(runs)) as c:
        assert fc(await c.get("/items")) == "MISS"
        guarded = remote.get_backend()
        assert guarded is not None
        await guarded.drain()  # the write happens after the response is sent
        assert backend.data and all(k.startswith("mine:items:") for k in backend.data)
        config.get_store().clear()  # forget the in-process copy: read from the backend
        r = await c.get("/items")
    assert fc(r) == "HIT"
    assert r.json()["run"] == 1
    await FastAPICache.clear(namespace="items")
    assert backend.data == {}


async def test_in_memory_backend_keeps_fastapi_cache2s_own_methods() -> None:
    backend = InMemoryBackend()
    await backend.set("a:1", b"one", expire=30)
    await backend.set("a:2", b"two")
    assert await backend.get("a:1") == b"one"
    ttl, value = await backend.get_with_ttl("a:1")
    assert value == b"one" and 0 < ttl <= 30
    assert await backend.get_with_ttl("nope") == (0, None)
    assert await backend.clear(namespace="a:") == 2
    assert await backend.get("a:2") is None


def test_coders_round_trip() -> None:
    import datetime
    from decimal import Decimal

    value = {"when": datetime.datetime(2024, 1, 2, 3, 4, 5), "d": datetime.date(2024, 1, 2)}
    value["price"] = Decimal("1.10")  # type: ignore[assignment]
    assert JsonCoder.decode(JsonCoder.encode(value)) == value
    assert JsonCoder.decode_as_type(JsonCoder.encode((1, 2)), type_=tuple[int, int]) == (1, 2)
    assert PickleCoder.decode(PickleCoder.encode({1, 2})) == {1, 2}
    assert issubclass(JsonCoder, Coder)


def test_init_once_and_reset_puts_oxicache_settings_back() -> None:
    before = config.get_settings()
    FastAPICache.init(InMemoryBackend(), prefix="first", cache_status_header="X-Mine")
    FastAPICache.init(InMemoryBackend(), prefix="second")  # ignored, as in fastapi-cache2
    assert config.get_settings().prefix == "first"
    assert config.get_settings().header_name == "X-Mine"
    FastAPICache.reset()
    after = config.get_settings()
    assert (after.prefix, after.header_name) == (before.prefix, before.header_name)
    with pytest.raises(AssertionError):
        FastAPICache.get_backend()


async def test_works_before_init_on_oxicache_defaults(client: Any) -> None:
    runs = Counter()
    async with client(app_with(runs)) as c:
        a = await c.get("/items")
        b = await c.get("/items")
    assert (a.headers["x-cache"], b.headers["x-cache"]) == ("MISS", "HIT")
    assert oxicache.get_settings().header_name == "X-Cache"


# --- the remote backends: fastapi-cache2's constructors, oxicache's engines --------------------


async def _through_backend(client: Any, backend: Backend) -> None:
    """Stored in the backend, answered from it once the in-process copy is gone, dropped by
    ``FastAPICache.clear(namespace=)``."""
    import uuid

    FastAPICache.init(backend, prefix="fc" + uuid.uuid4().hex[:10])
    oxicache.configure(backend_timeout=2.0, backend_write_timeout=2.0)  # cold test servers
    runs = Counter()
    async with client(app_with(runs)) as c:
        assert fc(await c.get("/items")) == "MISS"
        guarded = remote.get_backend()
        assert guarded is not None
        await guarded.drain()  # the write happens after the response is sent
        config.get_store().clear()
        r = await c.get("/items")
        assert (fc(r), r.json()["run"]) == ("HIT", 1)
        await FastAPICache.clear(namespace="items")
        config.get_store().clear()
        again = await c.get("/items")
        await guarded.drain()  # before the caller closes its client
    assert fc(again) == "MISS"
    assert again.json()["run"] > 1


async def test_redis_backend_on_a_redis_client(client: Any, redis_server: Any) -> None:
    from redis.asyncio import Redis

    from oxicache.compat.fastapi_cache.backends.redis import RedisBackend

    redis = Redis.from_url(redis_server.url)
    try:
        backend = RedisBackend(redis)
        await _through_backend(client, backend)
        await backend.set("raw:key", b"value", expire=30)  # fastapi-cache2's own methods
        ttl, value = await backend.get_with_ttl("raw:key")
        assert value == b"value" and 28 <= ttl <= 30
        assert await backend.clear(key="raw:key") == 1
    finally:
        FastAPICache.reset()
        await redis.aclose()


async def test_memcached_backend_on_an_aiomcache_client(client: Any, memcached_server: Any) -> None:
    aiomcache = pytest.importorskip("aiomcache")
    from oxicache.compat.fastapi_cache.backends.memcached import MemcachedBackend

    host, port = memcached_server.address
    mcache = aiomcache.Client(host, port)
    backend = MemcachedBackend(mcache)
    assert backend.servers == [(host, port)]
    try:
        await _through_backend(client, backend)
    finally:
        FastAPICache.reset()
        await mcache.close()


async def test_dynamo_backend(client: Any, dynamodb_server: Any, dynamodb_table: str) -> None:
    from oxicache.compat.fastapi_cache.backends.dynamodb import DynamoBackend
    from tests.python.conftest import dynamodb_kwargs

    options = dynamodb_kwargs(dynamodb_server)
    backend = DynamoBackend(dynamodb_table, options.pop("region"), **options)
    await backend.init()
    try:
        await _through_backend(client, backend)
    finally:
        FastAPICache.reset()
        await backend.close()


async def test_injected_dependency_namespace_names_the_injected_parameters(client: Any) -> None:
    FastAPICache.init(InMemoryBackend())
    app = FastAPI()
    runs = Counter()

    # fastapi-cache2's own example: the endpoint's parameters carry the default names.
    @app.get("/namespaced")
    @cache(expire=60, injected_dependency_namespace="monty_python")
    def namespaced(
        __fastapi_cache_request: int = 42, __fastapi_cache_response: int = 17
    ) -> dict[str, int]:
        return {
            "request": __fastapi_cache_request,
            "response": __fastapi_cache_response,
            "run": runs(),
        }

    names = list(inspect.signature(namespaced).parameters)
    assert names[-2:] == ["monty_python_request", "monty_python_response"]
    async with client(app) as c:
        first = await c.get("/namespaced?__fastapi_cache_request=1")
        again = await c.get("/namespaced?__fastapi_cache_request=1")
    assert first.json() == again.json() == {"request": 1, "response": 17, "run": 1}
    assert (fc(first), fc(again)) == ("MISS", "HIT")


def test_an_injected_name_the_function_uses_is_refused_at_decoration() -> None:
    def clashing(__fastapi_cache_request: int = 42) -> int:
        return __fastapi_cache_request

    with pytest.raises(ValueError, match="injected_dependency_namespace"):
        cache(expire=60)(clashing)
    with pytest.raises(ValueError, match="identifier"):
        cache(injected_dependency_namespace="not valid")


async def test_an_endpoints_coder_is_not_called_and_hits_replay_the_render(client: Any) -> None:
    FastAPICache.init(InMemoryBackend())
    calls: list[str] = []

    class Loud(JsonCoder):
        @classmethod
        def encode(cls, value: Any) -> bytes:
            calls.append("encode")
            return super().encode(value)

    app = FastAPI()

    @app.get("/coded")
    @cache(expire=60, coder=Loud)
    async def coded() -> dict[str, int]:
        return {"n": 1}

    async with client(app) as c:
        first, again = await c.get("/coded"), await c.get("/coded")
    assert first.content == again.content and fc(again) == "HIT"
    assert calls == []

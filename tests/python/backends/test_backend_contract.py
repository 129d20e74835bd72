"""One contract every backend keeps (oxicache.backends.base), run against real servers.

To add an engine, add one entry to ``FACTORIES``: a function that takes the pytest request (to
ask for its server fixture from conftest.py) and a key prefix, and returns a fresh backend using
that prefix. Every test below then runs on it.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxicache.backends import Backend
from oxicache.exceptions import EntryTooLarge

MiB = 1024 * 1024

Factory = Callable[[pytest.FixtureRequest, str], Backend]


def _redis(request: pytest.FixtureRequest, prefix: str) -> Backend:
    from oxicache.backends.redis import RedisBackend

    server = request.getfixturevalue("redis_server")
    return RedisBackend(server.url, prefix=prefix)


def _redis_cluster(request: pytest.FixtureRequest, prefix: str) -> Backend:
    from oxicache.backends.redis import RedisBackend

    cluster = request.getfixturevalue("redis_cluster")
    return RedisBackend.cluster(cluster.startup_nodes, prefix=prefix)


def _redis_sentinel(request: pytest.FixtureRequest, prefix: str) -> Backend:
    from oxicache.backends.redis import RedisBackend

    setup = request.getfixturevalue("redis_sentinel")
    return RedisBackend.sentinel(setup.sentinels, service_name=setup.service_name, prefix=prefix)


def _memcached(request: pytest.FixtureRequest, prefix: str) -> Backend:
    from oxicache.backends.memcached import MemcachedBackend

    servers = [
        request.getfixturevalue(f).address for f in ("memcached_server", "memcached_server_2")
    ]
    return MemcachedBackend(servers, prefix=prefix)


def _dynamodb(request: pytest.FixtureRequest, prefix: str) -> Backend:
    from oxicache.backends.dynamodb import DynamoDBBackend
    from tests.python.conftest import dynamodb_kwargs

    server = request.getfixturevalue("dynamodb_server")
    table = request.getfixturevalue("dynamodb_table")
    return DynamoDBBackend(table, prefix=prefix, **dynamodb_kwargs(server))


def _memory(request: pytest.FixtureRequest, prefix: str) -> Backend:
    from oxicache.backends.memory import MemoryBackend

    return MemoryBackend(prefix=prefix, max_item_size=2 * MiB)


#: Backend name -> factory(request, prefix). One entry per engine.
FACTORIES: dict[str, Factory] = {
    "memory": _memory,
    "redis": _redis,
    "redis-cluster": _redis_cluster,
    "redis-sentinel": _redis_sentinel,
    "memcached": _memcached,
    "dynamodb": _dynamodb,
}

#: Engines that invalidate without finding the entries (memcached's generation counters), so
#: cannot count them: their delete_prefix / delete_tag return 0 and only the effect is checked.
UNCOUNTED = frozenset({"memcached"})


def counted(b: Backend, got: int, expected: int, *, at_least: bool = False) -> bool:
    """Whether ``got`` is the count ``b`` should report when ``expected`` entries went."""
    if b.name in UNCOUNTED:
        return got == 0
    return got >= expected if at_least else got == expected


def _prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(params=list(FACTORIES))
async def make_backend(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[str], Backend]]:
    """``make_backend(prefix)``: a backend of the parametrized kind; all are cleared and closed
    after the test."""
    factory = FACTORIES[request.param]
    made: list[Backend] = []

    def make(prefix: str) -> Backend:
        b = factory(request, prefix)
        made.append(b)
        return b

    yield make

    for b in made:
        await b.clear()
        await b.close()


@pytest.fixture
def backend(make_backend: Callable[[str], Backend]) -> Backend:
    """A fresh backend with a prefix of its own."""
    return make_backend(_prefix())


def k(b: Backend, *parts: str) -> str:
    """A key under ``b``'s prefix, as oxicache builds them."""
    prefix: str = getattr(b, "prefix", "")
    return ":".join([prefix, *parts])


async def test_protocol_and_name(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert isinstance(backend.name, str) and backend.name


async def test_absent_key_is_none(backend: Backend) -> None:
    assert await backend.get(k(backend, "ns", "r", "absent")) is None
    assert await backend.ttl(k(backend, "ns", "r", "absent")) is None


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00", b"hello", bytes(range(256)) * 4, b"\x00" * MiB, b"\xff\x00" * (MiB // 2 + 1)],
    ids=["empty", "nul", "ascii", "all-bytes", "1MiB-zeros", "1MiB-plus"],
)
async def test_round_trip_bytes(backend: Backend, value: bytes) -> None:
    key = k(backend, "ns", "r", "v")
    if backend.max_item_size is not None and len(value) > backend.max_item_size:
        # Engines with small items (memcached 1 MB, DynamoDB 400 KB) refuse it instead.
        with pytest.raises(EntryTooLarge):
            await backend.set(key, value, 60)
        assert await backend.get(key) is None
        return
    await backend.set(key, value, 60)
    got = await backend.get(key)
    assert got == value and isinstance(got, bytes)


async def test_ttl_is_about_right_and_entries_expire(backend: Backend) -> None:
    long_key, short_key = k(backend, "ns", "r", "long"), k(backend, "ns", "r", "short")
    await backend.set(long_key, b"L", 30)
    await backend.set(short_key, b"S", 0.3, tags=["t:short"])
    left = await backend.ttl(long_key)
    assert left is not None and 28 < left <= 30
    left = await backend.ttl(short_key)
    assert left is not None and 0 < left <= 0.3
    await asyncio.sleep(0.6)
    assert await backend.get(short_key) is None
    assert await backend.ttl(short_key) is None
    assert await backend.get(long_key) == b"L"


async def test_overwrite(backend: Backend) -> None:
    key = k(backend, "ns", "r", "o")
    await backend.set(key, b"one", 60)
    await backend.set(key, b"two", 5)
    assert await backend.get(key) == b"two"
    left = await backend.ttl(key)
    assert left is not None and left <= 5


async def test_delete(backend: Backend) -> None:
    key = k(backend, "ns", "r", "d")
    await backend.set(key, b"x", 60)
    assert await backend.delete(key) is True
    assert await backend.get(key) is None
    assert await backend.delete(key) is False


async def test_delete_prefix_only_matching(backend: Backend) -> None:
    inside = [k(backend, "a", "r", str(i)) for i in range(25)]
    outside = [k(backend, "ab", "r", "1"), k(backend, "b", "r", "1"), k(backend, "a")]
    for key in inside + outside:
        await backend.set(key, b"v", 60)
    removed = await backend.delete_prefix(k(backend, "a", ""))
    assert counted(backend, removed, len(inside), at_least=True)
    for key in inside:
        assert await backend.get(key) is None
    for key in outside:
        assert await backend.get(key) == b"v"


@pytest.mark.parametrize("special", ["*", "?", "[ab]", "\\", "x*y?[z]\\"])
async def test_delete_prefix_glob_characters_are_literal(backend: Backend, special: str) -> None:
    target = k(backend, special, "r", "1")
    # Keys a glob reading of the prefix would match: must survive.
    lookalikes = [k(backend, "a", "r", "1"), k(backend, "xxyz\\", "r", "1"), k(backend, "b", "1")]
    for key in [target, *lookalikes]:
        await backend.set(key, b"v", 60)
    assert counted(backend, await backend.delete_prefix(k(backend, special, "")), 1, at_least=True)
    assert await backend.get(target) is None
    for key in lookalikes:
        assert await backend.get(key) == b"v", key


async def test_delete_tag_removes_tagged_only(backend: Backend) -> None:
    tagged = [k(backend, "ns", "r", f"t{i}") for i in range(30)]
    other_tag = k(backend, "ns", "r", "other")
    untagged = k(backend, "ns", "r", "plain")
    for key in tagged:
        await backend.set(key, b"v", 60, tags=["ns:default", "path:abc"])
    await backend.set(other_tag, b"v", 60, tags=["ns:other"])
    await backend.set(untagged, b"v", 60)

    assert counted(backend, await backend.delete_tag("path:abc"), len(tagged))
    for key in tagged:
        assert await backend.get(key) is None
    assert await backend.get(other_tag) == b"v"
    assert await backend.get(untagged) == b"v"
    # The entries are gone for their other tags too; a deleted tag is empty afterwards.
    assert await backend.delete_tag("ns:default") == 0
    assert await backend.delete_tag("path:abc") == 0
    assert await backend.delete_tag("never-used") == 0


async def test_tag_written_after_invalidation_is_kept(backend: Backend) -> None:
    key = k(backend, "ns", "r", "again")
    await backend.set(key, b"1", 60, tags=["t"])
    assert counted(backend, await backend.delete_tag("t"), 1)
    await backend.set(key, b"2", 60, tags=["t"])
    assert await backend.get(key) == b"2"
    assert counted(backend, await backend.delete_tag("t"), 1)
    assert await backend.get(key) is None


async def test_clear_only_own_prefix(
    backend: Backend, make_backend: Callable[[str], Backend]
) -> None:
    neighbour = make_backend(_prefix())
    # A prefix that extends ours must not be touched either ("p" vs "p2").
    extended = make_backend(getattr(backend, "prefix", "") + "2")
    await backend.set(k(backend, "ns", "r", "1"), b"mine", 60, tags=["t"])
    await neighbour.set(k(neighbour, "ns", "r", "1"), b"theirs", 60, tags=["t"])
    await extended.set(k(extended, "ns", "r", "1"), b"ext", 60)
    await backend.clear()
    assert await backend.get(k(backend, "ns", "r", "1")) is None
    assert await neighbour.get(k(neighbour, "ns", "r", "1")) == b"theirs"
    assert await extended.get(k(extended, "ns", "r", "1")) == b"ext"
    # The neighbour's tag index survived too.
    assert counted(neighbour, await neighbour.delete_tag("t"), 1)
    assert await neighbour.get(k(neighbour, "ns", "r", "1")) is None


async def test_too_large_is_refused_without_writing(backend: Backend) -> None:
    limit = 4096
    backend.max_item_size = limit
    key = k(backend, "ns", "r", "big")
    await backend.set(key, b"a" * limit, 60)  # exactly the limit is fine
    with pytest.raises(EntryTooLarge):
        await backend.set(key, b"b" * (limit + 1), 60, tags=["big"])
    assert await backend.get(key) == b"a" * limit  # the old entry is untouched
    assert await backend.delete_tag("big") == 0  # and no tag was written
    fresh = k(backend, "ns", "r", "fresh")
    with pytest.raises(EntryTooLarge):
        await backend.set(fresh, b"c" * (limit + 1), 60)
    assert await backend.get(fresh) is None


async def test_close_then_use_again(backend: Backend) -> None:
    key = k(backend, "ns", "r", "c")
    await backend.set(key, b"before", 60)
    await backend.close()
    assert await backend.get(key) == b"before"
    await backend.set(key, b"after", 60)
    await backend.close()
    await backend.close()  # idempotent
    assert await backend.get(key) == b"after"


async def test_concurrent_operations(backend: Backend) -> None:
    keys = [k(backend, "ns", "r", f"c{i}") for i in range(200)]
    await asyncio.gather(*(backend.set(key, key.encode(), 60, tags=["c"]) for key in keys))
    got = await asyncio.gather(*(backend.get(key) for key in keys))
    assert got == [key.encode() for key in keys]
    assert counted(backend, await backend.delete_tag("c"), len(keys))


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_fresh_event_loops(backend: Backend) -> None:
    """The same backend used from successive event loops (one asyncio.run() each) works: the
    connections of a finished loop cannot be reused (nor closed from another loop)."""
    key = k(backend, "ns", "r", "loops")
    asyncio.run(backend.set(key, b"1", 60))
    assert asyncio.run(backend.get(key)) == b"1"
    assert asyncio.run(backend.delete(key)) is True
    gc.collect()  # the dropped clients' sockets are reclaimed here, under this test's filter


_key_part = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    items=st.dictionaries(_key_part, st.binary(max_size=2048), min_size=1, max_size=8),
)
def test_round_trip_property(backend: Backend, items: dict[str, bytes]) -> None:
    async def run() -> None:
        keys = {k(backend, "p", "r", name): value for name, value in items.items()}
        for key, value in keys.items():
            await backend.set(key, value, 60, tags=["prop"])
        for key, value in keys.items():
            assert await backend.get(key) == value
        assert counted(backend, await backend.delete_tag("prop"), len(keys))
        for key in keys:
            assert await backend.get(key) is None
        await backend.close()

    asyncio.run(run())

"""The pipelined read path of RedisBackend (backends/redis_reads.py) on a real redis-server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from oxicache.backends.redis import RedisBackend
from oxicache.backends.redis.reads import PipelinedReads, reads_for_url
from tests.python import servers


@pytest.fixture(scope="module")
def redis_proc() -> Iterator[servers.RedisServer]:
    with servers.RedisServer() as server:
        yield server


def test_only_plain_standalone_urls_take_the_fast_path() -> None:
    assert isinstance(reads_for_url("redis://h:1/2", {}), PipelinedReads)
    assert isinstance(reads_for_url("unix:///tmp/redis.sock?db=1", {}), PipelinedReads)
    assert reads_for_url("rediss://h:1/0", {}) is None  # TLS: redis-py
    assert reads_for_url("redis://h:1/0", {"socket_timeout": 1}) is None  # client options
    assert RedisBackend("redis://h:1/0", pipelined_reads=False)._reads is None


async def test_gets_round_trip_concurrently(redis_proc: servers.RedisServer) -> None:
    backend = RedisBackend(redis_proc.url, prefix="reads")
    assert backend._reads is not None
    for i in range(50):
        await backend.set(f"reads:k{i}", b"v%d" % i, 60)
    got = await asyncio.gather(*(backend.get(f"reads:k{i}") for i in range(50)))
    assert got == [b"v%d" % i for i in range(50)]
    assert await backend.get("reads:absent") is None
    assert await backend.get("reads:k1") == b"v1"
    await backend.close()


async def test_a_cancelled_read_never_desyncs_the_connection(
    redis_proc: servers.RedisServer,
) -> None:
    """A read abandoned at its deadline keeps its place: its reply is read and dropped, so the
    next read gets its own value (redis-py would have to close the connection)."""
    backend = RedisBackend(redis_proc.url, prefix="reads")
    await backend.set("reads:a", b"A", 60)
    await backend.set("reads:b", b"B", 60)
    assert await backend.get("reads:a") == b"A"  # connected
    redis_proc.pause()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await backend.get("reads:a")
    finally:
        redis_proc.resume()
    assert await backend.get("reads:b") == b"B"
    assert await backend.get("reads:a") == b"A"
    await backend.close()


async def test_username_password_and_database(redis_proc: servers.RedisServer) -> None:
    admin = RedisBackend(redis_proc.url, prefix="reads")
    client, _ = admin._conn()
    await client.execute_command("ACL", "SETUSER", "alice", "on", ">s3cret", "~*", "+@all")
    url = f"redis://alice:s3cret@127.0.0.1:{redis_proc.port}/3"
    backend = RedisBackend(url, prefix="reads")
    assert backend._reads is not None
    await backend.set("reads:db3", b"three", 60)
    assert await backend.get("reads:db3") == b"three"
    assert await admin.get("reads:db3") is None  # database 0
    wrong = RedisBackend(f"redis://alice:nope@127.0.0.1:{redis_proc.port}/3", prefix="reads")
    with pytest.raises(Exception, match=r"(?i)pass|auth"):
        await wrong.get("reads:db3")
    for b in (admin, backend, wrong):
        await b.close()


async def test_a_restarted_server_fails_in_flight_reads_then_reconnects(
    redis_proc: servers.RedisServer,
) -> None:
    backend = RedisBackend(redis_proc.url, prefix="reads")
    await backend.set("reads:x", b"x", 60)
    assert await backend.get("reads:x") == b"x"
    redis_proc.restart()  # empty
    with pytest.raises(ConnectionError):
        await backend.get("reads:x")
    assert await backend.get("reads:x") is None  # a new connection, an empty server
    await backend.close()


def test_each_event_loop_gets_its_own_connection(redis_proc: servers.RedisServer) -> None:
    backend = RedisBackend(redis_proc.url, prefix="reads")

    async def once() -> bytes | None:
        await backend.set("reads:loop", b"L", 60)
        return await backend.get("reads:loop")

    assert asyncio.run(once()) == b"L"
    assert asyncio.run(once()) == b"L"  # the first loop's socket is not reused


async def test_a_deadline_that_fires_late_gives_the_reply_a_second_chance(
    redis_proc: servers.RedisServer,
) -> None:
    """The loop was blocked past the deadline (other requests' work): the reply is in the
    socket, and the read returns it instead of failing; a frozen server still times out.

    A deadline of 50 ms, not 5: the second chance is one more deadline, and a healthy server
    on a loaded machine must answer within it."""
    import time

    deadline = 0.05
    backend = RedisBackend(redis_proc.url, prefix="reads")
    await backend.set("reads:late", b"L", 60)
    get_within = backend.get_within
    assert get_within is not None
    assert await backend.get("reads:late") == b"L"  # connected (no deadline)
    read = asyncio.ensure_future(get_within("reads:late", deadline))
    await asyncio.sleep(0)  # the GET is queued
    time.sleep(3 * deadline)  # the loop is blocked well past the deadline
    assert await read == b"L"
    redis_proc.pause()
    try:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await get_within("reads:late", deadline)
        assert time.perf_counter() - started < 0.5
    finally:
        redis_proc.resume()
    assert await backend.get("reads:late") == b"L"
    await backend.close()


async def test_read_soon_sends_on_the_live_connection_only(
    redis_proc: servers.RedisServer,
) -> None:
    """The guard's hit path: before the first read connects, ``read_soon`` says None (the
    caller awaits ``get_within``, which connects); afterwards it returns the reply's future,
    which fails with TimeoutError past its deadline while the server is frozen."""
    backend = RedisBackend(redis_proc.url, prefix="reads")
    await backend.set("reads:soon", b"S", 60)
    assert backend.read_soon("reads:soon", 0.5) is None  # not connected yet
    assert await backend.get_within("reads:soon", 0.5) == b"S"  # connects
    waiter = backend.read_soon("reads:soon", 0.5)
    assert isinstance(waiter, asyncio.Future)
    assert await waiter == b"S"
    redis_proc.pause()
    try:
        late = backend.read_soon("reads:soon", 0.02)
        assert late is not None
        with pytest.raises(TimeoutError):
            await late
    finally:
        redis_proc.resume()
    assert await backend.get_within("reads:soon", 0.5) == b"S"  # still in sync
    assert RedisBackend(redis_proc.url, pipelined_reads=False).read_soon("reads:soon", 1) is None
    await backend.close()


async def test_a_shorter_deadline_behind_a_longer_one_still_holds(
    redis_proc: servers.RedisServer,
) -> None:
    import time

    backend = RedisBackend(redis_proc.url, prefix="reads")
    await backend.set("reads:mixed", b"M", 60)
    assert await backend.get_within("reads:mixed", 1.0) == b"M"  # connected
    redis_proc.pause()
    try:
        longer = asyncio.ensure_future(backend.get_within("reads:mixed", 1.0))
        await asyncio.sleep(0)  # in flight
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await backend.get_within("reads:mixed", 0.05)
        elapsed = time.perf_counter() - started
        with pytest.raises(TimeoutError):
            await longer
    finally:
        redis_proc.resume()
    await backend.close()
    # Its own deadline, not the longer read's (1 s): the margin is for a loaded machine.
    assert elapsed < 0.5, elapsed


async def test_guard_hit_path_counts_and_keeps_the_breaker(
    redis_proc: servers.RedisServer,
) -> None:
    """GuardedBackend.get on a connected pipelined backend awaits the reply's future itself:
    hits, misses and a frozen server's timeouts are counted as on the general path. (Its own
    deadlines, large enough for a healthy server on a loaded machine to answer in.)"""
    from oxicache.backends.guard import BreakerState, GuardedBackend

    backend = RedisBackend(redis_proc.url, prefix="reads")
    guard = GuardedBackend(backend, timeout=0.2, write_timeout=1.0)
    await guard.set("reads:g", b"G", 60)
    assert await guard.get("reads:g") == b"G"  # connects (general path)
    assert await guard.get("reads:g") == b"G"  # hit path
    assert await guard.get("reads:none") is None
    assert (guard.counters.hits, guard.counters.misses) == (2, 1)
    redis_proc.pause()
    try:
        assert await guard.get("reads:g") is None
    finally:
        redis_proc.resume()
    assert guard.counters.timeouts == 1
    assert guard.state is BreakerState.CLOSED  # one failure is not an outage
    assert await guard.get("reads:g") == b"G"
    await guard.close()


async def test_guard_never_raises_when_the_connection_is_closing(
    redis_proc: servers.RedisServer,
) -> None:
    """Between a transport's close() and its connection_lost(), sending raises at once: the
    guard answers a miss (counted), and a later read reconnects."""
    from oxicache.backends.guard import GuardedBackend

    backend = RedisBackend(redis_proc.url, prefix="reads")
    guard = GuardedBackend(backend, timeout=0.5)
    await guard.set("reads:c", b"C", 60)
    assert await guard.get("reads:c") == b"C"  # connected
    reads = backend._reads
    assert reads is not None and reads._proto is not None and reads._proto.transport is not None
    reads._proto.transport.close()  # closing, not yet closed: connection_lost comes later
    assert backend.read_soon("reads:c", 0.5) is None
    assert await guard.get("reads:c") is None  # a miss, not an exception
    assert guard.counters.errors == 1
    await asyncio.sleep(0.01)
    assert await guard.get("reads:c") == b"C"  # reconnected
    await guard.close()


async def test_without_hiredis_reads_fall_back_to_redis_py_and_still_cache(
    redis_proc: servers.RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    client: Any,
) -> None:
    """A missing optional speed-up never disables caching: without hiredis, a standalone URL
    reads through redis-py (its own parser), says so once, and the route caches."""
    import importlib.util

    from fastapi import FastAPI

    import oxicache
    from oxicache.backends.redis import reads as redis_reads

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "hiredis" else real(name, *a)
    )
    monkeypatch.setattr(redis_reads, "_warned_no_hiredis", False)
    caplog.set_level(logging.WARNING, logger="oxicache")
    backend = RedisBackend(redis_proc.url, prefix="nohiredis")
    assert reads_for_url(redis_proc.url, {}) is None
    oxicache.configure(backend, backend_timeout=1.0)
    app = FastAPI()
    runs: list[int] = []

    @app.get("/x")
    @oxicache.cache(ttl=60)
    async def x() -> dict[str, int]:
        runs.append(1)
        return {"n": 1}

    try:
        async with client(app) as c:
            labels = []
            for _ in range(5):
                labels.append((await c.get("/x")).headers["x-cache"])
                guard = oxicache.remote.get_backend()
                assert guard is not None
                await guard.drain()
        assert labels == ["MISS", "HIT", "HIT", "HIT", "HIT"]
        assert runs == [1]
        lines = [r.getMessage() for r in caplog.records if "hiredis" in r.getMessage()]
        assert len(lines) == 1 and "pip install 'oxicache[redis]'" in lines[0]
    finally:
        oxicache.configure("memory://", backend_timeout=0.005)
        await backend.close()

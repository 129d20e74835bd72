"""GuardedBackend against a real redis-server that the tests freeze, kill and restart.

No fake backend: the failures are real ones (SIGSTOP for a server that accepts connections but
never answers, SIGTERM for connection refused), seen through redis-py's asyncio client and
:class:`~oxicache.backends.redis.RedisBackend`. The server is this module's own (not the
session's shared ``redis_server``), since these tests break it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from oxicache.backends import Backend
from oxicache.backends.guard import BreakerState, GuardCounters, GuardedBackend
from oxicache.backends.redis import RedisBackend
from oxicache.exceptions import ConfigError, EntryTooLarge
from tests.python import servers

pytest.importorskip("redis", reason="the guard tests drive redis-py (the test extra)")

SECRET_KEY = "oxicache:default:route:s3cr3t-key-material"
SECRET_VALUE = b"s3cr3t-value-bytes"
RESET = 0.3  # reset_timeout used by the tests, seconds


@pytest.fixture(scope="module")
def redis_proc() -> Iterator[servers.RedisServer]:
    missing = servers.missing_binaries("redis")
    if missing:
        reason = f"the guard tests need {', '.join(missing)} (install with `make servers`)"
        if os.environ.get("OXICACHE_REQUIRE_SERVERS"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with servers.RedisServer() as server:
        yield server


@pytest.fixture
def redis(redis_proc: servers.RedisServer) -> Iterator[servers.RedisServer]:
    """The module's server, running and empty at the start and at the end of each test."""
    _ensure_running(redis_proc)
    redis_proc.flushall()
    yield redis_proc
    _ensure_running(redis_proc)


def _ensure_running(server: servers.RedisServer) -> None:
    proc = server.process
    if proc.running:
        proc.resume()  # harmless when it is not stopped
        try:
            proc.wait_ready(timeout=5)
            return
        except servers.ServerError:
            pass
    server.restart()


def _guard(server: servers.RedisServer, **kw: Any) -> GuardedBackend:
    return GuardedBackend(RedisBackend(server.url), reset_timeout=RESET, **kw)


async def _open_by_failures(guard: GuardedBackend, limit: int = 100) -> int:
    """Calls get until the breaker opens; returns how many calls it took."""
    for n in range(1, limit + 1):
        assert await guard.get(SECRET_KEY) is None
        if guard.state is BreakerState.OPEN:
            return n
    raise AssertionError(f"the breaker did not open after {limit} failing calls")


async def _wait_closed(guard: GuardedBackend, within: float = 15.0) -> None:
    """Calls get every reset_timeout until a probe closes the breaker."""
    deadline = time.monotonic() + within
    while guard.state is not BreakerState.CLOSED:
        assert time.monotonic() < deadline, f"still {guard.state} after {within} s"
        await asyncio.sleep(RESET)
        await guard.get("oxicache:probe")


def _p99(samples: Sequence[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


# --- a healthy backend -----------------------------------------------------------------------


async def test_is_a_backend_and_passes_everything_through(redis: servers.RedisServer) -> None:
    guard = _guard(redis, timeout=1.0, write_timeout=1.0)
    assert isinstance(guard, Backend)
    assert guard.name == "redis"
    try:
        assert await guard.get("oxicache:a:1") is None
        await guard.set("oxicache:a:1", b"one", 60, tags=["t1"])
        await guard.set("oxicache:a:2", b"two", 60, tags=["t1", "t2"])
        await guard.set("oxicache:b:1", b"three", 60)
        assert await guard.get("oxicache:a:1") == b"one"
        left = await guard.ttl("oxicache:a:1")
        assert left is not None and 59 < left <= 60
        assert await guard.delete_tag("t2") == 1
        assert await guard.get("oxicache:a:2") is None
        assert await guard.delete_prefix("oxicache:a:") == 1
        assert await guard.delete("oxicache:b:1") is True
        assert await guard.delete("oxicache:b:1") is False
        await guard.set("oxicache:c:1", b"x", 60)
        await guard.clear()
        assert await guard.get("oxicache:c:1") is None
        c = guard.counters
        assert (c.hits, c.misses) == (1, 3)
        assert (c.errors, c.timeouts, c.short_circuited, c.state_changes) == (0, 0, 0, 0)
        assert c.invalidations_failed == 0
        assert guard.state is BreakerState.CLOSED
    finally:
        await guard.close()


async def test_set_later_writes_in_the_background(redis: servers.RedisServer) -> None:
    guard = _guard(redis, timeout=1.0, write_timeout=1.0)
    try:
        for i in range(20):
            assert guard.set_later(f"oxicache:bg:{i}", b"v%d" % i, 60, ("bg",)) is True
        assert guard.pending_writes == 20
        await guard.drain()
        assert guard.pending_writes == 0
        assert [await guard.get(f"oxicache:bg:{i}") for i in range(20)] == [
            b"v%d" % i for i in range(20)
        ]
        assert await guard.delete_tag("bg") == 20
    finally:
        await guard.close()


def test_set_later_without_a_running_loop_drops(redis: servers.RedisServer) -> None:
    guard = _guard(redis)
    assert guard.set_later("oxicache:x", b"v", 60) is False
    assert guard.counters.writes_dropped == 1


async def test_refused_writes_do_not_trip_the_breaker(redis: servers.RedisServer) -> None:
    backend = RedisBackend(redis.url, max_item_size=10)
    guard = GuardedBackend(backend, failure_threshold=1, write_timeout=1.0)
    try:
        for _ in range(3):
            await guard.set("oxicache:big", b"x" * 11, 60)
        for ttl in (0, -1, float("nan"), float("inf")):
            await guard.set("oxicache:big", b"x", ttl)
        assert guard.counters.refused == 7
        assert guard.counters.errors == 0
        assert guard.state is BreakerState.CLOSED
        with pytest.raises(EntryTooLarge):  # the backend itself does raise
            await backend.set("oxicache:big", b"x" * 11, 60)
    finally:
        await guard.close()


# --- a frozen server: deadlines, then the breaker --------------------------------------------


async def test_frozen_server_opens_the_breaker_and_reads_stay_fast(
    redis: servers.RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oxicache.backend")
    # A 50 ms read deadline (the default is 5 ms): the probe and the read after the thaw need
    # a healthy server to answer within it, on a loaded machine too.
    guard = _guard(redis, timeout=0.05, write_timeout=1.0)
    try:
        await guard.backend.set(SECRET_KEY, SECRET_VALUE, 60)  # connects, outside the guard
        redis.pause()

        # Closed: each read waits at most its deadline; failure_threshold of them in a row,
        # with no success for open_after (50 ms), open it: 5 reads of 50 ms here (more if a
        # deadline fired late on a busy loop: no verdict).
        t0 = time.perf_counter()
        calls = await _open_by_failures(guard)
        closed_phase = time.perf_counter() - t0
        assert 5 <= calls <= 12
        assert guard.counters.timeouts >= 5
        bound = max(guard.open_after, guard.failure_threshold * guard.timeout) + 0.5
        assert closed_phase < bound, closed_phase

        # Open: no I/O, every read is an immediate miss.
        latencies = []
        for _ in range(200):
            t = time.perf_counter()
            assert await guard.get(SECRET_KEY) is None
            latencies.append(time.perf_counter() - t)
        p99 = _p99(latencies)
        print(f"open breaker: get p99 {p99 * 1e6:.1f} us, max {max(latencies) * 1e6:.1f} us")
        assert p99 <= 0.005, f"p99 {p99 * 1000:.2f} ms while open"
        assert guard.counters.short_circuited >= 200
        # Writes are skipped, not attempted.
        await guard.set(SECRET_KEY, b"other", 60)
        assert guard.set_later(SECRET_KEY, b"other", 60) is False
        assert guard.pending_writes == 0

        # Thawed: after reset_timeout one probe closes it, and the value written before is back.
        redis.resume()
        await _wait_closed(guard)
        assert await guard.get(SECRET_KEY) == SECRET_VALUE
        assert guard.counters.state_changes >= 3  # closed→open→half-open→closed
    finally:
        redis.resume()
        await guard.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "circuit open" in text and "circuit closed" in text
    assert SECRET_KEY not in text and "s3cr3t" not in text


async def test_a_frozen_server_is_silent_a_healthy_one_is_not(redis: servers.RedisServer) -> None:
    """``silent``: the last call failed and nothing was heard for a while (a hung
    server: optional calls such as a cross-process lock are skipped); a success ends it."""
    guard = _guard(redis, timeout=0.05, write_timeout=1.0, open_after=0.2, failure_threshold=10**6)
    try:
        await guard.backend.set(SECRET_KEY, SECRET_VALUE, 60)  # connects, outside the guard
        assert await guard.get(SECRET_KEY) == SECRET_VALUE
        assert not guard.silent
        redis.pause()
        assert await guard.get(SECRET_KEY) is None  # its deadline
        await asyncio.sleep(guard.open_after)  # silent: max(2 deadlines, open_after)
        assert guard.state is BreakerState.CLOSED and guard.silent
        redis.resume()
        await _wait_closed(guard)
        assert await guard.get(SECRET_KEY) == SECRET_VALUE
        assert not guard.silent
    finally:
        redis.resume()
        await guard.close()


async def test_a_hiccup_that_fails_every_read_in_flight_does_not_open_the_breaker(
    redis: servers.RedisServer,
) -> None:
    """Redis stalls for a few ms under load: every read in flight misses its deadline at
    once, but reads succeed again right after; that is not an outage (``open_after``).

    Deadlines a healthy server on a loaded machine answers within (50 ms reads, 1 s writes),
    so ``open_after`` is 1 s here: the reads in flight fail a deadline after the last
    success, which is past the default 50 ms."""
    guard = _guard(redis, timeout=0.05, write_timeout=1.0, open_after=1.0)
    await guard.set("k", b"v", 60)
    assert await guard.get("k") == b"v"
    redis.pause()
    try:
        got = await asyncio.gather(*(guard.get("k") for _ in range(32)))
    finally:
        redis.resume()
    assert got == [None] * 32
    assert guard.counters.timeouts >= guard.failure_threshold
    assert guard.state is BreakerState.CLOSED
    assert await guard.get("k") == b"v"
    await guard.close()


async def test_a_busy_event_loop_does_not_open_the_breaker(redis: servers.RedisServer) -> None:
    """A deadline that fires late because the event loop was blocked (other requests' work)
    is a miss for that call, but says nothing about the backend: the breaker stays closed and
    the next read succeeds (the healthy-Redis-under-load case). A 50 ms deadline (blocked for
    six of them): the next read needs a healthy server to answer within it, loaded or not."""
    guard = _guard(redis, timeout=0.05, write_timeout=1.0, failure_threshold=2)
    await guard.set("k", b"v", 60)
    for _ in range(3):
        reads = [asyncio.ensure_future(guard.get("k")) for _ in range(10)]
        await asyncio.sleep(0)  # the commands go out
        time.sleep(6 * guard.timeout)  # the loop is blocked past every deadline
        await asyncio.gather(*reads)
    assert guard.state is BreakerState.CLOSED
    assert guard.counters.loop_busy >= 1
    assert guard.counters.loop_busy <= guard.counters.timeouts
    assert await guard.get("k") == b"v"
    await guard.close()


async def test_half_open_lets_a_single_probe_through(redis: servers.RedisServer) -> None:
    guard = _guard(redis)
    try:
        await guard.backend.get("oxicache:warm")
        redis.pause()
        await _open_by_failures(guard)
        await asyncio.sleep(RESET * 1.2)
        before = dataclass_copy(guard.counters)
        t0 = time.perf_counter()
        results = await asyncio.gather(*(guard.get(f"oxicache:k{i}") for i in range(20)))
        elapsed = time.perf_counter() - t0
        assert results == [None] * 20
        after = guard.counters
        # One probe went to the frozen server and timed out; the 19 others failed fast.
        assert after.timeouts - before.timeouts == 1
        assert after.short_circuited - before.short_circuited == 19
        assert guard.state is BreakerState.OPEN  # the failed probe reopened it
        assert elapsed < 0.5, elapsed
        # Still open: no new probe before another reset_timeout.
        await guard.get("oxicache:k")
        assert guard.counters.timeouts == after.timeouts
    finally:
        redis.resume()
        await guard.close()


async def test_background_writes_are_bounded_and_never_delay(redis: servers.RedisServer) -> None:
    # A breaker that never opens, so every write really waits on the frozen server.
    guard = GuardedBackend(
        RedisBackend(redis.url),
        failure_threshold=10**6,
        write_timeout=0.5,
        max_pending_writes=8,
    )
    try:
        await guard.backend.get("oxicache:warm")
        redis.pause()
        t0 = time.perf_counter()
        scheduled = [guard.set_later(f"oxicache:w{i}", b"v", 60) for i in range(50)]
        elapsed = time.perf_counter() - t0
        assert scheduled.count(True) == 8
        assert guard.counters.writes_dropped == 42
        assert guard.pending_writes == 8
        assert elapsed < 0.05, elapsed  # scheduling does no I/O
        await guard.drain()  # each write ends at its deadline
        assert guard.pending_writes == 0
        assert guard.counters.timeouts == 8
        redis.resume()
        # Room again: writes go through once the server answers.
        assert guard.set_later("oxicache:after", b"ok", 60) is True
        await guard.drain()
        assert await guard.backend.get("oxicache:after") == b"ok"
    finally:
        redis.resume()
        await guard.close()


# --- a dead server: connection refused, restart ---------------------------------------------


async def test_killed_server_then_restart(
    redis: servers.RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oxicache.backend")
    guard = _guard(redis, timeout=0.05, invalidate_timeout=0.5)
    try:
        await guard.set(SECRET_KEY, SECRET_VALUE, 60)
        assert await guard.get(SECRET_KEY) == SECRET_VALUE
        redis.terminate()

        await _open_by_failures(guard)
        assert guard.counters.errors + guard.counters.timeouts >= 5
        # Invalidations do not claim a success they did not have.
        assert await guard.delete_tag("t") == 0
        assert await guard.delete_prefix("oxicache:default:") == 0
        assert await guard.delete(SECRET_KEY) is False
        await guard.clear()
        assert guard.counters.invalidations_failed == 4
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any("not applied" in r.getMessage() for r in warnings)

        redis.restart()  # empty, same port
        await _wait_closed(guard)
        assert await guard.get(SECRET_KEY) is None  # the restart lost it
        await guard.set(SECRET_KEY, SECRET_VALUE, 60)
        assert await guard.get(SECRET_KEY) == SECRET_VALUE
        assert await guard.delete(SECRET_KEY) is True
    finally:
        await guard.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET_KEY not in text and "s3cr3t" not in text
    assert all(r.name == "oxicache.backend" for r in caplog.records)


async def test_no_exception_escapes_whatever_the_server_does(redis: servers.RedisServer) -> None:
    guard = _guard(redis, timeout=0.02, write_timeout=0.02, invalidate_timeout=0.05)
    ops = [
        lambda: guard.get("oxicache:k"),
        lambda: guard.set("oxicache:k", b"v", 60, ("t",)),
        lambda: guard.ttl("oxicache:k"),
        lambda: guard.delete("oxicache:k"),
        lambda: guard.delete_prefix("oxicache:"),
        lambda: guard.delete_tag("t"),
        guard.clear,
    ]
    try:
        for breaker in (redis.pause, redis.resume, redis.terminate, redis.restart):
            breaker()
            for _ in range(3):
                await asyncio.gather(*(op() for op in ops))
                await asyncio.sleep(RESET / 3)
    finally:
        await guard.close()


# --- logging ----------------------------------------------------------------------------------


async def test_failures_are_summarised_at_most_once_per_interval(
    redis: servers.RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oxicache.backend")
    guard = _guard(redis, timeout=0.05, failure_threshold=10**6)
    try:
        redis.terminate()
        for _ in range(50):
            await guard.get(SECRET_KEY)
        summaries = [r for r in caplog.records if "failed operations" in r.getMessage()]
        assert len(summaries) == 1  # the first failure, then silence for log_interval
        assert guard.counters.errors + guard.counters.timeouts == 50
        # Once the interval has passed, the next failure reports what was suppressed.
        guard.log_interval = 0.0
        await guard.get(SECRET_KEY)
        summaries = [r for r in caplog.records if "failed operations" in r.getMessage()]
        assert len(summaries) == 2
        # The 49 failures suppressed after the first report, with this call's own (50) when it
        # was counted before the report was written (seen as 49 once in a loaded full run).
        reported = re.search(r"(\d+) failed operations", summaries[1].getMessage())
        assert reported is not None and int(reported[1]) in (49, 50), summaries[1].getMessage()
    finally:
        redis.restart()
        await guard.close()


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"timeout": 0},
        {"timeout": -1},
        {"write_timeout": float("inf")},
        {"invalidate_timeout": float("nan")},
        {"reset_timeout": 0},
        {"failure_threshold": 0},
        {"failure_threshold": 1.5},
        {"max_pending_writes": 0},
        {"log_interval": -1},
    ],
)
def test_invalid_settings_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        GuardedBackend(RedisBackend("redis://127.0.0.1:1/0"), **kw)


def test_counters_reset_and_dict() -> None:
    c = GuardCounters(hits=2, errors=1)
    assert c.as_dict()["hits"] == 2
    c.reset()
    assert set(c.as_dict().values()) == {0}


def dataclass_copy(c: GuardCounters) -> GuardCounters:
    return GuardCounters(**c.as_dict())


async def test_write_later_says_why_a_write_was_not_scheduled() -> None:
    """The reason both ways in put in ``Cache-Status`` (``detail=``), decided before any I/O."""
    from oxicache.backends.memory import MemoryBackend

    guard = GuardedBackend(MemoryBackend(prefix="w", max_item_size=10), max_pending_writes=1)
    assert guard.write_later("w:big", b"x" * 11, 60) == "backend-too-large"
    assert guard.write_later("w:a", b"a", 60) is None
    assert guard.write_later("w:b", b"b", 60) == "backend-busy"  # one write in flight already
    await guard.drain()
    assert await guard.get("w:a") == b"a" and await guard.get("w:big") is None
    guard._set_state(BreakerState.OPEN, "test")
    assert guard.write_later("w:c", b"c", 60) == "backend-down"
    await guard.close()

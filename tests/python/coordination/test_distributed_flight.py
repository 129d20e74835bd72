"""Cross-process single-flight (oxicache.distributed_flight) on a real ``uvicorn --workers 4``.

The app runs in worker processes that share nothing but Redis: the handler counts its runs
with ``INCR`` in Redis so the count is visible across processes, and every reply says which
worker sent it (``x-pid``), so the spread of the requests over the workers can be checked.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.python import prefork
from tests.python.servers import free_port

WORKERS = 4

APP = textwrap.dedent(
    """
    import asyncio
    import os

    import redis.asyncio as aioredis
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    import oxicache
    from oxicache import cache

    URL = os.environ["OXICACHE_URL"]
    PREFIX = os.environ["T_PREFIX"]
    HANG = float(os.environ.get("T_HANG", "0"))

    if os.environ.get("T_DEFAULTS"):
        oxicache.configure(prefix=PREFIX)  # every deadline and lock setting at its default
    else:
        oxicache.configure(
            prefix=PREFIX,
            # Deadlines that a loaded 2-core test machine meets: these tests are about the
            # coalescing, not the breaker (a slow Redis means in-process coalescing only).
            backend_timeout=0.5,
            backend_write_timeout=1.0,
            lock_timeout=float(os.environ["T_LOCK_TIMEOUT"]),
            lock_lease=float(os.environ["T_LEASE"]),
        )
    app = FastAPI()
    _counter = []


    @app.middleware("http")
    async def tag_pid(request: Request, call_next):
        response = await call_next(request)
        response.headers["x-pid"] = str(os.getpid())
        return response


    @app.get("/pid")
    async def pid() -> dict:
        return {"pid": os.getpid()}


    @app.get("/stats")
    async def stats() -> dict:
        s = oxicache.stats()
        return {"pid": os.getpid(), "events": s["events"], "backend": s["backend"]}


    @app.get("/slow")
    @cache(ttl=60)
    async def slow(round: int = 0) -> dict:
        if not _counter:
            _counter.append(aioredis.Redis.from_url(URL))
        run = int(await _counter[0].incr(f"{PREFIX}:runs:{round}"))
        await asyncio.sleep(HANG if run == 1 and HANG else 0.3)
        return {"round": round, "run": run, "pid": os.getpid()}


    @app.get("/plain")
    async def plain(round: int = 0) -> JSONResponse:
        # No @cache: with CacheMiddleware (T_MIDDLEWARE), the middleware stores this.
        if not _counter:
            _counter.append(aioredis.Redis.from_url(URL))
        run = int(await _counter[0].incr(f"{PREFIX}:runs:{round}"))
        await asyncio.sleep(0.3)
        body = {"round": round, "run": run, "pid": os.getpid()}
        return JSONResponse(body, headers={"cache-control": "max-age=60"})


    if os.environ.get("T_MIDDLEWARE"):
        app.add_middleware(oxicache.CacheMiddleware)
    """
)


@pytest.fixture
def workers(request: pytest.FixtureRequest, tmp_path: Path, redis_server: Any) -> Iterator[Any]:
    """``workers(lease=..., lock_timeout=..., hang=...)`` starts uvicorn and waits until every
    worker has answered; all of them are stopped at the end of the test."""
    started: list[prefork.Prefork] = []
    (tmp_path / "dflight_app.py").write_text(APP)

    def start(
        *,
        lease: float = 0.0,
        lock_timeout: float = 0.0,
        hang: float = 0.0,
        defaults: bool = False,
        middleware: bool = False,
    ) -> tuple[prefork.Prefork, str]:
        prefix = f"df{uuid.uuid4().hex[:10]}"
        port = free_port()
        env = {
            **os.environ,
            "OXICACHE_URL": redis_server.url,
            "T_PREFIX": prefix,
            "T_LEASE": str(lease),
            "T_LOCK_TIMEOUT": str(lock_timeout),
            "T_HANG": str(hang),
            **({"T_DEFAULTS": "1"} if defaults else {}),
            **({"T_MIDDLEWARE": "1"} if middleware else {}),
        }
        w = prefork.launch(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "dflight_app:app",
                "--app-dir",
                str(tmp_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(WORKERS),
                "--log-level",
                "warning",
            ],
            port=port,
            cwd=tmp_path,
            env=env,
            log=tmp_path / f"uvicorn-{port}.log",
        )
        started.append(w)
        return w, prefix

    yield start
    for w in started:
        w.stop()


async def _runs(url: str, prefix: str, round: int = 0) -> int:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        return int(await client.get(f"{prefix}:runs:{round}") or 0)
    finally:
        await client.aclose()


async def _burst(c: httpx.AsyncClient, url: str, n: int) -> list[httpx.Response]:
    """``n`` concurrent requests, each on its own connection. Their starts are spread over
    ~100 ms (well inside the handler's 300 ms, so all are concurrent with the first): one
    worker woken by a burst would otherwise accept every connection of it."""

    async def one(i: int) -> httpx.Response:
        await asyncio.sleep(i * 0.002)
        return await c.get(url)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def test_fifty_cold_requests_over_four_workers_run_the_handler_once(
    workers: Any, redis_server: Any
) -> None:
    """Each round is a new cold key; rounds go on (at most 4) until one spread over at least
    3 workers. Every round must run the handler exactly once."""
    w, prefix = workers(lease=5.0, lock_timeout=5.0)
    await prefork.wait_workers(w, WORKERS, timeout=12.0)
    spreads = []
    async with prefork.client() as c:
        for n in range(4):
            replies = await _burst(c, f"{w.base_url}/slow?round={n}", 50)
            runs = await _runs(redis_server.url, prefix, n)
            pids = {r.headers["x-pid"] for r in replies}
            spreads.append(len(pids))
            print(f"round={n} runs={runs} workers_answering={len(pids)}")
            assert [r.status_code for r in replies] == [200] * 50
            assert len({r.content for r in replies}) == 1
            assert runs == 1
            if len(pids) >= 3:
                break
    assert max(spreads) >= 3, f"the requests did not spread over the workers: {spreads}"


@pytest.mark.parametrize("way_in", ["decorator", "middleware"])
async def test_at_the_default_settings_ten_bursts_each_run_the_handler_once(
    workers: Any, redis_server: Any, way_in: str
) -> None:
    """The defaults (5 ms reads, 10 s lock timeout) on a loaded 2-core machine: a lock request
    answered late is waited on, not taken as "no lock", so no burst becomes one run per
    worker. The same for ``@cache`` and for ``CacheMiddleware`` on the configured backend."""
    w, prefix = workers(defaults=True, middleware=way_in == "middleware")
    await prefork.wait_workers(w, WORKERS, timeout=12.0)
    path = "/slow" if way_in == "decorator" else "/plain"
    runs = []
    async with prefork.client() as c:
        for n in range(10):
            replies = await _burst(c, f"{w.base_url}{path}?round={n}", 50)
            assert [r.status_code for r in replies] == [200] * 50
            runs.append(await _runs(redis_server.url, prefix, n))
        seen = {}
        for _ in range(40):  # what each worker counted (printed when the test fails)
            got = (await c.get(f"{w.base_url}/stats")).json()
            seen[got["pid"]] = got
    print(f"handler runs per burst: {runs}")
    for got in seen.values():
        events = {k: v for k, v in got["events"].items() if "coalesc" in k or "remote" in k}
        print(got["pid"], events, got["backend"])
    assert runs == [1] * 10


async def test_waiters_take_over_from_a_leader_that_hangs_past_its_lease(
    workers: Any, redis_server: Any
) -> None:
    """The first run of each key hangs for 4 s with a lease of 0.5 s. Nobody waits for it:
    another worker takes the lock when the lease ends and answers every other worker's
    requests; the hung worker's own waiters give up after lock_timeout (2 s) and answer from
    the entry the other worker wrote. Rounds (new keys) go on until one reached a worker
    other than the hung one; every round is bounded."""
    lock_timeout = 2.0
    w, prefix = workers(lease=0.5, lock_timeout=lock_timeout, hang=4.0)
    await prefork.wait_workers(w, WORKERS, timeout=12.0)

    async def timed(c: httpx.AsyncClient, url: str, i: int) -> tuple[float, httpx.Response]:
        await asyncio.sleep(i * 0.002)
        t0 = time.monotonic()
        r = await c.get(url)
        return time.monotonic() - t0, r

    took_over = False
    async with prefork.client() as c:
        for n in range(3):
            url = f"{w.base_url}/slow?round={n}"
            tasks = [asyncio.create_task(timed(c, url, i)) for i in range(20)]
            _, pending = await asyncio.wait(tasks, timeout=lock_timeout + 1.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            finished = [t.result() for t in tasks if t.done() and not t.cancelled()]
            runs = await _runs(redis_server.url, prefix, n)
            print(
                f"round={n} runs={runs} finished={len(finished)} "
                f"latencies={sorted(round(t, 2) for t, _ in finished)}"
            )
            # Bounded: only the hung leader's own request is still running.
            assert len(pending) <= 1 and len(finished) >= 19
            assert all(r.status_code == 200 for _, r in finished)
            # Answered before lock_timeout while the leader hangs: another worker took over.
            fast = [r for t, r in finished if t < lock_timeout - 0.5]
            if not fast:
                continue  # every request went to the hung worker: try a new key
            took_over = True
            assert len({r.content for _, r in finished}) == 1
            assert fast[0].json()["run"] == 2
            # The slow answers are the hung worker's own waiters (one worker).
            assert len({r.headers["x-pid"] for t, r in finished if t >= lock_timeout - 0.5}) <= 1
            assert runs == 2  # the hung run and the one that took over
            break
    assert took_over, "no round reached a second worker"


# --- the pieces, in this process ------------------------------------------------------------


def _redis_backend(url: str) -> Any:
    from oxicache.backends.redis import RedisBackend

    return RedisBackend(url, prefix=f"df{uuid.uuid4().hex[:10]}")


async def test_redis_lock_is_exclusive_and_released_only_by_its_owner(redis_server: Any) -> None:
    b = _redis_backend(redis_server.url)
    try:
        key = f"{b.prefix}:k:lock"
        token = await b.try_lock(key, 5.0)
        assert isinstance(token, str)
        assert await b.try_lock(key, 5.0) is None  # held
        assert await b.unlock(key, "not-the-token") is False
        assert await b.try_lock(key, 5.0) is None  # still held
        assert await b.unlock(key, token) is True
        again = await b.try_lock(key, 5.0)
        assert isinstance(again, str) and again != token
        assert await b.unlock(key, token) is False  # an old token never releases a new holder
        assert await b.unlock(key, again) is True
        # The lease ends by itself; its former holder cannot release the next one's lock.
        short = await b.try_lock(key, 0.05)
        assert short is not None
        await asyncio.sleep(0.1)
        taker = await b.try_lock(key, 5.0)
        assert taker is not None
        assert await b.unlock(key, short) is False
        assert await b.unlock(key, taker) is True
    finally:
        await b.clear()
        await b.close()


async def test_a_lock_taken_by_an_unanswered_attempt_is_found_to_be_the_callers(
    redis_server: Any,
) -> None:
    """An attempt whose answer came too late may have taken the lock: the caller's next
    attempt, with the same token, finds the lock is its own instead of waiting for itself
    until the lease ends; any other token still finds it held."""
    b = _redis_backend(redis_server.url)
    try:
        key = f"{b.prefix}:k:lock"
        assert await b.try_lock(key, 5.0, token="mine") == "mine"  # its answer "lost"
        assert await b.try_lock(key, 5.0, token="mine") == "mine"
        assert await b.try_lock(key, 5.0, token="theirs") is None
        assert await b.try_lock(key, 5.0) is None
        assert await b.unlock(key, "mine") is True
    finally:
        await b.clear()
        await b.close()


async def test_guarded_locks_and_a_write_that_releases_once_written(redis_server: Any) -> None:
    from oxicache.backends.guard import GuardedBackend

    b = _redis_backend(redis_server.url)
    guard = GuardedBackend(b, timeout=1.0, write_timeout=1.0)
    try:
        assert guard.supports_locks
        key = f"{b.prefix}:entry"
        answered, token = await guard.try_lock(key + ":lock", 5.0)
        assert answered and token is not None
        held: str = token
        assert await guard.try_lock(key + ":lock", 5.0) == (True, None)
        seen: list[bytes | None] = []

        async def then() -> None:
            seen.append(await b.get(key))  # the entry is readable when the lock goes
            assert await guard.unlock(key + ":lock", held)

        assert guard.set_later(key, b"value", 60, then=then)
        await guard.drain()
        assert seen == [b"value"]
        answered, token = await guard.try_lock(key + ":lock", 5.0)
        assert answered and token is not None
    finally:
        await b.clear()
        await b.close()


class _NoLocks:
    """A backend without locks, that stores nothing."""

    name = "nolocks"
    max_item_size = None

    async def get(self, key: str) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes, ttl: float, tags: Any = ()) -> None:
        return None

    async def ttl(self, key: str) -> float | None:
        return None

    async def delete(self, key: str) -> bool:
        return False

    async def delete_prefix(self, prefix: str) -> int:
        return 0

    async def delete_tag(self, tag: str) -> int:
        return 0

    async def clear(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_no_locks_without_an_answer_or_without_support() -> None:
    """A Redis that refuses connections, or a backend without locks: no lock, no wait."""
    from oxicache.backends.guard import GuardedBackend

    down = GuardedBackend(_redis_backend(f"redis://127.0.0.1:{free_port()}/0"), timeout=0.5)
    assert down.supports_locks
    assert await down.try_lock("k:lock", 5.0) == (False, None)
    assert down.counters.errors == 1
    assert await down.unlock("k:lock", "token") is False

    plain = GuardedBackend(_NoLocks())  # type: ignore[arg-type]
    assert not plain.supports_locks
    assert await plain.try_lock("k:lock", 5.0) == (False, None)
    assert plain.counters.errors == 0


async def test_a_down_redis_leaves_in_process_coalescing(client: Any) -> None:
    """Redis unreachable: concurrent requests still run the handler once per process, and
    nobody waits for a lock that cannot be taken."""
    from fastapi import FastAPI

    import oxicache
    from oxicache import cache

    oxicache.configure(_redis_backend(f"redis://127.0.0.1:{free_port()}/0"), backend_timeout=0.2)
    runs: list[int] = []
    app = FastAPI()

    @app.get("/down")
    @cache(ttl=60)
    async def down() -> dict[str, int]:
        runs.append(1)
        await asyncio.sleep(0.1)
        return {"n": len(runs)}

    try:
        t0 = time.monotonic()
        async with client(app) as c:
            replies = await asyncio.gather(*(c.get("/down") for _ in range(10)))
        elapsed = time.monotonic() - t0
    finally:
        oxicache.configure("memory://")
    assert [r.status_code for r in replies] == [200] * 10
    assert runs == [1]
    assert elapsed < 2.0


async def test_a_wait_on_the_backend_ends_when_the_breaker_opens() -> None:
    """A process waiting for another's entry stops the moment the breaker opens, rather than
    at its call's own deadline: its own requests are not held behind a cut-off backend."""
    from oxicache.backends.guard import BreakerState, GuardedBackend
    from oxicache.backends.memory import MemoryBackend
    from oxicache.coordination import distributed_flight

    guard = GuardedBackend(MemoryBackend(prefix="t"))
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, guard._set_state, BreakerState.OPEN, "test")
    t0 = time.perf_counter()
    got = await distributed_flight._unless_cut_off(guard, asyncio.sleep(30, "late"))
    assert got is distributed_flight._CUT_OFF
    assert time.perf_counter() - t0 < 5


class _SlowReads(_NoLocks):
    """A lock-capable backend whose reads hang while ``hang`` is set, and whose server keeps
    replying to others (``last_heard`` is now): a slow server on a loaded host, not a hung
    one."""

    name = "slowreads"

    def __init__(self) -> None:
        self.hang = True
        self.locks: dict[str, str] = {}
        self.reads = 0

    def last_heard(self) -> float:
        return time.monotonic()

    async def get(self, key: str) -> bytes | None:
        self.reads += 1
        if self.hang:
            await asyncio.sleep(30)
        return b"entry"

    async def try_lock(self, key: str, lease: float, token: str | None = None) -> str | None:
        if key in self.locks:
            return None
        self.locks[key] = token or "t"
        return self.locks[key]

    async def unlock(self, key: str, token: str) -> bool:
        return self.locks.pop(key, None) == token


async def test_an_unanswered_waiting_read_is_not_a_miss() -> None:
    """A waiting read that goes unanswered while the server still replies raises NoAnswer (the
    waiter reads again); once the breaker is open, it is a miss like any read."""
    from oxicache.backends.guard import BreakerState, GuardedBackend, NoAnswer

    backend = _SlowReads()
    guard = GuardedBackend(backend, timeout=0.05, write_timeout=0.05)  # type: ignore[arg-type]
    with pytest.raises(NoAnswer):
        await guard.get_waiting("k")
    assert await guard.get("k") is None  # a plain read: a miss, as ever
    guard._set_state(BreakerState.OPEN, "test")
    assert await guard.get_waiting("k") is None
    backend.hang = False
    await guard.close()


async def test_a_lock_holder_whose_reread_goes_unanswered_reads_again_rather_than_leads() -> None:
    """A process that took the lock (first, or over from a leader that wrote and released)
    reads the entry once more before it runs the handler. A late answer on a loaded host is
    read again, within lock_timeout: running the handler for an entry that is most likely
    there is the stampede single-flight prevents. (A hung backend: see the outage tests.)"""
    import oxicache
    from oxicache.backends.guard import GuardedBackend, NoAnswer
    from oxicache.coordination import distributed_flight

    oxicache.configure("memory://", lock_timeout=5.0)
    backend = _SlowReads()
    guard = GuardedBackend(backend, timeout=0.05, write_timeout=0.05)  # type: ignore[arg-type]
    tries = 0

    async def read() -> Any:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise NoAnswer
        return ((200, [], b"cached"), None)

    try:
        joined = await distributed_flight.join_key(guard, "k", read)
        assert joined.reply == (200, [], b"cached") and joined.lease is None
        assert tries == 3
        await asyncio.sleep(0.05)  # the release runs in the background
        assert "k:lock" not in backend.locks
    finally:
        backend.hang = False
        await guard.close()
        oxicache.configure("memory://")

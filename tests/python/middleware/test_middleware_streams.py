"""Streams pass through ``CacheMiddleware``, and single-flight never holds a request for a
response it will not share (served by a real uvicorn: the timing of the bytes matters).

- an event stream (``text/event-stream``), whatever its ``Cache-Control``, is passed on as it
  comes and never stored: two clients of one URL both get their first event at once;
- a leader's response judged not storable releases its waiters at once, and the URL skips
  single-flight for a while ("hit-for-miss"): concurrent requests to a slow ``no-store``
  endpoint run side by side;
- waiters are released when the leader's entry is stored, not once the leader's client has
  read it: a slow reader does not delay another client of the same cold URL.

Times are asserted with margins against what queueing would take (several seconds more).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.python import prefork, servers
from tests.python.apps import streams

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prefork.Prefork]:
    port = servers.free_port()
    log_dir = tmp_path_factory.mktemp("streams")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "uvicorn", "tests.python.apps.streams:app"]
    argv += ["--port", str(port), "--log-level", "warning"]
    started = prefork.launch(argv, port=port, cwd=ROOT, env=env, log=log_dir / "uvicorn.log")
    try:
        asyncio.run(prefork.wait_workers(started, 1, timeout=60))
        yield started
    finally:
        started.stop()


async def first_event(c: httpx.AsyncClient, url: str) -> tuple[float, bytes, str]:
    """Seconds until the first bytes of the body arrived, those bytes, and X-Cache."""
    t0 = time.monotonic()
    async with c.stream("GET", url) as r:
        async for chunk in r.aiter_raw():
            return time.monotonic() - t0, chunk, r.headers.get("x-cache", "")
    raise AssertionError("the stream ended without an event")


async def test_event_streams_pass_through_and_are_never_stored(server: prefork.Prefork) -> None:
    url = f"{server.base_url}/events"
    async with prefork.client() as c:
        a, b = await asyncio.gather(first_event(c, url), first_event(c, url))
        again = await first_event(c, url)
    # Both clients got their first event at once: neither queued behind the other's stream
    # (which never ends) for the 60 s lock timeout.
    assert a[0] < 5 and b[0] < 5, (a, b)
    assert a[1].startswith(b"data: event 0") and b[1].startswith(b"data: event 0")
    assert again[2] != "HIT" and again[1].startswith(b"data: event 0")


async def test_a_slow_no_store_url_is_not_queued(server: prefork.Prefork) -> None:
    url = f"{server.base_url}/slow-no-store"
    slow = streams.SLOW

    async def timed(c: httpx.AsyncClient) -> float:
        t0 = time.monotonic()
        r = await c.get(url)
        assert r.status_code == 200 and r.content == b"done"
        return time.monotonic() - t0

    async with prefork.client() as c:
        cold = await asyncio.gather(*(timed(c) for _ in range(3)))
        warm = await asyncio.gather(*(timed(c) for _ in range(3)))
    # Cold: the leader's answer is judged not storable when it starts; its waiters go on then,
    # side by side (2 x SLOW), not one after another (3 x SLOW).
    assert max(cold) < 2.8 * slow, cold
    # Then the URL is known not storable: no queue at all (1 x SLOW, not 2 x SLOW).
    assert max(warm) < 1.8 * slow, warm


async def test_a_slow_reader_does_not_delay_another_client(server: prefork.Prefork) -> None:
    url = f"{server.base_url}/big"

    async def slow_reader(c: httpx.AsyncClient) -> None:
        async with c.stream("GET", url) as r:
            async for _ in r.aiter_raw():
                await asyncio.sleep(8)  # reads one chunk, then nothing for a long while
                break

    async def other(c: httpx.AsyncClient) -> tuple[float, int, str]:
        await asyncio.sleep(0.2)  # arrives while the leader's handler still runs
        t0 = time.monotonic()
        r = await c.get(url)
        return time.monotonic() - t0, len(r.content), r.headers.get("x-cache", "")

    async with prefork.client() as c:
        reader = asyncio.create_task(slow_reader(c))
        took, size, label = await other(c)
        await reader
    assert size == len(streams.BIG)
    # Answered from the leader's entry as soon as it was stored: well before the slow reader
    # let go of its response (8 s).
    assert took < 4, (took, label)
    assert label == "HIT", label

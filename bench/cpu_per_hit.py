"""CPU time per request of a benchmark app under concurrency, in process: no HTTP server, no
wrk, so the figure is the app's own work (the cache, FastAPI, the Redis client), measured with
``time.process_time()``.

``bench/inproc.py`` calls an app sequentially, so a remote backend's round trip dominates its
figures; here ``--concurrency`` tasks call the app back to back on one uvloop event loop, as
uvicorn would under ``wrk -c32``. The reads wait for each other's round trips, so the CPU per
request is what the server pays. Used to compare a Redis hit with the bare-GET floor:

    bench/.venvs/oxicache/bin/python bench/cpu_per_hit.py --app apps.oxi --backend redis
    bench/.venvs/oxicache/bin/python bench/cpu_per_hit.py --app apps.redis_floor --backend redis
    bench/.venvs/oxicache/bin/python bench/cpu_per_hit.py --app apps.oxi --backend memory

With ``--backend redis`` a private redis-server is started on a free loopback port (and
stopped); ``--gc tuned`` applies apps/gc_tuned.py's settings. Pin it (``taskset -c 0``) for
steadier figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "harness"))


async def _measure(get, concurrency: int, seconds: float) -> tuple[float, float]:
    """(requests per second, CPU µs per request) of one run; ``get()`` sends one request."""
    statuses: set[int] = set()

    async def worker(stop: float, done: list[int]) -> None:
        n = 0
        while time.monotonic() < stop:
            statuses.add((await get())[0])
            n += 1
        done.append(n)

    done: list[int] = []
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker(t0 + seconds, done) for _ in range(concurrency)))
    cpu1, t1 = time.process_time(), time.monotonic()
    if statuses != {200}:
        raise SystemExit(f"the app answered {sorted(statuses)}, not only 200")
    n = sum(done)
    return n / (t1 - t0), (cpu1 - cpu0) / n * 1e6


async def _run(a: argparse.Namespace) -> None:
    from inproc_worker import requester

    get = requester(importlib.import_module(a.app).app, "/items", "page=1")
    if a.gc == "tuned":
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)
    for _ in range(100):  # warm: the entry is stored, connections are open
        await get()
    figures = [await _measure(get, a.concurrency, a.seconds) for _ in range(a.runs)]
    cpu = statistics.median(f[1] for f in figures)
    rps = statistics.median(f[0] for f in figures)
    print(
        f"{a.app} backend={a.backend} gc={a.gc} concurrency={a.concurrency}: "
        f"{cpu:.1f} µs CPU per request, {rps:,.0f} req/s (median of {a.runs} runs)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", default="apps.oxi", help="module under bench/ with an `app`")
    ap.add_argument("--backend", default="memory", choices=("memory", "redis", "none"))
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gc", default="default", choices=("default", "tuned"))
    a = ap.parse_args()
    os.environ["BENCH_BACKEND"] = a.backend
    redis = None
    if a.backend == "redis":
        import procs

        redis = procs.Redis(procs.free_port(), "cpu-per-hit-redis")
        os.environ["BENCH_REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/1"
    try:
        import uvloop

        uvloop.install()
        asyncio.run(_run(a))
    finally:
        if redis is not None:
            redis.stop()
            procs.stop_all()


if __name__ == "__main__":
    main()
